"""The real daemon (in process: a real SQLite log, the real writer) on the ccxt.pro adapter,
against the fake Binance USD-M venue: fills, partial fills, fees and realized PnL per fill,
funding and a deposit, then the ways a real venue loses pushes (a dropped socket, an
expired listenKey) and a restart while fills arrive. Each ends with K equal to the venue's
books, every rule OK, and every venue trade in the log exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest
from ccxtpro_support import BTC, ETH, adapter, daemon_config, fake, place
from fakebinance import FakeBinance

from adapters.ccxtpro.venue import CcxtProVenue
from events.codec import decode_logged
from events.facts import OrderFilled
from events.log import EventLog
from kernel.daemon.service import Daemon
from kernel.reconcile import Verdict

SYMBOL_OF = {"BTCUSDT": BTC, "ETHUSDT": ETH}


@contextlib.asynccontextmanager
async def running(fb: FakeBinance, state: Path) -> AsyncIterator[tuple[Daemon, CcxtProVenue]]:
    venue = adapter(fb)
    daemon = Daemon(daemon_config(fb), venue, state)
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.ready.wait(), 20)
        yield daemon, venue
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 20) == 0


def differences(daemon: Daemon, fb: FakeBinance) -> list[str]:
    """What separates K from the venue's books, and every rule not OK."""
    assert daemon._writer is not None
    snap = daemon._writer.snapshot
    out = []
    venue_wallet = fb.engine.book.wallet.get("USDT", D(0))
    if snap.k.wallets.get("USDT", D(0)) != venue_wallet:
        out.append(f"wallet: K {snap.k.wallets.get('USDT')} venue {venue_wallet}")
    held = {(SYMBOL_OF[s], side): p.amount for (s, side), p in fb.engine.book.positions.items()
            if p.amount}
    kept = {(p.symbol, p.position_side.upper() if p.position_side != "both" else "BOTH"): p.qty
            for p in snap.k.positions.values() if p.qty}
    if held != kept:
        out.append(f"positions: K {kept} venue {held}")
    out += [f"{c.rule} {c.subject} {c.verdict.value} {c.reason}"
            for c in snap.reconcile.checks if c.verdict is not Verdict.OK]
    return out


async def settled(daemon: Daemon, fb: FakeBinance, timeout: float = 20.0) -> None:
    left: list[str] = []
    for _ in range(int(timeout / 0.2)):
        await asyncio.sleep(0.2)
        left = differences(daemon, fb)
        if not left and daemon.connected and daemon.queue.empty():
            return
    raise AssertionError(left)


async def logged_trades(state: Path) -> list[str]:
    log = await EventLog.open(state / "events.db", readonly=True)
    try:
        return [ev.trade_id async for row in log.rows(kinds=["order_filled"])
                if isinstance(ev := decode_logged(row.payload), OrderFilled)]
    finally:
        await log.close()


async def booked_once(fb: FakeBinance, state: Path) -> None:
    trades = await logged_trades(state)
    assert sorted(trades) == sorted(str(t.id) for t in fb.engine.book.trades)


@pytest.fixture
async def fb() -> AsyncIterator[FakeBinance]:
    async with fake() as venue:
        await venue.deposit("USDT", "10000")
        yield venue


@pytest.mark.parametrize("hedge", [False, True])
async def test_fills_funding_and_a_deposit_leave_k_equal_to_e_and_every_rule_ok(
        tmp_path: Path, hedge: bool) -> None:
    async with fake(hedge=hedge) as fb, running(fb, tmp_path) as (daemon, venue):
        await fb.deposit("USDT", "10000")
        await venue.place(place(qty="0.010"))  # open long at 60000 (taker fee)
        # One-way: a partial close of the long. Hedge mode: reduce-only closes the long.
        rest = place(side="sell", qty="0.006", order_type="limit", price=D("60200.0"),
                     reduce_only=hedge)
        await venue.place(rest)
        await fb.fill(rest.client_order_id, qty=D("0.002"))  # a partial maker fill...
        await fb.set_mark("BTCUSDT", "60150")
        await fb.fill(rest.client_order_id)  # ...and the rest: realized PnL on each
        await venue.place(place(symbol=ETH, side="sell", qty="0.050"))
        await fb.fund("BTCUSDT", rate="0.0001")
        await fb.fund("ETHUSDT", rate="-0.0002")
        await fb.deposit("USDT", "250.5")
        if hedge:
            await venue.place(place(side="sell", qty="0.003"))  # a short beside the long
        await settled(daemon, fb)
        assert daemon._writer is not None
        state = daemon._writer.state
        assert state.quarantined == 0
        realized = [t.realized_pnl for t in fb.engine.book.trades if t.realized_pnl]
        assert len(realized) == 2  # R2 compared both closing fills, and they agreed
        if hedge:
            assert {p.position_side for p in state.k.positions.values()} == {"long", "short"}
        await booked_once(fb, tmp_path)


async def test_fills_during_a_dropped_socket_are_backfilled_and_booked_once(
        fb: FakeBinance, tmp_path: Path) -> None:
    async with running(fb, tmp_path) as (daemon, venue):
        limits = [place(order_type="limit", price=D("59000.0") - i, qty="0.002")
                  for i in range(3)]
        for cmd in limits:
            await venue.place(cmd)
        await fb.drop_sockets()
        dropped = len(fb.requests)
        for cmd in limits:  # the venue fills them while nobody listens
            await fb.fill(cmd.client_order_id)
        await settled(daemon, fb)
        assert ("GET", "/fapi/v1/userTrades") in fb.requests[dropped:]  # backfilled
    await booked_once(fb, tmp_path)
    assert len(fb.engine.book.trades) == 3


async def test_an_expired_listen_key_loses_no_fill(fb: FakeBinance, tmp_path: Path) -> None:
    async with running(fb, tmp_path) as (daemon, venue):
        rest = place(order_type="limit", price=D("59500.0"), qty="0.004")
        await venue.place(rest)
        await fb.expire_listen_key()
        await fb.fill(rest.client_order_id, qty=D("0.001"))  # pushed to nobody
        await fb.fill(rest.client_order_id)
        await settled(daemon, fb)
        assert fb.requests.count(("POST", "/fapi/v1/listenKey")) == 2  # a new listenKey
    await booked_once(fb, tmp_path)


async def test_a_restart_while_fills_arrive_loses_and_doubles_nothing(
        fb: FakeBinance, tmp_path: Path) -> None:
    async with running(fb, tmp_path) as (_, venue):
        resting = [place(order_type="limit", price=D("58000.0") - i, qty="0.002")
                   for i in range(8)]
        for cmd in resting:
            await venue.place(cmd)

    async def fill_all() -> None:
        for cmd in resting:
            await fb.fill(cmd.client_order_id)
            await asyncio.sleep(0.15)

    filling = asyncio.create_task(fill_all())
    try:
        async with running(fb, tmp_path):
            await asyncio.sleep(0.5)  # stopped mid-stream...
        async with running(fb, tmp_path) as (daemon, _):  # ...and started again
            await filling
            await settled(daemon, fb)
    finally:
        filling.cancel()
    await booked_once(fb, tmp_path)
    assert len(fb.engine.book.trades) == 8


async def test_a_restart_after_downtime_books_every_missed_payment(
        fb: FakeBinance, tmp_path: Path) -> None:
    async with running(fb, tmp_path) as (daemon, venue):
        await venue.place(place(qty="0.010"))
        await venue.place(place(symbol=ETH, side="sell", qty="0.100"))
        await settled(daemon, fb)
    for rate in ("0.0001", "0.0003", "-0.0002"):  # three funding times while it is down
        await fb.fund("BTCUSDT", rate=rate)
        await fb.fund("ETHUSDT", rate=rate)
    await fb.withdraw("USDT", "120")
    async with running(fb, tmp_path) as (daemon, _):
        await settled(daemon, fb)
        assert daemon._writer is not None
        paid = sum(1 for i in fb.engine.book.income if i.income_type == "FUNDING_FEE")
        assert paid == 6
