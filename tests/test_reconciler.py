"""The intent reconciler's shell (kernel/daemon/reconciler.py) with real parts: the real
writer on a real SQLite file, the real sim venue, the real adapter calls. The test plays
the daemon's part of feeding the venue's pushes to the writer, so each pass can be
driven and checked; faults the venue cannot make on cue (a lost answer) wrap its calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.sim.venue import SimVenue
from events.codec import Event
from events.control import TradingResumed
from events.log import EventLog
from events.orders import IntentAmended, IntentCanceled, IntentPlaced, PlaceOrder
from kernel.daemon.reconciler import Reconciler, ReconcilerConfig
from kernel.daemon.writer import Writer
from kernel.diff import DiffConfig
from kernel.killswitch import KillSwitchConfig
from tests.sim_support import BTC, quiet


class Harness:
    def __init__(self, venue: SimVenue, writer: Writer, cfg: ReconcilerConfig) -> None:
        self.venue, self.writer = venue, writer
        self.lock = asyncio.Lock()  # the daemon's writer loop serializes; so does this
        self.reconciler = Reconciler(venue, cfg, state=lambda: writer.state,
                                     commit=self.commit)
        self.commands: list[Event] = []

    async def commit(self, events: Sequence[Event]) -> Any:
        async with self.lock:
            self.commands += [e for e in events if isinstance(e, PlaceOrder)]
            result = await self.writer.ingest(list(events))
        self.reconciler.published(self.writer.snapshot)
        return result

    async def pump(self) -> None:
        async for event in self.venue.facts():
            await self.commit([event])

    async def settle(self, passes: int = 10) -> None:
        for _ in range(passes):
            await self.reconciler.step()
            await asyncio.sleep(0.05)

    def order(self, intent_id: str = "i-1") -> Any:
        return self.writer.state.book.orders[intent_id]


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = await make(tmp_path, ReconcilerConfig(tick_s=0.05, command_timeout_s=0.5))
    yield h
    await close(h)


async def make(tmp_path: Path, cfg: ReconcilerConfig, venue: SimVenue | None = None
               ) -> Harness:
    log = await EventLog.open(tmp_path / "events.db")
    writer = await Writer.open(log, clock=time.time_ns)
    venue = venue or SimVenue(quiet(msgspec.structs.replace(BTC, volatility=D(0))))
    await venue.connect()
    h = Harness(venue, writer, cfg)
    await h.commit([*await venue.instruments(), *await venue.assets(),
                    *await venue.leverage_settings(), *await venue.marks(),
                    *await venue.transfers_since(0), await venue.balances(),
                    await venue.positions()])
    h.pump_task = asyncio.create_task(h.pump())  # type: ignore[attr-defined]
    return h


async def close(h: Harness) -> None:
    h.pump_task.cancel()  # type: ignore[attr-defined]
    await h.venue.close()
    await h.writer.log.close()


def intent(intent_id: str = "i-1", **kw: Any) -> IntentPlaced:
    fields: dict[str, Any] = {"venue_ts": time.time_ns(), "intent_id": intent_id,
                              "symbol": "BTCUSDT", "side": "buy", "order_type": "limit",
                              "qty": D("0.010"), "price": D("59000.0")}
    fields.update(kw)
    return IntentPlaced(**fields)


async def test_a_limit_intent_becomes_one_resting_order(harness: Harness) -> None:
    await harness.commit([intent()])
    await harness.settle()
    o = harness.order()
    assert (o.status, o.client_order_id) == ("ACTIVE", "ek-i-1-0")
    resting = harness.venue.engine.order_by_cid("ek-i-1-0")
    assert resting is not None and resting.price == D("59000.0")
    assert len(harness.commands) == 1


async def test_a_market_intent_fills_and_completes(harness: Harness) -> None:
    await harness.commit([intent(order_type="market", price=None)])
    await harness.settle()
    o = harness.order()
    assert (o.status, o.filled_qty) == ("COMPLETED", D("0.010"))
    assert harness.writer.state.k.positions["BTCUSDT"].qty == D("0.010")


async def test_amend_by_the_venues_edit_and_cancel(harness: Harness) -> None:
    await harness.commit([intent()])
    await harness.settle()
    await harness.commit([IntentAmended(venue_ts=time.time_ns(), intent_id="i-1", revision=1,
                                        price=D("59100.0"))])
    await harness.settle()
    o = harness.order()
    assert (o.status, o.order_revision) == ("ACTIVE", 1)
    assert harness.venue.engine.order_by_cid("ek-i-1-0").price == D("59100.0")  # type: ignore[union-attr]
    await harness.commit([IntentCanceled(venue_ts=time.time_ns(), intent_id="i-1")])
    await harness.settle()
    assert harness.order().status == "CANCELED"
    assert harness.venue.engine.open_orders() == []


async def test_amend_by_cancel_then_replace(tmp_path: Path) -> None:
    cfg = ReconcilerConfig(tick_s=0.05, command_timeout_s=0.5,
                           diff=DiffConfig(venue_edits=False))
    h = await make(tmp_path, cfg)
    try:
        await h.commit([intent()])
        await h.settle()
        await h.commit([IntentAmended(venue_ts=time.time_ns(), intent_id="i-1", revision=1,
                                      price=D("59100.0"))])
        await h.settle()
        o = h.order()
        assert (o.status, o.client_order_id, o.superseded) == ("ACTIVE", "ek-i-1-1",
                                                               ("ek-i-1-0",))
        assert [x.client_order_id for x in h.venue.engine.open_orders()] == ["ek-i-1-1"]
    finally:
        await close(h)


async def test_a_place_whose_answer_is_lost_is_found_not_placed_again(tmp_path: Path) -> None:
    venue = SimVenue(quiet(msgspec.structs.replace(BTC, volatility=D(0))))
    real_place = venue.place

    async def place_then_hang(cmd: PlaceOrder) -> Any:
        await real_place(cmd)  # the venue places it ...
        await asyncio.sleep(10)  # ... and the answer never comes

    venue.place = place_then_hang  # type: ignore[method-assign]
    h = await make(tmp_path, ReconcilerConfig(tick_s=0.05, command_timeout_s=0.2), venue)
    try:
        await h.commit([intent()])
        await h.settle(20)
        o = h.order()
        assert o.status == "ACTIVE", o
        assert len(h.commands) == 1  # one place command, ever
        assert [x.client_order_id for x in venue.engine.open_orders()] == ["ek-i-1-0"]
        kinds = [type(e).__name__ for e in await events_of(h)]
        assert "CommandOutcomeUnknown" in kinds and "OrderStatusReported" in kinds
    finally:
        await close(h)


async def test_a_restart_with_a_place_in_flight_resolves_it_by_query(tmp_path: Path) -> None:
    """The daemon logged the place and sent it, then died before the answer: the next
    start finds the place in flight in the log, asks the venue, and adopts the order."""
    venue = SimVenue(quiet(msgspec.structs.replace(BTC, volatility=D(0))))
    h = await make(tmp_path, ReconcilerConfig(tick_s=0.05, command_timeout_s=0.5), venue)
    await h.commit([intent()])
    state = h.writer.state
    from kernel.diff import command_event, diff

    [place] = diff(state, DiffConfig())
    cmd = command_event(state, place, time.time_ns())
    await h.commit([cmd])
    await venue.place(cmd)  # type: ignore[arg-type]  # sent; the answer dies with the process
    h.pump_task.cancel()  # type: ignore[attr-defined]
    await h.writer.log.close()
    log = await EventLog.open(tmp_path / "events.db")
    writer = await Writer.open(log, clock=time.time_ns)
    assert writer.state.book.orders["i-1"].status == "SUBMITTING"
    h2 = Harness(venue, writer, ReconcilerConfig(tick_s=0.05, command_timeout_s=0.5))
    h2.pump_task = asyncio.create_task(h2.pump())  # type: ignore[attr-defined]
    try:
        # no answer is coming: after the timeout window the kernel marks it unknown ...
        from events.orders import CommandOutcomeUnknown

        await h2.commit([CommandOutcomeUnknown(venue_ts=time.time_ns(),
                                               command_id=cmd.command_id,
                                               reason="the daemon restarted")])
        await h2.settle()
        assert h2.order().status == "ACTIVE"
        assert h2.commands == []  # ... and never places it again
        assert len(venue.engine.open_orders()) == 1
    finally:
        await close(h2)


async def test_oco_a_fill_of_one_cancels_the_other(harness: Harness) -> None:
    await harness.commit([intent("tp", side="sell", qty=D("0.010"), price=D("70000.0"),
                                 oco_group="g"),
                          intent("mkt", order_type="market", price=None, oco_group="g")])
    await harness.settle()
    assert harness.order("mkt").status == "COMPLETED"
    o = harness.order("tp")
    assert (o.status, o.error) == ("CANCELED",
                                   "canceled: another intent of its OCO group filled")


async def test_the_kill_switch_halts_on_a_divergence_and_cancels_working_orders(
    tmp_path: Path
) -> None:
    from events.control import ManualAdjustment
    from events.facts import AssetBalance, BalanceReported

    cfg = ReconcilerConfig(tick_s=0.05, command_timeout_s=0.5,
                           kill_switch=KillSwitchConfig(error_grace_ns=0))
    h = await make(tmp_path, cfg)
    try:
        await h.commit([intent()])
        await h.settle()
        assert h.order().status == "ACTIVE"
        # K is told of 15 USDT the venue never had: R1 ERROR MISMATCH on the next report
        await h.commit([ManualAdjustment(venue_ts=time.time_ns(), adjustment_id="bad",
                                         asset="USDT", amount=D("15"), reason="injected")])
        wallet = h.writer.state.e.balances["USDT"].wallet  # type: ignore[index]
        await h.commit([BalanceReported(venue_ts=time.time_ns(), balances=(
            AssetBalance(asset="USDT", wallet=wallet),))])
        await h.settle()
        assert h.writer.state.halted
        assert h.order().status == "CANCELED" and h.venue.engine.open_orders() == []
        halted = [e for e in await events_of(h) if type(e).__name__ == "TradingHalted"]
        assert len(halted) == 1 and "R1 USDT ERROR MISMATCH" in halted[0].reason  # type: ignore[attr-defined]
        # a halted kernel places nothing
        await h.commit([intent("i-2")])
        await h.settle()
        assert h.order("i-2").status == "PENDING" and h.commands[-1].intent_id == "i-1"  # type: ignore[attr-defined]
        await h.commit([TradingResumed(venue_ts=time.time_ns(), reason="explained")])
        await h.settle()
        assert h.order("i-2").status == "ACTIVE"
    finally:
        await close(h)


async def events_of(h: Harness) -> list[Event]:
    from events.codec import decode_logged

    out: list[Event] = []
    async for row in h.writer.log.rows():
        out.append(decode_logged(row.payload))
    return out


async def test_on_connect_foreign_orders_are_left_alone_and_unknown_own_ones_reported(
    tmp_path: Path
) -> None:
    from structlog.testing import capture_logs

    venue = SimVenue(quiet(msgspec.structs.replace(BTC, volatility=D(0))))
    h = await make(tmp_path, ReconcilerConfig(tick_s=0.05, command_timeout_s=0.5), venue)
    try:
        now = time.time_ns()
        for cid in ("manual-1", "ek-ghost-0"):
            venue.engine.place(PlaceOrder(
                venue_ts=now, command_id=f"{cid}:place", intent_id="x", client_order_id=cid,
                symbol="BTCUSDT", side="buy", order_type="limit", qty=D("0.001"),
                price=D("50000.0")), cid, now)
        with capture_logs() as logs:
            await h.reconciler.step()
        seen = {(e["event"], e.get("client_order_id")) for e in logs}
        assert ("foreign order left alone", "manual-1") in seen
        assert ("venue order with this instance's prefix has no intent in the log",
                "ek-ghost-0") in seen
        # reporting is all: both stay open, as configured
        assert sorted(o.client_order_id for o in venue.engine.open_orders()) == [
            "ek-ghost-0", "manual-1"]
    finally:
        await close(h)


async def test_a_snapshot_that_changes_no_intent_does_not_cost_a_pass(harness: Harness) -> None:
    from events.facts import MarkPriceObserved

    await harness.commit([intent()])
    await harness.settle()
    assert harness.order().status == "ACTIVE"
    await harness.reconciler.step(ticked=False)  # converged: the diff finds nothing
    before = harness.reconciler.passes
    await harness.commit([MarkPriceObserved(venue_ts=time.time_ns(), symbol="BTCUSDT",
                                            price=D("60001"))])
    await harness.reconciler.step(ticked=False)  # woken by the mark's snapshot
    assert harness.reconciler.passes == before
    await harness.reconciler.step(ticked=True)  # the tick still looks
    assert harness.reconciler.passes == before + 1
    await harness.commit([IntentCanceled(venue_ts=time.time_ns(), intent_id="i-1")])
    await harness.settle()  # an intent event changes the book: passes run again
    assert harness.order().status == "CANCELED"


async def test_duplicated_and_reordered_order_updates_change_nothing(tmp_path: Path) -> None:
    """The venue's pushes (order updates and fills among them) arrive twice and out of
    order: every intent still converges to the venue's own view, nothing is placed twice."""
    from adapters.sim.config import SimFaults

    sim = quiet(msgspec.structs.replace(BTC, volatility=D("0.0005")), tick_s=0.02,
                faults=SimFaults(duplicate=0.3, reorder=0.3))
    venue = SimVenue(sim)
    h = await make(tmp_path, ReconcilerConfig(tick_s=0.05, command_timeout_s=0.5), venue)
    try:
        for n in range(12):
            kind = {"order_type": "market", "price": None} if n % 4 == 0 else {
                "price": D("60000.0") + (n - 6) * 5}
            await h.commit([intent(f"i{n}", side="buy" if n % 2 else "sell", **kind)])
        await h.settle(10)
        for n in (1, 2, 3):
            if h.order(f"i{n}").status == "ACTIVE":
                await h.commit([IntentCanceled(venue_ts=time.time_ns(), intent_id=f"i{n}")])
        await h.settle(40)
        book = h.writer.state.book
        for order in book.orders.values():
            assert order.status in ("ACTIVE", "COMPLETED", "CANCELED", "FAILED"), order
            assert order.in_flight is None, order
            if order.status == "COMPLETED" and order.venue_status is not None:
                assert order.venue_status == "filled", order  # no late "new" undoes it
        active = {o.client_order_id for o in book.orders.values() if o.status == "ACTIVE"}
        assert active == {o.client_order_id for o in venue.engine.open_orders()}
        cids = [o.client_order_id for o in venue.engine.orders.values()]
        assert len(cids) == len(set(cids)) and len(h.commands) == len(set(
            c.client_order_id for c in h.commands))  # type: ignore[attr-defined]
    finally:
        await close(h)


# -- stops and take-profits, end to end: the venue holds the trigger ----------------------


def market_at(h: Harness, price: str) -> None:
    """The sim's market moves (its volatility is 0, so the price stays where it is put)."""
    h.venue.engine.prices["BTCUSDT"] = D(price)


async def test_a_stop_rests_untriggered_then_fills_when_the_market_crosses_it(
        harness: Harness) -> None:
    await harness.commit([intent("stop", order_type="stop", price=None,
                                 trigger_price=D("60050.0"))])
    await harness.settle()
    o = harness.order("stop")
    assert (o.status, o.filled_qty) == ("ACTIVE", D(0))
    resting = harness.venue.engine.order_by_cid(o.client_order_id)
    assert resting is not None and not resting.triggered
    market_at(harness, "60100.0")
    await harness.settle()
    o = harness.order("stop")
    assert (o.status, o.filled_qty) == ("COMPLETED", D("0.010"))
    assert harness.writer.state.k.positions["BTCUSDT"].qty == D("0.010")
    assert len(harness.commands) == 1  # placed once, triggered by the venue


async def test_a_stop_limits_trigger_amended_by_the_venues_edit_is_the_one_that_fires(
        harness: Harness) -> None:
    await harness.commit([intent("sl", order_type="stop_limit", price=D("60080.0"),
                                 trigger_price=D("60050.0"))])
    await harness.settle()
    await harness.commit([IntentAmended(venue_ts=time.time_ns(), intent_id="sl", revision=1,
                                        trigger_price=D("60200.0"))])
    await harness.settle()
    o = harness.order("sl")
    assert (o.status, o.order_revision) == ("ACTIVE", 1)
    resting = harness.venue.engine.order_by_cid(o.client_order_id)
    assert resting is not None and resting.trigger_price == D("60200.0")
    market_at(harness, "60100.0")  # past the old trigger, short of the new one
    await harness.settle()
    assert (harness.order("sl").status, harness.order("sl").filled_qty) == ("ACTIVE", D(0))
    market_at(harness, "60200.0")  # triggers; its limit 60080 is then below the market
    await harness.settle()
    o = harness.order("sl")
    assert (o.status, o.filled_qty) == ("ACTIVE", D(0))  # a resting buy limit at 60080
    market_at(harness, "60070.0")  # the market comes down through the limit
    await harness.settle()
    o = harness.order("sl")
    assert (o.status, o.filled_qty) == ("COMPLETED", D("0.010"))
    assert harness.writer.state.k.positions["BTCUSDT"].avg_open == D("60080.0")
    assert len(harness.commands) == 1


async def test_a_bracket_the_take_profit_fills_and_the_stop_is_canceled(
        harness: Harness) -> None:
    await harness.commit([intent("entry", order_type="market", price=None)])
    await harness.settle()
    assert harness.writer.state.k.positions["BTCUSDT"].qty == D("0.010")
    await harness.commit([
        intent("tp", side="sell", order_type="take_profit", price=None,
               trigger_price=D("60500.0"), reduce_only=True, oco_group="bracket"),
        intent("sl", side="sell", order_type="stop", price=None,
               trigger_price=D("59500.0"), reduce_only=True, oco_group="bracket"),
    ])
    await harness.settle()
    assert {harness.order(i).status for i in ("tp", "sl")} == {"ACTIVE"}
    market_at(harness, "60600.0")
    await harness.settle()
    assert (harness.order("tp").status, harness.order("tp").filled_qty) == (
        "COMPLETED", D("0.010"))
    sl = harness.order("sl")
    assert (sl.status, sl.error) == ("CANCELED",
                                     "canceled: another intent of its OCO group filled")
    assert "BTCUSDT" not in harness.writer.state.k.positions  # flat
    assert harness.venue.engine.open_orders() == []
    # The round trip's realized PnL in K is the venue's own, fill by fill summed.
    venue = sum((f.exact_realized for f in harness.venue.engine.fills), D(0))
    assert venue > 0
    assert harness.writer.state.k.realized_by_symbol["BTCUSDT"] == venue
