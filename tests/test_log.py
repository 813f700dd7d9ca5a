"""The SQLite event log: append-only, hash-chained, all-or-nothing batches, checkpoints.

Every test runs twice: with a batch inserted in one statement (this machine's SQLite has
JSON functions) and with `executemany` (what a SQLite without them gets)."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import events.log.schema as logschema
import events.log.store as logstore
from events.base import MAX_TS
from events.codec import decode, encode
from events.control import TradingHalted
from events.facts import MarkPriceObserved
from events.log import GENESIS_HASH, SCHEMA_VERSION, EventLog, chain
from kernel.daemon.replay import encode_state, load_state
from kernel.daemon.verify import verify
from kernel.errors import KeyLogged, LogError


def mark(i: int, price: str = "100") -> MarkPriceObserved:
    return MarkPriceObserved(venue_ts=i, recv_ts=i, symbol="BTCUSDT", price=Decimal(price))


@pytest.fixture(autouse=True, params=["packed", "executemany"])
def insert(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "executemany":
        async def no_json(db: object) -> bool:
            return False
        monkeypatch.setattr(logstore, "_has_json", no_json)
    return str(request.param)


async def test_appends_go_the_way_this_sqlite_allows(tmp_path: Path, insert: str) -> None:
    log = await EventLog.open(tmp_path / "ev.db")
    try:
        assert log.packed is (insert == "packed")
    finally:
        await log.close()


async def test_rows_keep_their_bytes_and_types_whatever_they_hold(tmp_path: Path) -> None:
    # Text a JSON array must escape, times at the schema's bounds, payloads of any size.
    odd = [TradingHalted(venue_ts=i, recv_ts=MAX_TS, reason=reason)
           for i, reason in enumerate(['a "quoted" \\ reason', "line\nbreak\ttab",
                                       "\u00e9t\u00e9 \u2603 \U0001f600", "x" * 5000], 1)]
    log = await EventLog.open(tmp_path / "ev.db")
    try:
        odd.append(MarkPriceObserved(venue_ts=5, recv_ts=5, price=Decimal("1"),
                                     symbol='B"T\\C/\u00e9\u2603\U0001f600:%'))
        await log.append([mark(0), *odd])
        async with log._db.execute(
                "SELECT typeof(seq), typeof(kind), typeof(dedup_key), typeof(venue_ts),"
                " typeof(recv_ts), typeof(payload), typeof(hash) FROM events") as cur:
            types = set(await cur.fetchall())
        rows = [r async for r in log.rows()]
    finally:
        await log.close()
    assert types == {("integer", "text", "text", "integer", "integer", "blob", "blob")}
    assert [r.payload for r in rows] == [encode(e) for e in [mark(0), *odd]]
    assert [r.dedup_key for r in rows] == [e.dedup_key for e in [mark(0), *odd]]
    assert [(r.venue_ts, r.recv_ts) for r in rows] == [
        (0, 0), *((i, MAX_TS) for i in range(1, 5)), (5, 5)]
    prev = GENESIS_HASH
    for r in rows:
        prev = chain(prev, r.seq, r.payload)
        assert r.hash == prev


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
    with pytest.raises(KeyLogged, match="dedup key 'mark:BTCUSDT:1:100' is logged already"):
        await log.append([mark(2), mark(1)])
    assert log.last_seq == 1
    assert await log.count() == 1
    assert await log.append([mark(2)]) == 2  # and the log goes on, chain intact
    await log.close()


async def test_a_seq_out_of_order_is_a_log_error_not_a_logged_key(tmp_path: Path) -> None:
    log = await EventLog.open(tmp_path / "ev.db")
    await log.append([mark(1)])
    log.last_seq = 0  # as if this object had lost count
    with pytest.raises(LogError, match="append of 1 events failed") as refused:
        await log.append([mark(2)])
    assert not isinstance(refused.value, KeyLogged)
    assert await log.count() == 1
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
    with pytest.raises(LogError, match="schema version 99"):
        await EventLog.open(db)  # nor does a writer create its tables in there
    con = sqlite3.connect(db)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    assert tables == {"meta"}


async def test_a_sqlite_file_of_another_program_is_not_written_to(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE notes (body TEXT)")
    con.commit()
    con.close()
    with pytest.raises(LogError, match="is not an exchange-kernel event log"):
        await EventLog.open(db)
    con = sqlite3.connect(db)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    assert tables == {"notes"}


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


# --- schema version 1 (before checkpoints.state_hash) -----------------------------------

# The schema as version 1 of the kernel created it, verbatim.
V1_SCHEMA = """
BEGIN;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL,
    dedup_key TEXT NOT NULL UNIQUE, venue_ts INTEGER NOT NULL, recv_ts INTEGER NOT NULL,
    payload BLOB NOT NULL, hash BLOB NOT NULL);
CREATE TABLE checkpoints (seq INTEGER PRIMARY KEY, state BLOB NOT NULL, hash BLOB NOT NULL);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER events_append_only BEFORE INSERT ON events
WHEN NEW.seq <= (SELECT coalesce(max(seq), 0) FROM events)
  OR EXISTS (SELECT 1 FROM events WHERE dedup_key = NEW.dedup_key)
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER checkpoints_append_only BEFORE INSERT ON checkpoints
WHEN EXISTS (SELECT 1 FROM checkpoints WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
INSERT INTO meta (key, value) VALUES ('schema_version', '1');
COMMIT;
"""


async def v1_log(tmp_path: Path) -> Path:
    """A version-1 log of 4 marks with a checkpoint at 3: the rows of a log written by
    this kernel, copied into the version-1 tables."""
    source = tmp_path / "v2.db"
    log = await EventLog.open(source)
    await log.append([mark(1), mark(2), mark(3)])
    await log.checkpoint(3, encode_state(await load_state(log)))
    await log.append([mark(4)])
    await log.close()
    db = tmp_path / "v1.db"
    con = sqlite3.connect(db, isolation_level=None)
    con.executescript(V1_SCHEMA)
    con.execute("ATTACH DATABASE ? AS v2", (str(source),))
    con.execute("INSERT INTO events SELECT * FROM v2.events")
    con.execute("INSERT INTO checkpoints SELECT seq, state, hash FROM v2.checkpoints")
    con.close()
    return db


def schema_of(db: Path) -> tuple[str, list[str]]:
    con = sqlite3.connect(db)
    (version,) = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    columns = [r[1] for r in con.execute("PRAGMA table_info(checkpoints)")]
    con.close()
    return version, columns


async def test_a_reader_opens_a_version_1_log_as_it_is(tmp_path: Path) -> None:
    db = await v1_log(tmp_path)
    log = await EventLog.open(db, readonly=True)
    try:
        assert log.version == "1" and log.last_seq == 4
        [cp] = await log.checkpoints()
        assert (cp.seq, cp.state_hash) == (3, None)
        assert (await verify(log)).fault is None
        with capture_logs() as logs:
            state = await load_state(log)
        assert state.seq == 4
    finally:
        await log.close()
    # Its checkpoint has no hash, so it is not trusted: replay from genesis, and say so.
    assert [(e["event"], e["seq"]) for e in logs] == [("checkpoint not used", 3)]
    assert "schema version 1" in logs[0]["cause"]
    assert schema_of(db) == ("1", ["seq", "state", "hash"])  # a reader changed nothing


async def test_a_writer_upgrades_a_version_1_log_and_checkpoints_with_hashes(
    tmp_path: Path,
) -> None:
    db = await v1_log(tmp_path)
    log = await EventLog.open(db)
    try:
        assert log.version == SCHEMA_VERSION == "2"
        assert schema_of(db) == ("2", ["seq", "state", "hash", "state_hash"])
        await log.append([mark(5)])
        state = await load_state(log)
        await log.checkpoint(5, encode_state(state))
        cps = await log.checkpoints()
        assert [(c.seq, c.state_hash) for c in cps] == [
            (3, None), (5, hashlib.sha256(cps[1].state).digest())]
        assert (await verify(log)).fault is None
    finally:
        await log.close()
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con = sqlite3.connect(db)
        try:
            con.execute("UPDATE checkpoints SET state_hash = x'00'")
        finally:
            con.close()
    log = await EventLog.open(db)  # a second open finds version 2: nothing to do
    await log.close()
    assert schema_of(db)[0] == "2"


async def test_an_upgrade_that_fails_midway_leaves_version_1_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await v1_log(tmp_path)
    # The real step, then one that fails: the transaction must take the first back too.
    steps = (*logschema._UPGRADES["1"], "SELECT no_such_function()")
    monkeypatch.setitem(logschema._UPGRADES, "1", steps)
    with pytest.raises(LogError, match="cannot open event log"):
        await EventLog.open(db)
    assert schema_of(db) == ("1", ["seq", "state", "hash"])
    monkeypatch.undo()
    log = await EventLog.open(db)  # and the lock was given back on the way out
    await log.close()
    assert schema_of(db)[0] == "2"


async def test_wal_checkpoints_run_beside_the_writer_and_keep_the_wal_small(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import events.log.store as store

    monkeypatch.setattr(store, "CHECKPOINT_BYTES", 50_000)
    db = tmp_path / "ev.db"
    log = await EventLog.open(db)
    async with log._db.execute("PRAGMA wal_autocheckpoint") as cur:
        assert (await cur.fetchone())[0] == 0  # never inside a commit
    wal = db.with_name(db.name + "-wal")
    sizes = []
    for b in range(40):  # about 4 MB of WAL without checkpoints
        # Back to back: each checkpoint beside the writer overlaps the next appends, so
        # the WAL is only ever restarted by the writer's own copy of what they added.
        await log.append([mark(b * 500 + i) for i in range(500)])
        sizes.append(wal.stat().st_size)
    assert max(sizes) < 2_000_000, sizes  # the WAL is reused once checkpointed
    assert log.last_seq == 20_000
    await log.close()
    reader = await EventLog.open(db, readonly=True)
    assert await reader.count() == 20_000
    await reader.close()


async def test_a_failed_wal_checkpoint_fails_the_next_append_and_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import events.log.store as store

    monkeypatch.setattr(store, "CHECKPOINT_BYTES", 1_000)
    db = tmp_path / "ev.db"
    log = await EventLog.open(db)

    class Failing:
        """The checkpoint connection meeting a full disk or an I/O error (a stand-in:
        nothing real fails SQLite's checkpoint on demand)."""

        async def execute_fetchall(self, sql: str) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        async def close(self) -> None:
            pass

    log._checkpointer = Failing()  # type: ignore[assignment]
    await log.append([mark(i) for i in range(20)])  # starts the checkpoint beside it
    assert log._wal_checkpoint is not None
    await asyncio.gather(log._wal_checkpoint, return_exceptions=True)
    with pytest.raises(LogError, match=r"WAL checkpoint of .* failed"):
        await log.append([mark(100)])
    assert log.last_seq == 20 and await log.count() == 20  # the refused batch is not in
    await log.append([mark(100)])  # the failure is reported once; appends go on
    assert log.last_seq == 21
    await log.close()


async def test_an_append_canceled_mid_commit_refuses_the_next_and_a_reopen_knows(
        tmp_path: Path) -> None:
    # The transaction runs whole in SQLite's thread, so a cancel cannot stop it: this
    # object no longer knows its last seq, and says so rather than append after a guess.
    db = tmp_path / "ev.db"
    log = await EventLog.open(db)
    await log.append([mark(i) for i in range(10)])
    task = asyncio.create_task(log.append([mark(100 + i) for i in range(5_000)]))
    await asyncio.sleep(0)  # handed to the thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(LogError, match="an append was canceled before its commit was known"):
        await log.append([mark(99_999)])
    with pytest.raises(LogError, match="an append was canceled before its commit was known"):
        await log.checkpoint(log.last_seq, b"state")
    await log.close()
    again = await EventLog.open(db)
    assert again.last_seq in (10, 5_010) and await again.count() == again.last_seq
    await again.append([mark(99_999)])
    assert again.last_seq in (11, 5_011)
    await again.close()
