"""Recovery that cannot silently stop or skip: the daemon's resync, supervised, with a
watermark per stream kept in the log.

In process: the real daemon, writer and SQLite log, and the real sim venue, wrapped by
`FaultyVenue` where a test needs a query to fail or a push to be lost on cue."""

from __future__ import annotations

import asyncio
import random
import time
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from faulty_venue import FaultyVenue, eventually, logged, running
from sim_support import BTC, quiet
from structlog.testing import capture_logs
from venue_contract import ContractMarket, place

from adapters.sim.venue import SimVenue
from events.codec import Event
from events.control import ResyncCompleted, VenueDisconnected
from events.facts import FundingSettled, OrderFilled
from events.orders import CommandAcknowledged
from kernel.daemon.config import Config, load_config
from kernel.daemon.metrics import Metrics
from kernel.daemon.resync import Resync, next_due, since_for
from kernel.daemon.service import Daemon
from kernel.daemon.supervise import ResyncFailing, Retry
from kernel.errors import CredentialsRejected, InvariantViolation, LogError, VenueUnavailable

S = 1_000_000_000
MS = 1_000_000
D = Decimal
BTC_MARKET = ContractMarket(symbol="BTCUSDT", qty=D("0.002"), resting_buy_price=D(30000),
                            off_lot_qty=D("0.0015"))


def config(**kernel: object) -> Config:
    base = load_config(None)
    return msgspec.structs.replace(
        base,
        kernel=msgspec.structs.replace(
            base.kernel, **{"resync_every_s": 0.3, "status_every_s": 0.5, **kernel}),
        venue=msgspec.structs.replace(base.venue, sim=quiet(BTC, tick_s=0.05)),
    )


def btc_qty(daemon: Daemon) -> Decimal:
    assert daemon._writer is not None
    pos = daemon._writer.state.k.positions.get("BTCUSDT")
    return D(0) if pos is None else pos.qty


async def buy(sim: SimVenue, qty: str) -> None:
    assert isinstance(await sim.place(place(BTC_MARKET, qty=D(qty))), CommandAcknowledged)


def drop_fills(e: Event) -> bool:
    return isinstance(e, OrderFilled)


# -- the pure parts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mark", "now", "lookback", "since"),
    [
        (None, 100 * S, 60 * S, 0),  # no resync completed yet: everything
        (0, 100 * S, 60 * S, 0),
        (90 * S, 100 * S, 60 * S, 30 * S),  # where the last one began, less the lookback
        (30 * S, 100 * S, 60 * S, 0),  # never before 0
        (500 * S, 100 * S, 60 * S, 40 * S),  # a mark ahead of the clock is clamped to it
    ],
)
def test_since_is_the_last_completed_start_less_the_lookback_clamped_to_now(
    mark: int | None, now: int, lookback: int, since: int
) -> None:
    assert since_for(mark, now, lookback) == since


@pytest.mark.parametrize(
    ("last_resync", "last_push", "due"),
    [
        (100.0, 129.0, 130.0),  # pushes keep coming: every 30 s
        (100.0, 105.0, 115.0),  # silent since 105: 10 s after the last push
        (100.0, 50.0, 110.0),  # silent before the last resync: 10 s after it
    ],
)
def test_a_silent_stream_brings_the_next_resync_forward(
    last_resync: float, last_push: float, due: float
) -> None:
    assert next_due(last_resync, last_push, every_s=30.0, silence_s=10.0) == due


def test_retry_backs_off_then_escalates_and_a_success_resets_it() -> None:
    retry = Retry(3, max_delay=4.0, rng=random.Random(1))
    delays = [retry.failed(TimeoutError("slow"), "funding") for _ in range(2)]
    assert 0 < delays[0] < delays[1] <= 4.0
    retry.succeeded()
    assert retry.failures == 0
    assert retry.failed(TimeoutError("slow"), "funding") == pytest.approx(delays[0], rel=0.5)
    retry.failed(TimeoutError("slow"), "fills")
    with pytest.raises(ResyncFailing, match="3 times in a row, last at step marks"):
        retry.failed(ValueError("bad row"), "marks")


@pytest.mark.parametrize("error", [CredentialsRejected("no"), LogError("disk"),
                                   InvariantViolation("impossible")])
def test_retry_never_retries_a_fatal_error(error: Exception) -> None:
    with pytest.raises(type(error)):
        Retry(5, max_delay=1.0).failed(error, "fills")


async def test_resync_asks_reports_first_and_queues_them_after_the_facts_they_include(
) -> None:
    sim = SimVenue(quiet(BTC, funding_interval_s=1.0, tick_s=0.05))
    venue = FaultyVenue(sim)
    await venue.connect()
    try:
        await buy(sim, "0.002")
        sim.engine.advance(time.time_ns() + 2 * S)  # at least one funding payment
        put: list[Event] = []

        async def collect(e: Event) -> None:
            put.append(e)

        await Resync(venue, collect, time.time_ns, lambda: {}, 60.0).run()
    finally:
        await venue.close()
    # asked: the reports before the dated facts, so every fill a report includes is in
    # the fills asked after it ...
    assert venue.order[1:] == [
        "instruments", "assets", "leverage_settings", "balances", "positions", "fills_since",
        "funding_since", "transfers_since", "marks", "open_orders"]
    # ... queued: the facts first, each stream marked done, then the reports
    kinds = [f"done:{e.stream}" if isinstance(e, ResyncCompleted)
             else type(e).__struct_config__.tag for e in put]
    compact = [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]
    assert compact == [
        "instrument_defined", "asset_defined", "leverage_set", "order_filled", "done:fills",
        "funding_settled", "done:funding", "transfer_completed", "done:transfers",
        "mark_price_observed", "balance_reported", "positions_reported"], compact
    assert all(e.since == 0 for e in put if isinstance(e, ResyncCompleted))


async def test_a_fill_made_while_the_resync_asks_never_makes_its_report_disagree() -> None:
    """A fill made between the resync's questions (the stream has not delivered it yet)
    must not be in a report queued before it: folded, the resync's events agree."""
    from kernel.admit import admit
    from kernel.reconcile import ReconcileConfig, Verdict, reconcile
    from kernel.state import GENESIS, fold

    sim = SimVenue(quiet(BTC, tick_s=0.05))
    venue = FaultyVenue(sim)
    await venue.connect()
    real = sim.fills_since

    async def fills_then_trade(since: int) -> list[OrderFilled]:
        found = await real(since)
        await buy(sim, "0.003")  # made now, after the fills were asked
        return found

    sim.fills_since = fills_then_trade  # type: ignore[method-assign]
    try:
        await buy(sim, "0.002")
        put: list[Event] = []

        async def collect(e: Event) -> None:
            put.append(e)

        await Resync(venue, collect, time.time_ns, lambda: {}, 60.0).run()
    finally:
        await venue.close()
    state = GENESIS
    for e in put:
        e = msgspec.structs.replace(e, recv_ts=e.recv_ts or time.time_ns())
        if admit(state, e) is None:
            state = fold(state, e, state.seq + 1)
    checks = reconcile(state, ReconcileConfig()).r3
    assert [(c.verdict, c.reason) for c in checks] == [(Verdict.OK, "MATCH")], checks


# -- the daemon --------------------------------------------------------------------------


async def test_a_failing_resync_query_is_logged_and_a_later_drop_is_still_recovered(
    tmp_path: Path,
) -> None:
    sim = SimVenue(config().venue.sim)
    venue = FaultyVenue(sim)
    metrics = Metrics()
    daemon = Daemon(config(), venue, tmp_path, metrics=metrics)
    with capture_logs() as logs:
        async with running(daemon):
            await eventually(daemon.ready.is_set, what="ready")
            venue.raises["funding_since"].append(TimeoutError("REST call timed out"))
            await eventually(lambda: venue.failed["funding_since"] == 1, what="the failure")
            venue.drop = drop_fills
            await buy(sim, "0.002")
            await eventually(lambda: venue.dropped, what="the fill's push dropped")
            await eventually(lambda: btc_qty(daemon) == D("0.002"), what="fill recovered")
            assert daemon.connected
            age = metrics.registry.get_sample_value("exkernel_last_resync_success_age_seconds")
    failed = [e for e in logs if e["event"] == "resync failed"]
    assert len(failed) == 1, failed
    assert failed[0]["log_level"] == "warning" and failed[0]["step"] == "funding"
    assert isinstance(failed[0]["exc_info"], TimeoutError)
    assert not [e for e in logs if e["event"] == "venue disconnected"]
    assert metrics.registry.get_sample_value(
        "exkernel_resync_failures_total", {"step": "funding"}) == 1
    assert age is not None and 0 <= age < 2, age


async def test_a_resync_failing_persistently_forces_a_reconnect(tmp_path: Path) -> None:
    cfg = config(resync_max_failures=2)
    sim = SimVenue(cfg.venue.sim)
    venue = FaultyVenue(sim)
    daemon = Daemon(cfg, venue, tmp_path)
    with capture_logs() as logs:
        async with running(daemon):
            await eventually(daemon.ready.is_set, what="ready")
            venue.always["marks"] = VenueUnavailable("REST API down")
            await eventually(lambda: venue.calls["connect"] == 2, what="a reconnect")
            del venue.always["marks"]
            # The venue loop's own flag too: the reconnect's resync may have met the fault
            # before it was lifted, and its disconnect closes the venue before the event
            # saying so is folded. Nothing awaits between this check and the buy.
            await eventually(lambda: daemon._writer is not None and daemon.venue_loop.connected
                             and daemon._writer.state.connected and daemon.queue.empty(),
                             what="connected again")
            venue.drop = drop_fills
            await buy(sim, "0.003")
            await eventually(lambda: btc_qty(daemon) == D("0.003"), what="fill recovered")
    kinds = await logged(tmp_path / "events.db", "venue_connected", "venue_disconnected")
    names = [kind for kind, _ in kinds]
    assert names[:3] == ["venue_connected", "venue_disconnected", "venue_connected"], names
    gone = kinds[1][1]
    assert isinstance(gone, VenueDisconnected)
    assert "resync failed 2 times in a row, last at step marks" in gone.reason
    steps = [e["step"] for e in logs if e["event"] == "resync failed"]
    assert steps[:2] == ["marks", "marks"], steps


@pytest.mark.parametrize("error", [CredentialsRejected("key revoked"),
                                   InvariantViolation("impossible state")])
async def test_a_fatal_error_in_the_periodic_resync_stops_the_daemon_with_that_error(
    tmp_path: Path, error: Exception
) -> None:
    sim = SimVenue(config().venue.sim)
    venue = FaultyVenue(sim)
    daemon = Daemon(config(), venue, tmp_path)
    task = asyncio.create_task(daemon.run())
    await eventually(daemon.ready.is_set, what="ready")
    venue.raises["open_orders"].append(error)
    with pytest.raises(type(error)):
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("error", [CredentialsRejected("key revoked"),
                                   InvariantViolation("impossible state")])
async def test_a_fatal_error_in_the_reconcilers_look_at_open_orders_stops_the_daemon(
    tmp_path: Path, error: Exception
) -> None:
    """After each connect the reconciler asks the venue for its open orders: an error no
    retry fixes stops the daemon there too, not a warning that it went unchecked."""
    sim = SimVenue(config().venue.sim)
    daemon = Daemon(config(), FaultyVenue(sim), tmp_path)
    own = FaultyVenue(sim)  # the reconciler's own view of the venue: only it fails
    own.raises["open_orders"].append(error)
    daemon.reconciler.venue = own
    with capture_logs() as logs, pytest.raises(type(error)):
        await asyncio.wait_for(daemon.run(), 10)
    assert own.failed["open_orders"] == 1
    assert not [e for e in logs if e["event"].startswith("open orders unavailable")]


async def test_a_crash_between_a_resyncs_fills_and_its_funding_still_books_the_funding(
    tmp_path: Path,
) -> None:
    # The venue's history: a position opened ten minutes ago, funding paid every minute
    # since, a fill five seconds ago. No daemon saw any of it pushed.
    sim = SimVenue(quiet(BTC, tick_s=1.0, funding_interval_s=60.0))
    now = time.time_ns()
    sim.engine.advance(now - 600 * S)
    sim.engine.place(place(BTC_MARKET, qty=D("0.010")), "history-1", now - 599 * S)
    sim.engine.place(place(BTC_MARKET, qty=D("0.001")), "history-2", now - 5 * S)
    paid = {f.ts_ns // MS for f in sim.engine.truth().funding}
    assert len(paid) >= 8
    # First run: the fills are committed, then the funding query never returns; stop.
    first = FaultyVenue(sim)
    first.blocked.add("funding_since")
    daemon = Daemon(config(), first, tmp_path)
    async with running(daemon):
        await first.entered["funding_since"].wait()
        await eventually(lambda: btc_qty(daemon) == D("0.011") and daemon.queue.empty(),
                         what="the fills committed")
    db = tmp_path / "events.db"
    assert await logged(db, "funding_settled") == []
    # The restart asks for funding from where funding's last completed resync began:
    # never, so from the start; not from the newest fill less the lookback.
    second = FaultyVenue(sim)
    daemon = Daemon(config(), second, tmp_path)
    async with running(daemon):
        await eventually(daemon.ready.is_set, what="ready")
    funding = [e for _, e in await logged(db, "funding_settled")]
    assert all(isinstance(f, FundingSettled) for f in funding)
    assert paid <= {f.venue_ts // MS for f in funding}
    keys = [f.dedup_key for f in funding]
    assert len(keys) == len(set(keys)), "each payment once"
    assert daemon._writer is not None
    assert set(daemon._writer.state.resync_marks) == {"fills", "funding", "transfers"}


async def test_a_future_dated_fact_does_not_poison_later_resyncs(tmp_path: Path) -> None:
    sim = SimVenue(config().venue.sim)
    first = FaultyVenue(sim)
    daemon = Daemon(config(), first, tmp_path)
    async with running(daemon):
        await eventually(daemon.ready.is_set, what="ready")
        first.push(OrderFilled(venue_ts=time.time_ns() + 86400 * S, symbol="BTCUSDT",
                               trade_id="clock-error-1", order_id="clock-error",
                               side="buy", qty=D("0.001"), price=D(60000), fee=D(0),
                               fee_currency="USDT"))
        await eventually(lambda: btc_qty(daemon) == D("0.001"), what="the future fill")
    # A restart, and a fill lost from the stream: resync still asks from the kernel's
    # clock, not from the future fact's time.
    second = FaultyVenue(sim)
    second.drop = drop_fills
    daemon = Daemon(config(), second, tmp_path)
    async with running(daemon):
        await eventually(daemon.ready.is_set, what="ready")
        await buy(sim, "0.002")
        await eventually(lambda: second.dropped, what="the fill's push dropped")
        await eventually(lambda: btc_qty(daemon) == D("0.003"), what="fill recovered")
        assert daemon._writer is not None
        assert max(daemon._writer.state.resync_marks.values()) <= time.time_ns()


async def test_a_silent_stream_is_resynced_sooner_than_the_interval(tmp_path: Path) -> None:
    cfg = config(resync_every_s=30.0, resync_silence_s=0.2)
    venue = FaultyVenue(SimVenue(cfg.venue.sim))
    daemon = Daemon(cfg, venue, tmp_path)
    async with running(daemon):
        await eventually(daemon.ready.is_set, what="ready")
        await asyncio.sleep(1.0)  # marks every 50 ms: no resync before 30 s
        assert venue.calls["fills_since"] == 1
        venue.silent = True
        await eventually(lambda: venue.calls["fills_since"] >= 4, timeout=3,
                         what="resyncs while silent")
