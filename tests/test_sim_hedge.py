"""Hedge mode (`venue.sim.hedge_mode`, Binance's dualSidePosition): a LONG and a SHORT
position per symbol, orders that say which side they trade, funding paid per side; and
K, folded from what the sim pushes, equal to the venue's books for both sides."""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_support import BTC, MS, T0, D, busy, encode, engine, events, fold_all, quiet, run
from test_sim_engine import assert_k_is_truth
from test_sim_venue import fast

from adapters.sim.engine import SimEngine
from adapters.sim.orders import Accepted, Rejected
from adapters.sim.trader import OrderRequest
from events.codec import Event, decode
from events.control import InputQuarantined
from events.facts import FundingSettled, OrderFilled, PositionsReported
from events.log import EventLog
from kernel.daemon.writer import Writer

TICK = 250 * MS


def order(side: str, qty: str, position_side: str | None = None, **kw: object) -> OrderRequest:
    return OrderRequest(symbol="BTCUSDT", side=side, order_type="market", qty=D(qty),
                        position_side=position_side, **kw)  # type: ignore[arg-type]


def submit(eng: SimEngine, req: OrderRequest, cid: str, t: int = T0) -> Accepted | Rejected:
    return eng.submit(req, cid, t, req.position_side)


def hedged(**kw: object) -> SimEngine:
    eng = engine(quiet(BTC, hedge_mode=True, **kw),
                 {"BTCUSDT": [(0, D(60000)), (250, D(60100))]})
    eng.advance(T0)
    return eng


def test_buy_long_and_sell_short_hold_both_sides_at_once() -> None:
    eng = hedged()
    assert isinstance(submit(eng, order("buy", "0.001", "long"), "a"), Accepted)
    assert isinstance(submit(eng, order("sell", "0.001", "short"), "b"), Accepted)
    truth = eng.truth()
    assert {k: (h.qty, h.avg) for k, h in truth.positions.items()} == {
        "BTCUSDT|long": (D("0.001"), D(60000)), "BTCUSDT|short": (D("-0.001"), D(60000))}
    assert [f.position_side for f in truth.fills] == ["long", "short"]
    assert truth.wallets == {"USDT": D("9999.952")}  # two fees of 0.001 * 60000 * 0.0004
    # The report lists both sides of the symbol, as Binance's does in hedge mode.
    _, positions = events(encode([eng.snapshot(T0)]))
    assert isinstance(positions, PositionsReported)
    assert {(p.key, p.qty) for p in positions.positions} == {
        ("BTCUSDT|long", D("0.001")), ("BTCUSDT|short", D("-0.001"))}


def test_sell_long_and_buy_short_close_each_side_and_realize_its_pnl() -> None:
    eng = hedged()
    submit(eng, order("buy", "0.001", "long"), "a")
    submit(eng, order("sell", "0.001", "short"), "b")
    eng.advance(T0 + TICK)  # 60100
    submit(eng, order("sell", "0.001", "long"), "c", T0 + TICK)
    submit(eng, order("buy", "0.002", "short"), "d", T0 + TICK)  # at most what the side holds
    truth = eng.truth()
    assert truth.positions == {}
    assert [(f.position_side, f.qty, f.realized) for f in truth.fills[2:]] == [
        ("long", D("0.001"), D("0.1")),  # (60100 - 60000) * 0.001
        ("short", D("0.001"), D("-0.1")),  # (60000 - 60100) * 0.001
    ]
    # 10000 - 2 * 0.024 - 2 * 0.02404 + 0.1 - 0.1
    assert truth.wallets == {"USDT": D("9999.90392")}


def test_the_kernels_commands_derive_the_side_from_reduce_only() -> None:
    eng = hedged()
    for cid, req in [("a", order("buy", "0.001")), ("b", order("sell", "0.001")),
                     ("c", order("sell", "0.001", reduce_only=True))]:
        assert isinstance(eng.place(req, cid, T0), Accepted)  # as PlaceOrder: no side
    o = {c: eng.order_by_cid(c) for c in "abc"}
    assert [o[c].position_side for c in "abc"] == ["long", "short", "long"]  # type: ignore[union-attr]
    # a opened the long, b the short, c closed the long: the short is left.
    assert {k: h.qty for k, h in eng.truth().positions.items()} == {"BTCUSDT|short": D("-0.001")}
    assert isinstance(eng.place(order("buy", "0.001", reduce_only=True), "d", T0), Accepted)
    assert eng.truth().positions == {}


@pytest.mark.parametrize(("hedge", "req", "code"), [
    (True, order("sell", "0.001", "long"), "REDUCE_ONLY"),  # nothing long to close
    (True, order("buy", "0.001", reduce_only=True), "REDUCE_ONLY"),  # nothing short
    (True, order("buy", "0.001", "both"), "POSITION_SIDE"),
    (True, order("buy", "0.001", "long", reduce_only=True), "POSITION_SIDE"),
    (False, order("buy", "0.001", "long"), "POSITION_SIDE"),
])
def test_an_order_on_a_side_the_mode_has_not_is_rejected(
    hedge: bool, req: OrderRequest, code: str
) -> None:
    eng = engine(quiet(BTC, hedge_mode=hedge))
    eng.advance(T0)
    result = submit(eng, req, "c1")
    assert isinstance(result, Rejected) and result.code == code, result
    assert eng.truth().fills == ()


def test_funding_pays_each_side_on_its_own_at_one_time() -> None:
    eng = hedged(funding_interval_s=1.0)
    submit(eng, order("buy", "0.002", "long"), "a")
    submit(eng, order("sell", "0.001", "short"), "b")
    fills = eng.truth().fills
    long_qty = sum(f.qty for f in fills if f.position_side == "long")
    assert long_qty == D("0.002")
    eng.advance(T0 + 4 * TICK)  # the funding time; the mark is 60100 since the first tick
    truth = eng.truth()
    assert [(f.position_side, f.amount) for f in truth.funding] == [
        ("long", D("-0.01202")),  # -0.002 * 60100 * 0.0001: longs pay
        ("short", D("0.00601")),  # 0.001 * 60100 * 0.0001: shorts receive
    ]
    assert len({f.ts_ns for f in truth.funding}) == 1
    # One id per payment, from the funding time (ms) and its place in the round, so an
    # embedded sim started again on the same log does not reuse one.
    at_ms = (T0 + 1_000 * MS) // MS
    assert [f.funding_id for f in truth.funding] == [f"{at_ms}001", f"{at_ms}002"]
    parsed = [e for _, m in eng.funding_msgs for e in events(encode([m]))
              if isinstance(e, FundingSettled)]
    assert [(e.position_side, e.funding_id) for e in parsed] == [
        ("long", truth.funding[0].funding_id), ("short", truth.funding[1].funding_id)]


async def test_both_sides_funding_at_one_time_lands_in_the_log(tmp_path: Path) -> None:
    v = fast(quiet(BTC, hedge_mode=True, funding_interval_s=1.0))
    await v.connect()
    submit(v.engine, order("buy", "0.001", "long"), "a", v.engine.now)
    submit(v.engine, order("sell", "0.001", "short"), "b", v.engine.now)
    while len(v.engine.funding) < 2:  # the fake clock steps 10 ms per reading
        await v.marks()
    paid = await v.funding_since(0)
    setup: list[Event] = [*await v.assets(), *await v.instruments(),
                          *await v.leverage_settings(), *await v.transfers_since(0),
                          *await v.fills_since(0)]
    await v.close()
    assert len(paid) == 2 and paid[0].venue_ts == paid[1].venue_ts
    log = await EventLog.open(tmp_path / "events.db")
    try:
        writer = await Writer.open(log, clock=lambda: T0 + 10**12)
        result = await writer.ingest([*setup, *paid, *paid])  # and redelivered
        assert (result.quarantined, result.conflicts, result.duplicates) == (0, 0, 2)
        logged = [decode(r.payload) async for r in log.rows(kinds=["funding_settled"])]
        assert not [r async for r in log.rows(kinds=["input_quarantined"])]
    finally:
        await log.close()
    assert {(f.position_side, f.amount) for f in logged if isinstance(f, FundingSettled)} == {
        ("long", D("-0.006")), ("short", D("0.006"))}
    assert len({f.dedup_key for f in logged}) == 2
    assert writer.state.k.funding == {"USDT": D(0)}  # -0.006 + 0.006, both booked


@pytest.mark.parametrize("seed", [21, 22])
def test_k_folded_from_a_hedge_mode_stream_equals_the_venue_truth(seed: int) -> None:
    eng = engine(busy(seed, hedge_mode=True))
    msgs = run(eng, 60)
    msgs.append(eng.snapshot(T0 + 60_000 * MS))
    evs = events(encode(msgs))
    assert not [e for e in evs if isinstance(e, InputQuarantined)]
    truth = eng.truth()
    perp = [f for f in truth.fills if f.position_side != "both"]
    assert {f.position_side for f in perp} == {"long", "short"}
    assert any(f.realized for f in perp), "sides were closed, not only opened"
    times = [g.ts_ns for g in truth.funding]
    assert any(times.count(t) > 1 for t in times), "both sides paid at one funding time"
    fills = [e for e in evs if isinstance(e, OrderFilled)]
    assert {f.position_side for f in fills} >= {"long", "short", "both"}  # spot is "both"
    assert_k_is_truth(fold_all(evs), eng)
