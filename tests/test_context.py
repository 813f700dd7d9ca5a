"""The ExecutionContext against a real daemon: each call becomes the intended intent in
the log (read back with the EventLog reader), with deterministic client-assigned ids,
and the state it reads is the latest snapshot's."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from events.codec import Event, decode_logged
from events.log import EventLog
from events.orders import IntentAmended, IntentCanceled, IntentPlaced
from kernel.client import Client, Conflict, ExecutionContext, Rejected
from kernel.public import PublicSnapshot
from tests.client_support import ROOT, TRADE, Daemon

D = Decimal


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("context")).start()
    try:
        yield d
    finally:
        assert d.stop() == 0


@pytest.fixture
async def client(daemon: Daemon) -> AsyncIterator[Client]:
    async with Client.connect(unix_path=daemon.socket, token=TRADE) as c:
        yield c


async def intent_events(db: Path) -> dict[int, Event]:
    log = await EventLog.open(db, readonly=True)
    try:
        kinds = ("intent_placed", "intent_amended", "intent_canceled")
        return {r.seq: decode_logged(r.payload) async for r in log.rows(kinds=kinds)}
    finally:
        await log.close()


async def final_snapshot(daemon: Daemon) -> PublicSnapshot:
    async with Client.connect(unix_path=daemon.socket, token=TRADE) as c:
        return await c.get_snapshot()


async def placed(db: Path, intent_id: str) -> list[IntentPlaced]:
    return [e for e in (await intent_events(db)).values()
            if isinstance(e, IntentPlaced) and e.intent_id == intent_id]


async def test_each_order_call_logs_the_intent_it_names(client: Client, daemon: Daemon) -> None:
    ctx = await ExecutionContext.start(client, "s1")
    try:
        limit = await ctx.limit_order("BTCUSDT", "buy", "0.010", D("50000.0"), post_only=True)
        market = await ctx.market_order("BTCUSDT", "sell", "0.002", reduce_only=True)
        stop = await ctx.stop_order("BTCUSDT", "sell", "0.010", "49000.0", reduce_only=True)
        stop_limit = await ctx.stop_order("BTCUSDT", "sell", "0.010", "49000.0",
                                          price="48990.0")
        tp = await ctx.take_profit_order("BTCUSDT", "sell", "0.010", "70000.0")
        tp_limit = await ctx.take_profit_order("BTCUSDT", "sell", "0.010", "70000.0",
                                               price="70010.0", oco_group="s1-exit")
    finally:
        await ctx.close()
    assert [limit, market, stop, stop_limit, tp, tp_limit] == [f"s1-{n}" for n in range(1, 7)]
    want = {
        limit: ("buy", "limit", D("0.010"), D("50000.0"), None, False, True, None),
        market: ("sell", "market", D("0.002"), None, None, True, False, None),
        stop: ("sell", "stop", D("0.010"), None, D("49000.0"), True, False, None),
        stop_limit: ("sell", "stop_limit", D("0.010"), D("48990.0"), D("49000.0"), False,
                     False, None),
        tp: ("sell", "take_profit", D("0.010"), None, D("70000.0"), False, False, None),
        tp_limit: ("sell", "take_profit_limit", D("0.010"), D("70010.0"), D("70000.0"),
                   False, False, "s1-exit"),
    }
    for intent_id, fields in want.items():
        [e] = await placed(daemon.db, intent_id)
        assert (e.side, e.order_type, e.qty, e.price, e.trigger_price, e.reduce_only,
                e.post_only, e.oco_group) == fields, intent_id
        assert e.strategy == "s1" and e.symbol == "BTCUSDT"


async def test_a_call_returns_with_the_intent_in_the_contexts_state(client: Client) -> None:
    ctx = await ExecutionContext.start(client, "s2")
    try:
        oid = await ctx.limit_order("BTCUSDT", "buy", "0.010", "50000.0")
        [pending] = ctx.pending_orders  # no wait: the call waited for its snapshot
        assert pending.intent_id == oid and pending.qty == D("0.010")
        assert pending.price == D("50000.0") and pending.strategy == "s2"
        assert await ctx.cancel(oid) is True
        assert ctx.pending_orders == []
        assert await ctx.cancel(oid) is False  # canceled before: the kernel said duplicate
    finally:
        await ctx.close()


async def test_ids_count_on_after_a_restart_of_the_strategy(client: Client) -> None:
    first = await ExecutionContext.start(client, "s3")
    ids = [await first.limit_order("BTCUSDT", "buy", "0.010", "50000.0") for _ in range(2)]
    await first.close()
    second = await ExecutionContext.start(client, "s3")  # a restarted strategy
    try:
        assert ids == ["s3-1", "s3-2"]
        assert await second.limit_order("BTCUSDT", "buy", "0.010", "50000.0") == "s3-3"
    finally:
        await second.close()


async def test_a_tag_names_the_intent_and_is_placed_once(client: Client, daemon: Daemon) -> None:
    ctx = await ExecutionContext.start(client, "s4")
    try:
        sl = await ctx.stop_order("BTCUSDT", "sell", "0.010", "49000.0", tag="sl")
        again = await ctx.stop_order("BTCUSDT", "sell", "0.010", "49000.0", tag="sl")
        assert sl == again == "s4.sl"
        assert len(await placed(daemon.db, "s4.sl")) == 1
        with pytest.raises(Conflict):  # the working "sl" has another trigger
            await ctx.stop_order("BTCUSDT", "sell", "0.010", "48000.0", tag="sl")
        await ctx.cancel(sl)
        replaced = await ctx.stop_order("BTCUSDT", "sell", "0.010", "48000.0", tag="sl")
        assert replaced == "s4.sl#2"
        [e] = await placed(daemon.db, replaced)
        assert e.trigger_price == D("48000.0")
    finally:
        await ctx.close()
    restarted = await ExecutionContext.start(client, "s4")
    try:  # the same name after a restart: the working generation, not a new order
        assert await restarted.stop_order("BTCUSDT", "sell", "0.010", "48000.0",
                                          tag="sl") == "s4.sl#2"
        assert len(await placed(daemon.db, "s4.sl#2")) == 1
    finally:
        await restarted.close()


async def test_amend_logs_the_next_revision_each_time(client: Client, daemon: Daemon) -> None:
    ctx = await ExecutionContext.start(client, "s5")
    try:
        oid = await ctx.limit_order("BTCUSDT", "buy", "0.010", "50000.0")
        await ctx.amend(oid, price="50010.0")
        await ctx.amend(oid, qty="0.020")
        [intent] = [i for i in ctx.pending_orders if i.intent_id == oid]
        assert (intent.revision, intent.price, intent.qty) == (2, D("50010.0"), D("0.020"))
    finally:
        await ctx.close()
    amends = [e for e in (await intent_events(daemon.db)).values()
              if isinstance(e, IntentAmended) and e.intent_id == oid]
    assert [(a.revision, a.price, a.qty) for a in amends] == [
        (1, D("50010.0"), None), (2, None, D("0.020"))]


async def test_cancel_all_cancels_this_strategys_working_intents_only(
    client: Client, daemon: Daemon
) -> None:
    other = await ExecutionContext.start(client, "s6-other")
    ctx = await ExecutionContext.start(client, "s6")
    try:
        theirs = await other.limit_order("BTCUSDT", "buy", "0.010", "50000.0")
        btc = [await ctx.limit_order("BTCUSDT", "buy", "0.010", "50000.0") for _ in range(2)]
        eth = await ctx.limit_order("ETHUSDT", "buy", "0.100", "2000.00")
        assert await ctx.cancel_all("BTCUSDT") == 2
        assert [i.intent_id for i in ctx.pending_orders] == [eth]
        assert await ctx.cancel_all() == 1
        assert ctx.pending_orders == []
        assert [i.intent_id for i in other.pending_orders] == [theirs]
    finally:
        await ctx.close()
        await other.close()
    canceled = {e.intent_id for e in (await intent_events(daemon.db)).values()
                if isinstance(e, IntentCanceled)}
    assert {*btc, eth} <= canceled and theirs not in canceled


async def test_close_position_is_a_reduce_only_market_intent_for_the_whole_position(
    client: Client, daemon: Daemon
) -> None:
    ctx = await ExecutionContext.start(client, "s7")
    try:
        async with asyncio.timeout(30):  # the sim's scripted trader opens positions
            async for _ in ctx.updates():
                if ctx.positions:
                    break
        pos = ctx.positions[0]
        oid = await ctx.close_position(pos.symbol)
        assert oid is not None
        assert await ctx.close_position("FLATUSDT") is None  # nothing open: no intent
    finally:
        await ctx.close()
    [e] = await placed(daemon.db, oid)
    assert e.order_type == "market" and e.reduce_only and e.symbol == pos.symbol
    assert e.qty == abs(pos.qty) and e.side == ("sell" if pos.qty > 0 else "buy")


async def test_account_and_positions_are_the_snapshots_figures(client: Client) -> None:
    ctx = await ExecutionContext.start(client, "s8")
    try:
        snap = ctx.snapshot
        usdt = snap.k.assets["USDT"]
        acct = ctx.accounts["USDT"]
        assert (acct.equity, acct.capital, acct.used_margin, acct.available_margin) == (
            usdt.equity, usdt.capital, usdt.used_margin, usdt.available_margin)
        assert ctx.positions == [p for p in snap.k.positions.values() if p.qty]
        for p in ctx.positions:
            assert ctx.position(p.symbol) == p
    finally:
        await ctx.close()


async def test_bad_input_is_refused_and_the_kernels_gate_names_the_field(client: Client) -> None:
    ctx = await ExecutionContext.start(client, "s9")
    try:
        with pytest.raises(TypeError, match="qty must be a Decimal"):
            await ctx.limit_order("BTCUSDT", "buy", 0.01, "50000.0")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="tag must be"):
            await ctx.market_order("BTCUSDT", "buy", "0.010", tag="has space")
        with pytest.raises(Rejected) as e:  # the kernel's gate: off the tick
            await ctx.limit_order("BTCUSDT", "buy", "0.010", "50000.05")
        assert e.value.field is not None and e.value.field.endswith("price")
        assert await ctx.limit_order("BTCUSDT", "buy", "0.010", "50000.0") == "s9-2"
        assert [i.intent_id for i in ctx.pending_orders] == ["s9-2"]
    finally:
        await ctx.close()


def test_the_grid_example_runs_against_the_daemon(daemon: Daemon) -> None:
    env = {**{k: v for k, v in os.environ.items() if k != "EXKERNEL_API_TOKEN"},
           "EXKERNEL_API_TOKEN": TRADE}
    out = subprocess.run([sys.executable, "-m", "examples.grid", "--state-dir", str(daemon.state),
                          "--rounds", "2", "--every", "0.2"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "round 2:" in out.stdout and "done: canceled" in out.stdout
    events = asyncio.run(intent_events(daemon.db)).values()
    ids = {e.intent_id for e in events if isinstance(e, IntentPlaced) and e.strategy == "grid"}
    levels = {f"grid.L{n}-{side}" for n in (1, 2) for side in ("buy", "sell")}
    assert levels <= ids  # round 1: every level
    # round 2: each level followed the mark by an amend, or (filled) came back as its
    # next generation; either way every level moved
    amended = {e.intent_id for e in events if isinstance(e, IntentAmended)}
    for level in levels:
        assert level in amended or f"{level}#2" in ids, level
    # on its way out the grid canceled what was still working: nothing is left
    snap = asyncio.run(final_snapshot(daemon))
    working = [i.intent_id for i in snap.intents if i.strategy == "grid"
               and i.status not in ("FAILED", "COMPLETED", "CANCELED")
               and i.intent_id not in {e.intent_id for e in events
                                       if isinstance(e, IntentCanceled)}]
    assert working == []
