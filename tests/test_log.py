"""The SQLite event log: append-only, hash-chained, all-or-nothing batches, checkpoints."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from events.codec import decode, encode
from events.facts import MarkPriceObserved
from events.log import GENESIS_HASH, EventLog, chain
from kernel.errors import LogError


def mark(i: int, price: str = "100") -> MarkPriceObserved:
    return MarkPriceObserved(venue_ts=i, recv_ts=i, symbol="BTCUSDT", price=Decimal(price))


async def test_append_assigns_consecutive_seqs_and_chains_hashes(tmp_path: Path) -> None:
    log = await EventLog.open(tmp_path / "ev.db")
    assert await log.append([mark(1), mark(2)]) == 2
    assert await log.append([mark(3)]) == 3
    rows = [r async for r in log.rows()]
    await log.close()
    assert [r.seq for r in rows] == [1, 2, 3]
    prev = GENESIS_HASH
    for r in rows:
        prev = chain(prev, r.seq, r.payload)
        assert r.hash == prev
        assert r.kind == "mark_price_observed"
        assert r.dedup_key == decode(r.payload).dedup_key
    assert decode(rows[2].payload) == mark(3)


async def test_reopen_continues_the_sequence_and_chain(tmp_path: Path) -> None:
    db = tmp_path / "ev.db"
    log = await EventLog.open(db)
    await log.append([mark(1), mark(2)])
    last_hash = log.last_hash
    await log.close()
    log = await EventLog.open(db)
    assert (log.last_seq, log.last_hash) == (2, last_hash)
    await log.append([mark(3)])
    rows = [r async for r in log.rows(since=2)]
    await log.close()
    assert rows[0].hash == chain(last_hash, 3, encode(mark(3)))


async def test_a_batch_with_a_duplicate_key_is_refused_whole(tmp_path: Path) -> None:
    """The UNIQUE key is the last guard: the writer screens first, but should a duplicate
    reach the log, the whole batch fails and nothing of it is visible."""
    log = await EventLog.open(tmp_path / "ev.db")
    await log.append([mark(1)])
    with pytest.raises(LogError, match="append-only"):
        await log.append([mark(2), mark(1)])
    assert log.last_seq == 1
    assert await log.count() == 1
    assert await log.append([mark(2)]) == 2  # and the log goes on, chain intact
    await log.close()


async def test_update_and_delete_are_refused_by_the_database(tmp_path: Path) -> None:
    db = tmp_path / "ev.db"
    log = await EventLog.open(db)
    await log.append([mark(1), mark(2)], checkpoint=(2, b"state"))
    await log.close()
    con = sqlite3.connect(db)
    for sql in (
        "UPDATE events SET payload = x'00' WHERE seq = 1",
        "DELETE FROM events WHERE seq = 1",
        "UPDATE checkpoints SET state = x'00'",
        "DELETE FROM checkpoints",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(sql)
    con.close()


async def test_checkpoint_lands_with_its_batch(tmp_path: Path) -> None:
    log = await EventLog.open(tmp_path / "ev.db")
    await log.append([mark(1), mark(2), mark(3)], checkpoint=(2, b"s2"))
    cp = await log.latest_checkpoint()
    assert cp is not None and (cp.seq, cp.state) == (2, b"s2")
    rows = [r async for r in log.rows()]
    assert cp.hash == rows[1].hash
    assert await log.latest_checkpoint(at_most=1) is None
    with pytest.raises(LogError, match="not in this batch"):
        await log.append([mark(4)], checkpoint=(9, b"x"))
    assert log.last_seq == 3
    await log.close()


async def test_lookup_finds_logged_keys_in_chunks(tmp_path: Path) -> None:
    log = await EventLog.open(tmp_path / "ev.db")
    await log.append([mark(i) for i in range(1, 2001)])
    keys = [mark(i).dedup_key for i in range(1990, 2011)]
    found = await log.lookup(keys)
    await log.close()
    assert sorted(found) == sorted(mark(i).dedup_key for i in range(1990, 2001))
    assert found[mark(2000).dedup_key][0] == 2000


async def test_rows_filter_by_range_and_kind(tmp_path: Path) -> None:
    log = await EventLog.open(tmp_path / "ev.db")
    await log.append([mark(i) for i in range(1, 11)])
    assert [r.seq for r in [r async for r in log.rows(since=3, until=6)]] == [4, 5, 6]
    assert [r async for r in log.rows(kinds=["order_filled"])] == []
    chunks = [c async for c in log.payloads(since=8)]
    await log.close()
    assert [seq for c in chunks for seq, _, _ in c] == [9, 10]


async def test_readonly_open_of_a_missing_log_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="no event log at"):
        await EventLog.open(tmp_path / "missing.db", readonly=True)


async def test_a_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    con.commit()
    con.close()
    with pytest.raises(LogError, match="schema version 99"):
        await EventLog.open(db, readonly=True)


async def test_a_reader_sees_appends_of_another_connection(tmp_path: Path) -> None:
    db = tmp_path / "ev.db"
    writer = await EventLog.open(db)
    await writer.append([mark(1)])
    reader = await EventLog.open(db, readonly=True)
    assert reader.last_seq == 1
    await writer.append([mark(2)])
    assert await reader.refresh() == 2
    assert [r.seq async for r in reader.rows(since=1)] == [2]
    await reader.close()
    await writer.close()
