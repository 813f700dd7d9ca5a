"""The event clock: receive times never go back, and a wall clock stepped forward and
back does not expire a fresh fact's settling window."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from events.facts import (
    AssetBalance,
    BalanceReported,
    InstrumentDefined,
    MarkPriceObserved,
    OrderFilled,
    TransferCompleted,
)
from events.log import EventLog
from kernel.daemon.clock import EventClock
from kernel.daemon.writer import Writer
from kernel.reconcile import ReconcileConfig

T = 1_700_000_000_000_000_000
S = 1_000_000_000
HOUR = 3600 * S


class FakeTime:
    """A wall clock an operator (or NTP) can step, and a monotonic clock that only ticks."""

    def __init__(self, wall: int) -> None:
        self.wall = wall
        self.mono = 0

    def tick(self, ns: int) -> None:
        self.wall += ns
        self.mono += ns

    def read_wall(self) -> int:
        return self.wall

    def read_mono(self) -> int:
        return self.mono


def test_stamps_never_decrease_across_a_step_forward_and_back() -> None:
    t = FakeTime(T)
    clock = EventClock(wall=t.read_wall, mono=t.read_mono)
    first = clock()
    assert first == T
    t.tick(S)
    assert clock() == T + S  # wall and monotonic agree: the wall clock
    t.wall += HOUR  # stepped forward
    t.tick(S)
    ahead = clock()
    assert ahead == T + 2 * S + HOUR  # a forward step is believed
    t.wall -= HOUR  # and back
    t.tick(S)
    after = clock()
    assert after == ahead + S  # the monotonic second, not the wall clock's hour back
    t.tick(0)
    again = clock()
    assert again == after  # no time passed: the same stamp, never an earlier one
    stamps = [first, ahead, after, again]
    assert stamps == sorted(stamps)


def test_not_before_floors_the_clock_and_it_advances_from_there() -> None:
    t = FakeTime(T)
    clock = EventClock(wall=t.read_wall, mono=t.read_mono)
    clock.not_before(T + HOUR)  # the log's `now` is an hour ahead of this wall clock
    assert clock() == T + HOUR
    t.tick(S)
    assert clock() == T + HOUR + S
    clock.not_before(T)  # an older floor changes nothing
    assert clock() == T + HOUR + S
    t.wall += 2 * HOUR
    assert clock() == T + 2 * HOUR + S  # a wall clock ahead of the floor wins


BTC = InstrumentDefined(venue_ts=T, symbol="BTCUSDT", instrument_kind="linear", base="BTC",
                        quote="USDT", settle="USDT", tick_size=Decimal("0.1"),
                        lot_size=Decimal("0.001"), min_notional=Decimal(5))
DEPOSIT = TransferCompleted(venue_ts=T + 1, transfer_id="t1", asset="USDT",
                            direction="deposit", amount=Decimal(1000))
BALANCE = BalanceReported(venue_ts=T + 2, balances=(AssetBalance(asset="USDT",
                                                                 wallet=Decimal(1000)),))
MARK = MarkPriceObserved(venue_ts=T + 3, symbol="BTCUSDT", price=Decimal(100))
FILL = OrderFilled(venue_ts=T + 4, symbol="BTCUSDT", trade_id="1", order_id="o", side="buy",
                   qty=Decimal("0.1"), price=Decimal(100), fee=Decimal("0.01"),
                   fee_currency="USDT")


async def step_forward_and_back(
    db: Path, clock: Callable[[FakeTime], Callable[[], int]]
) -> tuple[list[int], list[str]]:
    """Ingest one event per reading, the wall clock stepping +1 h before the mark and
    -1 h before the fill; return the logged recv_ts and the final checks' reasons."""
    t = FakeTime(T)
    log = await EventLog.open(db)
    try:
        writer = await Writer.open(log, clock=clock(t), reconcile=ReconcileConfig())
        await writer.ingest([BTC, DEPOSIT])
        t.tick(S)
        await writer.ingest([BALANCE])  # the venue has reported everything so far
        t.wall += HOUR
        t.tick(S)
        await writer.ingest([MARK])
        t.wall -= HOUR
        t.tick(S)
        await writer.ingest([FILL])  # moves K after the report: pending, 0 s old
        stamps = [row.recv_ts async for row in log.rows()]
        reasons = [f"{c.rule} {c.reason}" for c in writer.snapshot.reconcile.checks]
    finally:
        await log.close()
    return stamps, reasons


async def test_a_fill_just_after_the_back_step_is_pending_not_expired(tmp_path: Path) -> None:
    stamps, reasons = await step_forward_and_back(
        tmp_path / "ev.db", lambda t: EventClock(wall=t.read_wall, mono=t.read_mono))
    assert stamps == sorted(stamps)
    assert stamps[-1] == stamps[-2] + S  # the fill: a second after the mark, not an hour before
    assert "R1 PENDING_REPORT" in reasons, reasons  # its window is running
    assert not any("PENDING_REPORT_EXPIRED" in r for r in reasons), reasons


async def test_a_plain_wall_clock_is_still_floored_at_the_logs_now(tmp_path: Path) -> None:
    """Writers given a plain callable (tests, tools) get `max(clock(), state.now)`."""
    stamps, reasons = await step_forward_and_back(tmp_path / "ev.db", lambda t: t.read_wall)
    assert stamps == sorted(stamps)
    assert stamps[-1] == stamps[-2]  # the wall clock said an hour earlier: floored at now
    assert not any("PENDING_REPORT_EXPIRED" in r for r in reasons), reasons


async def test_after_a_restart_the_writer_starts_the_clock_at_the_logs_now(
    tmp_path: Path,
) -> None:
    db = tmp_path / "ev.db"
    log = await EventLog.open(db)
    try:
        writer = await Writer.open(log, clock=lambda: T + HOUR)
        await writer.ingest([BTC, DEPOSIT])
    finally:
        await log.close()
    t = FakeTime(T)  # restarted with a wall clock an hour behind the log
    log = await EventLog.open(db)
    try:
        writer = await Writer.open(log, clock=EventClock(wall=t.read_wall, mono=t.read_mono))
        t.tick(S)
        await writer.ingest([BALANCE])
        stamps = [row.recv_ts async for row in log.rows()]
    finally:
        await log.close()
    assert stamps == [T + HOUR, T + HOUR, T + HOUR + S]
