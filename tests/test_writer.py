"""The one writer: dedup, conflicts, admission, group commit, checkpoints, publish-after-commit."""

from __future__ import annotations

import decimal
import hashlib
import sqlite3
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from ccxt.base.decimal_to_precision import ROUND, decimal_to_precision
from structlog.testing import capture_logs

from events.codec import decode
from events.control import InputQuarantined
from events.facts import (
    FundingSettled,
    InstrumentDefined,
    MarkPriceObserved,
    OrderFilled,
    TransferCompleted,
)
from events.log import EventLog
from kernel import money
from kernel.daemon.replay import decode_state, encode_state, load_state
from kernel.daemon.writer import Writer
from kernel.errors import LogError
from kernel.reconcile import ReconcileConfig
from kernel.snapshot import AccountSnapshotV2, project
from kernel.state import GENESIS, fold

T = 1_700_000_000_000_000_000


def clock() -> int:
    return T + 999


BTC = InstrumentDefined(venue_ts=T, symbol="BTCUSDT", instrument_kind="linear", base="BTC",
                        quote="USDT", settle="USDT", tick_size=Decimal("0.1"),
                        lot_size=Decimal("0.001"), min_notional=Decimal(5))
DEPOSIT = TransferCompleted(venue_ts=T + 1, transfer_id="t1", asset="USDT", direction="deposit",
                            amount=Decimal(1000))


def fill(trade: str, qty: str = "1", price: str = "100", symbol: str = "BTCUSDT") -> OrderFilled:
    return OrderFilled(venue_ts=T + 10 + int(trade), symbol=symbol, trade_id=trade, order_id="o",
                       side="buy", qty=Decimal(qty), price=Decimal(price), fee=Decimal("0.1"),
                       fee_currency="USDT")


async def open_writer(db: Path, **kw: object) -> tuple[EventLog, Writer]:
    log = await EventLog.open(db)
    return log, await Writer.open(log, clock=clock, **kw)  # type: ignore[arg-type]


async def test_unstamped_events_get_the_writers_clock(tmp_path: Path) -> None:
    log, w = await open_writer(tmp_path / "ev.db")
    await w.ingest([BTC, msgspec.structs.replace(DEPOSIT, recv_ts=T + 5)])
    rows = [r async for r in log.rows()]
    await log.close()
    assert [r.recv_ts for r in rows] == [T + 999, T + 5]


async def test_duplicates_in_a_batch_across_batches_and_restarts_fold_once(tmp_path: Path) -> None:
    db = tmp_path / "ev.db"
    log, w = await open_writer(db)
    r = await w.ingest([BTC, DEPOSIT, fill("1"), fill("1")])
    assert (r.appended, r.duplicates) == (3, 1)
    r = await w.ingest([fill("1"), msgspec.structs.replace(fill("1"), recv_ts=T + 77)])
    assert (r.appended, r.duplicates) == (0, 2)
    await log.close()
    log, w = await open_writer(db)
    r = await w.ingest([DEPOSIT, fill("1"), fill("2")])
    assert (r.appended, r.duplicates) == (1, 2)
    assert w.state.k.positions["BTCUSDT"].qty == Decimal(2)
    assert w.state.k.wallets["USDT"] == Decimal("999.8")  # 1000 - two fees of 0.1
    await log.close()


async def test_same_key_other_payload_is_a_recorded_conflict(tmp_path: Path) -> None:
    log, w = await open_writer(tmp_path / "ev.db")
    await w.ingest([BTC, DEPOSIT, fill("1")])
    before = w.state.k
    r = await w.ingest([fill("1", qty="5")])
    assert (r.appended, r.conflicts, r.duplicates, r.quarantined) == (1, 1, 0, 0)
    assert w.state.k is before  # the ledger did not move
    rows = [row async for row in log.rows(since=3)]
    q = decode(rows[0].payload)
    assert isinstance(q, InputQuarantined) and q.source == "dedup"
    assert "fill:BTCUSDT:1" in q.reason and "seq 3" in q.reason
    assert decode(q.raw) == msgspec.structs.replace(fill("1", qty="5"), recv_ts=0)
    # The same conflicting payload again is that same conflict, not a new row.
    r = await w.ingest([fill("1", qty="5")])
    assert (r.appended, r.conflicts) == (0, 1)
    await log.close()


async def test_inadmissible_event_is_quarantined_and_ledger_unchanged(tmp_path: Path) -> None:
    log, w = await open_writer(tmp_path / "ev.db")
    await w.ingest([BTC, DEPOSIT])
    before = w.state.k
    r = await w.ingest([fill("1", symbol="ETHUSDT")])
    assert (r.appended, r.quarantined) == (1, 1)
    assert w.state.k is before
    assert w.state.quarantined == 1
    rows = [row async for row in log.rows(since=2)]
    q = decode(rows[0].payload)
    assert isinstance(q, InputQuarantined)
    assert q.source == "admission" and "unknown symbol 'ETHUSDT'" in q.reason
    await log.close()


async def test_admission_sees_earlier_events_of_the_same_batch(tmp_path: Path) -> None:
    log, w = await open_writer(tmp_path / "ev.db")
    r = await w.ingest([BTC, DEPOSIT, fill("1")])
    assert (r.appended, r.quarantined) == (3, 0)
    assert w.state.k.positions["BTCUSDT"].qty == 1
    await log.close()


async def test_admission_sees_a_position_opened_and_closed_earlier_in_the_same_batch(
        tmp_path: Path) -> None:
    """The batch folds through a draft: admission reads the draft's positions, not the
    state the batch started from."""
    log, w = await open_writer(tmp_path / "ev.db")
    inverse = msgspec.structs.replace(BTC, venue_ts=T + 100, instrument_kind="inverse",
                                      settle="BTC", contract_size=Decimal(100))
    r = await w.ingest([BTC, DEPOSIT, fill("1"), inverse])
    assert (r.appended, r.quarantined) == (4, 1)
    assert w.state.instruments["BTCUSDT"].instrument_kind == "linear"
    rows = [row async for row in log.rows(since=3)]
    q = decode(rows[0].payload)
    assert isinstance(q, InputQuarantined) and q.source == "admission"
    assert q.reason == ("redefinition of 'BTCUSDT' changes kind, settlement or contract"
                        " size while a position is open")
    close = msgspec.structs.replace(fill("2"), side="sell")
    again = msgspec.structs.replace(inverse, venue_ts=T + 200)
    r = await w.ingest([close, again])
    assert (r.appended, r.quarantined) == (2, 0)
    assert w.state.instruments["BTCUSDT"].instrument_kind == "inverse"
    assert not w.state.k.positions
    await log.close()


async def test_a_batch_after_a_clean_one_skips_the_lookup_and_still_finds_a_logged_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log, w = await open_writer(tmp_path / "ev.db")
    lookups: list[list[str]] = []
    real = log.lookup

    async def counted(keys: Iterable[str]) -> dict[str, tuple[int, bytes]]:
        lookups.append(list(keys))
        return await real(keys)

    monkeypatch.setattr(log, "lookup", counted)
    await w.ingest([BTC, DEPOSIT, fill("1")])  # the first batch of a life: looked up
    assert len(lookups) == 1
    r = await w.ingest([fill("2")])  # none came twice before it: no lookup
    assert (r.appended, len(lookups)) == (1, 1)
    # A redelivery: the log's unique key refuses the batch, which is screened again.
    r = await w.ingest([fill("3"), fill("1"), fill("2", qty="5")])
    assert (r.appended, r.duplicates, r.conflicts) == (2, 1, 1)  # fill 3 and the conflict
    assert ["fill:BTCUSDT:3", "fill:BTCUSDT:1", "fill:BTCUSDT:2"] in lookups
    assert await log.count() == 6 and w.state.k.positions["BTCUSDT"].qty == 3
    before = len(lookups)
    r = await w.ingest([fill("4")])  # the last batch had a duplicate: looked up
    assert (r.appended, len(lookups)) == (1, before + 1)
    await log.close()


async def test_a_logged_event_that_admission_would_now_refuse_is_a_duplicate(
        tmp_path: Path) -> None:
    # Logged as an inverse contract while flat; redelivered once a position is open, it
    # would be refused as a change of kind. It is the same fact, logged: a duplicate,
    # whether the batch was looked up first or not.
    inverse = msgspec.structs.replace(BTC, venue_ts=T + 5, instrument_kind="inverse",
                                      settle="BTC")
    log, w = await open_writer(tmp_path / "ev.db")
    await w.ingest([msgspec.structs.replace(BTC, venue_ts=T + 4)])
    await w.ingest([inverse, DEPOSIT])
    await w.ingest([msgspec.structs.replace(BTC, venue_ts=T + 6), fill("1")])
    r = await w.ingest([inverse])
    assert (r.appended, r.duplicates, r.quarantined) == (0, 1, 0)
    assert w.state.quarantined == 0
    await log.close()


async def test_a_failed_append_leaves_state_and_log_as_before(tmp_path: Path) -> None:
    published: list[AccountSnapshotV2] = []
    log, w = await open_writer(tmp_path / "ev.db", publish=published.append)
    await w.ingest([BTC, DEPOSIT])
    state, snap, n = w.state, w.snapshot, len(published)
    # A real SQLite failure: the database may not grow by another page.
    async with log._db.execute("PRAGMA page_count") as cur:
        row = await cur.fetchone()
    await log._db.execute(f"PRAGMA max_page_count = {row[0]}")
    big = [fill(str(i)) for i in range(1, 2000)]
    with pytest.raises(LogError, match="append of 1999 events failed"):
        await w.ingest(big)
    assert w.state is state and w.snapshot is snap
    assert len(published) == n
    assert log.last_seq == 2 and await log.count() == 2
    await log._db.execute("PRAGMA max_page_count = 1073741823")
    r = await w.ingest(big[:3])
    assert r.last_seq == 5
    await log.close()


async def test_a_batch_publishes_its_last_snapshot_once_after_commit(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    snaps: list[AccountSnapshotV2] = []
    log: EventLog

    def publish(s: AccountSnapshotV2) -> None:
        seen.append((s.seq, log.last_seq))
        snaps.append(s)

    log, w = await open_writer(tmp_path / "ev.db", publish=publish)
    await w.ingest([BTC, DEPOSIT, fill("1")])
    await w.ingest([fill("2")])
    logged = [decode(r.payload) async for r in log.rows()]
    await log.close()
    assert seen == [(3, 3), (4, 4)]  # once per batch, after its commit
    # What was not projected live is what an eager projection of each state gives.
    cfg = ReconcileConfig()
    state, eager = GENESIS, None
    for seq, ev in enumerate(logged, 1):
        state = fold(state, ev, seq)
        eager = project(state, cfg, eager)
        if seq == 3:
            assert eager.reconcile == snaps[0].reconcile and eager.k == snaps[0].k
    assert eager is not None and eager.reconcile == snaps[1].reconcile


async def test_checkpoints_every_n_and_reopen_replays_only_the_tail(tmp_path: Path) -> None:
    db = tmp_path / "ev.db"
    log, w = await open_writer(db, checkpoint_every=10)
    await w.ingest([BTC, DEPOSIT])
    for i in range(1, 31):
        await w.ingest([MarkPriceObserved(venue_ts=T + 100 + i, symbol="BTCUSDT",
                                          price=Decimal(100 + i))])
    cps = await log.checkpoints()
    assert [c.seq for c in cps] == [10, 20, 30]
    for c in cps:
        assert encode_state(await load_state(log, c.seq, use_checkpoints=False)) == c.state
    final = w.state
    await log.close()
    log, w = await open_writer(db, checkpoint_every=10)
    assert encode_state(w.state) == encode_state(final)
    assert decode_state(cps[-1].state).seq == 30
    await log.close()


# --- checkpoint integrity --------------------------------------------------------------


async def log_with_checkpoints(db: Path) -> bytes:
    """A log of 32 events with checkpoints at 10, 20 and 30; the full replay's bytes."""
    log, w = await open_writer(db, checkpoint_every=10)
    await w.ingest([BTC, DEPOSIT])
    for i in range(1, 31):
        await w.ingest([MarkPriceObserved(venue_ts=T + 100 + i, symbol="BTCUSDT",
                                          price=Decimal(100 + i))])
    assert [c.seq for c in await log.checkpoints()] == [10, 20, 30]
    await log.close()
    return encode_state(w.state)


def rewrite_checkpoint(db: Path, seq: int, state: bytes, hash_of: bytes | None = None) -> None:
    """Replace a checkpoint's bytes behind the kernel's back (a disk fault, a hand edit):
    the append-only trigger is dropped on this test's file only."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER IF EXISTS checkpoints_no_update")
        sql = "UPDATE checkpoints SET state = ? WHERE seq = ?"
        assert conn.execute(sql, (state, seq)).rowcount == 1
        if hash_of is not None:  # a state that hashes right but is not a state
            sql = "UPDATE checkpoints SET state_hash = ? WHERE seq = ?"
            conn.execute(sql, (hashlib.sha256(hash_of).digest(), seq))
    finally:
        conn.close()


def stored_state(db: Path, seq: int) -> bytes:
    with sqlite3.connect(db) as conn:
        (state,) = conn.execute("SELECT state FROM checkpoints WHERE seq = ?", (seq,)).fetchone()
    conn.close()
    return bytes(state)


def one_digit_changed(state: bytes) -> bytes:
    """The deposit's 1000 as 9000: still a state that decodes, with another wallet."""
    assert b"1000" in state
    return state.replace(b"1000", b"9000", 1)


@pytest.mark.parametrize(
    ("damage", "cause"),
    [
        (lambda db: rewrite_checkpoint(db, 30, one_digit_changed(stored_state(db, 30))),
         "state hash mismatch"),
        (lambda db: rewrite_checkpoint(db, 30, b"\xc1 not msgpack", hash_of=b"\xc1 not msgpack"),
         "does not decode"),
        (lambda db: rewrite_checkpoint(db, 30, stored_state(db, 20),
                                       hash_of=stored_state(db, 20)),
         "state after seq 20"),
    ],
    ids=["one-digit", "undecodable", "another-seq"],
)
async def test_a_damaged_checkpoint_is_passed_over_with_a_warning(
    tmp_path: Path, damage: Callable[[Path], None], cause: str
) -> None:
    db = tmp_path / "ev.db"
    full_replay = await log_with_checkpoints(db)
    damage(db)
    with capture_logs() as logs:
        log, w = await open_writer(db, checkpoint_every=10)
    try:
        assert encode_state(w.state) == full_replay
        assert w.state.k.wallets["USDT"] == Decimal(1000)
    finally:
        await log.close()
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [(e["event"], e["seq"]) for e in warnings] == [("checkpoint not used", 30)]
    assert cause in warnings[0]["cause"]


async def test_older_damaged_checkpoints_fall_back_to_genesis(tmp_path: Path) -> None:
    db = tmp_path / "ev.db"
    full_replay = await log_with_checkpoints(db)
    for seq in (10, 20, 30):
        rewrite_checkpoint(db, seq, one_digit_changed(stored_state(db, seq)))
    with capture_logs() as logs:
        log, w = await open_writer(db, checkpoint_every=10)
    try:
        assert encode_state(w.state) == full_replay
        # The writer's next checkpoint follows the newest stored one, damaged or not.
        for i in range(1, 11):
            await w.ingest([MarkPriceObserved(venue_ts=T + 200 + i, symbol="BTCUSDT",
                                              price=Decimal(200 + i))])
        assert [c.seq for c in await log.checkpoints()] == [10, 20, 30, 40]
    finally:
        await log.close()
    assert [e["seq"] for e in logs if e["event"] == "checkpoint not used"] == [30, 20, 10]
    log, w = await open_writer(db)  # the new, sound checkpoint is used: no warning
    await log.close()


async def test_checkpoints_store_the_hash_of_their_state(tmp_path: Path) -> None:
    db = tmp_path / "ev.db"
    await log_with_checkpoints(db)
    log = await EventLog.open(db, readonly=True)
    try:
        for cp in await log.checkpoints():
            assert cp.state_hash == hashlib.sha256(cp.state).digest()
    finally:
        await log.close()


async def test_the_fold_is_immune_to_a_library_changing_the_decimal_context(
    tmp_path: Path
) -> None:
    """ccxt's decimal_to_precision sets the current context's rounding to ROUND_HALF_UP
    on every call; the daemon calls ccxt in the writer's thread. The writer folds in a
    private copy of the kernel's context, so the live fold and its replay still agree."""
    decimal_to_precision("1.5", ROUND, 0)  # as the ccxt adapter does, in this thread
    assert decimal.getcontext().rounding == decimal.ROUND_HALF_UP
    inst = InstrumentDefined(venue_ts=1, symbol="BTCUSDT", instrument_kind="linear",
                             base="BTC", quote="USDT", settle="USDT", tick_size=Decimal("1e-18"),
                             lot_size=Decimal("1"), min_notional=Decimal("0"))
    # the average is 100.0000000000000000005: half-even gives ...000, half-up ...001
    fills = [OrderFilled(venue_ts=2 + i, symbol="BTCUSDT", trade_id=str(i), order_id="o",
                         side="buy", qty=Decimal(1), price=Decimal(px), fee=Decimal(0),
                         fee_currency="USDT")
             for i, px in enumerate(("100", "100.000000000000000001"))]
    log = await EventLog.open(tmp_path / "events.db")
    try:
        writer = await Writer.open(log, clock=lambda: 10)
        await writer.ingest([inst, *fills])
        assert writer.state.k.positions["BTCUSDT"].avg_open == Decimal("100.000000000000000000")
        money.install()
        assert (await load_state(log, use_checkpoints=False)) == writer.state
    finally:
        await log.close()


async def test_a_funding_payment_logged_under_its_legacy_key_is_not_booked_again(
    tmp_path: Path
) -> None:
    """Logs written before `position_side`/`funding_id` keyed funding by symbol and time;
    the same payment fetched again after the upgrade (a new key) is a duplicate."""
    inst = InstrumentDefined(venue_ts=1, symbol="BTCUSDT", instrument_kind="linear",
                             base="BTC", quote="USDT", settle="USDT", tick_size=Decimal("0.1"),
                             lot_size=Decimal("0.001"), min_notional=Decimal("0"))
    paid = FundingSettled(venue_ts=8 * 3600 * 10**9, symbol="BTCUSDT", asset="USDT",
                          amount=Decimal("-1.25"))
    log = await EventLog.open(tmp_path / "events.db")
    try:
        writer = await Writer.open(log, clock=lambda: 10)
        await writer.ingest([inst])
        # what an older version appended: the same payment under `funding:BTCUSDT:<ts>`
        await log.append([msgspec.structs.replace(paid, recv_ts=11)],
                         keys=[f"funding:BTCUSDT:{paid.venue_ts}"])
        writer = await Writer.open(log, clock=lambda: 12)
        assert writer.state.k.funding == {"USDT": Decimal("-1.25")}
        again = msgspec.structs.replace(paid, funding_id="tran-77")  # today's key: by id
        result = await writer.ingest([again])
        assert (result.appended, result.duplicates) == (0, 1)
        other = msgspec.structs.replace(paid, position_side="short", amount=Decimal("2"))
        assert (await writer.ingest([other])).appended == 1  # a different payment: booked
        assert writer.state.k.funding == {"USDT": Decimal("0.75")}
        # The same while the writer skips the lookup of its keys (no key came twice in
        # the last batch): the legacy key is still looked up, on a connection of its own.
        later = msgspec.structs.replace(paid, venue_ts=16 * 3600 * 10**9)
        await log.append([msgspec.structs.replace(later, recv_ts=13)],
                         keys=[f"funding:BTCUSDT:{later.venue_ts}"])
        writer = await Writer.open(log, clock=lambda: 14)
        mark = MarkPriceObserved(venue_ts=15, symbol="BTCUSDT", price=Decimal("100"))
        assert (await writer.ingest([mark])).appended == 1
        assert writer._unlooked, "the next batch is looked up: the test proves nothing"
        result = await writer.ingest([msgspec.structs.replace(later, funding_id="tran-78")])
        assert (result.appended, result.duplicates) == (0, 1)
        assert writer.state.k.funding == {"USDT": Decimal("-0.50")}
    finally:
        await log.close()
