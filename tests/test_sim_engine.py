"""The sim engine's matching rules, with hand-checked numbers, and the key property: the
kernel folding what the sim pushes ends with K equal to the venue's truth, R1-R6 OK."""

from __future__ import annotations

import random
from decimal import Decimal

import msgspec
import pytest
from sim_support import (
    BTC,
    BTC_INVERSE,
    ETH_SPOT,
    MS,
    T0,
    D,
    busy,
    encode,
    engine,
    events,
    fold_all,
    quiet,
    run,
)

from adapters.sim.config import SimConfig, SimFaults
from adapters.sim.engine import SimEngine
from adapters.sim.faults import FaultInjector
from adapters.sim.orders import Accepted, Rejected
from adapters.sim.parse import parse
from adapters.sim.trader import OrderRequest
from events.control import InputQuarantined
from events.facts import (
    AssetDefined,
    InstrumentDefined,
    LeverageSet,
    OrderFilled,
    TransferCompleted,
)
from kernel.reconcile import ReconcileConfig, Verdict, reconcile
from kernel.state import AccountState

TICK = 250 * MS


def req(side: str, qty: str, order_type: str = "market", **kw: object) -> OrderRequest:
    return OrderRequest(symbol=str(kw.pop("symbol", "BTCUSDT")), side=side,
                        order_type=order_type, qty=D(qty), **kw)  # type: ignore[arg-type]


def path(*prices: int) -> dict[str, list[tuple[int, Decimal]]]:
    """BTCUSDT's price at each tick (250 ms apart), from the start."""
    return {"BTCUSDT": [(i * 250, D(p)) for i, p in enumerate(prices)]}


def started(cfg: SimConfig | None = None, paths: dict[str, list[tuple[int, Decimal]]]
            | None = None) -> SimEngine:
    eng = engine(cfg or quiet(BTC), paths)
    eng.advance(T0)
    return eng


# --- matching ------------------------------------------------------------------------


def test_one_lot_market_buy_fills_at_the_price_as_taker() -> None:
    eng = started()
    assert isinstance(eng.place(req("buy", "0.001"), "c1", T0), Accepted)
    (fill,) = eng.truth().fills
    assert (fill.qty, fill.price, fill.liquidity) == (D("0.001"), D(60000), "taker")
    assert fill.fee == D("0.024")  # 0.001 * 60000 * 0.0004
    assert eng.truth().wallets == {"USDT": D("9999.976")}
    assert eng.truth().positions["BTCUSDT"].qty == D("0.001")


def test_market_order_fills_in_pieces_at_successive_ticks_of_impact() -> None:
    sizes = set()
    for seed in range(20):
        eng = started(quiet(BTC, seed=seed))
        eng.place(req("sell", "0.010"), "c1", T0)
        fills = eng.truth().fills
        sizes.add(len(fills))
        assert sum(f.qty for f in fills) == D("0.010")
        assert [f.price for f in fills] == [D("60000"), D("59999.9"), D("59999.8")][: len(fills)]
    assert sizes == {1, 2, 3}


def test_resting_limit_fills_as_maker_at_its_price_when_crossed() -> None:
    eng = started(paths=path(60000, 59990, 59980))
    eng.place(req("buy", "0.002", "limit", price=D(59995)), "c1", T0)
    assert eng.truth().fills == ()
    eng.advance(T0 + TICK)  # 59990 < 59995
    (fill,) = eng.truth().fills
    assert (fill.price, fill.liquidity, fill.fee) == (D(59995), "maker", D("0.023998"))
    assert not eng.truth().open_orders


def test_closing_realizes_price_pnl_and_the_wallet_pays_both_fees() -> None:
    eng = started(paths=path(60000, 60100))
    eng.place(req("buy", "0.001"), "c1", T0)
    eng.advance(T0 + TICK)
    eng.place(req("sell", "0.001"), "c2", T0 + TICK)
    realized = [f.realized for f in eng.truth().fills]
    assert realized == [D(0), D("0.1")]  # (60100 - 60000) * 0.001
    assert eng.truth().wallets["USDT"] == D("10000.05196")  # 10000 - .024 - .02404 + .1
    assert eng.truth().positions == {}


def test_a_fill_that_crosses_zero_realizes_only_the_closing_part() -> None:
    eng = started(paths=path(60000, 59990, 60010))
    eng.place(req("buy", "0.002", "limit", price=D(59995)), "c1", T0)
    eng.advance(T0 + TICK)
    eng.place(req("sell", "0.003", "limit", price=D(60005)), "c2", T0 + TICK)
    eng.advance(T0 + 2 * TICK)
    fills = eng.truth().fills
    assert [f.realized for f in fills] == [D(0), D("0.02")]  # (60005 - 59995) * 0.002
    pos = eng.truth().positions["BTCUSDT"]
    assert (pos.qty, pos.avg) == (D("-0.001"), D(60005))


def test_stop_triggers_when_the_price_falls_through_it() -> None:
    eng = started(paths=path(60000, 59990, 59980))
    eng.place(req("buy", "0.001"), "c1", T0)
    eng.place(req("sell", "0.001", "stop", trigger_price=D("59985"), reduce_only=True), "c2", T0)
    eng.advance(T0 + TICK)
    assert len(eng.truth().fills) == 1  # 59990: not yet
    eng.advance(T0 + 2 * TICK)
    last = eng.truth().fills[-1]
    assert (last.client_order_id, last.price, last.side) == ("c2", D(59980), "sell")
    assert eng.truth().positions == {}


def test_ioc_and_fok_that_cannot_fill_expire_without_a_fill() -> None:
    eng = started()
    for tif in ("IOC", "FOK"):
        assert isinstance(eng.place(req("buy", "0.001", "limit", price=D(59000),
                                        time_in_force=tif), tif, T0), Accepted)
        order = eng.order_by_cid(tif)
        assert order is not None and order.status == "expired"
    assert eng.truth().fills == ()


def test_cancel_and_amend_an_open_order() -> None:
    eng = started()
    eng.place(req("buy", "0.001", "limit", price=D(59000)), "c1", T0)
    assert isinstance(eng.amend("c1", "BTCUSDT", T0, price=D(59100), qty=D("0.002")), Accepted)
    (o,) = eng.truth().open_orders
    assert (o.price, o.qty) == (D(59100), D("0.002"))
    assert isinstance(eng.cancel("c1", "BTCUSDT", T0), Accepted)
    assert eng.truth().open_orders == ()
    again = eng.cancel("c1", "BTCUSDT", T0)
    assert isinstance(again, Rejected) and again.code == "UNKNOWN_ORDER"


def test_funding_is_paid_by_longs_when_the_rate_is_positive() -> None:
    eng = started(quiet(BTC, funding_interval_s=1.0), paths=path(60000, 59980))
    eng.place(req("buy", "0.002", "limit", price=D(59990)), "c1", T0)
    eng.advance(T0 + TICK)  # 59980 < 59990: one maker fill of the whole order
    eng.advance(T0 + 1_000 * MS)  # funding at mark 59980
    (f,) = eng.truth().funding
    assert f.amount == D("-0.011996")  # -0.002 * 59980 * 0.0001


def test_funding_is_received_by_shorts() -> None:
    eng = started(quiet(BTC, funding_interval_s=1.0))
    eng.place(req("sell", "0.001"), "c1", T0)
    eng.advance(T0 + 1_000 * MS)
    (f,) = eng.truth().funding
    assert f.amount == D("0.006")  # 0.001 * 60000 * 0.0001


def test_spot_buy_pays_its_fee_in_the_base_coin() -> None:
    eng = started(quiet(msgspec.structs.replace(ETH_SPOT, volatility=D(0))))
    eng.place(req("buy", "0.01", symbol="ETHSPOT"), "c1", T0)
    assert eng.truth().wallets == {"USDT": D(9970), "ETH": D("0.009996")}
    assert eng.truth().holdings["ETHSPOT"].qty == D("0.009996")
    rejected = eng.place(req("sell", "0.01", symbol="ETHSPOT"), "c2", T0)
    assert isinstance(rejected, Rejected) and rejected.code == "INSUFFICIENT_BALANCE"


def test_inverse_fee_and_margin_are_in_the_base_coin() -> None:
    inst = msgspec.structs.replace(BTC_INVERSE, volatility=D(0))
    eng = started(quiet(inst, deposits={"BTC": D(1)}))
    eng.place(req("buy", "1", symbol="BTCUSD"), "c1", T0)
    (fill,) = eng.truth().fills
    # 1 * 100 / 60000 * 0.0004 = 0.000000666..., booked at BTC's 8 places.
    assert (fill.fee, fill.fee_currency) == (D("0.00000067"), "BTC")
    assert eng.truth().wallets == {"BTC": D("0.99999933")}


REJECTIONS = [
    ("UNKNOWN_SYMBOL", req("buy", "0.001", symbol="DOGEUSDT")),
    ("TICK_SIZE", req("buy", "0.001", "limit", price=D("59000.05"))),
    ("LOT_SIZE", req("buy", "0.0015")),
    ("MIN_NOTIONAL", req("buy", "0.001", "limit", price=D(4000))),  # 4 < 5
    ("POST_ONLY_WOULD_CROSS", req("buy", "0.001", "limit", price=D(60000), post_only=True)),
    ("REDUCE_ONLY", req("sell", "0.001", reduce_only=True)),
    ("INSUFFICIENT_MARGIN", req("buy", "1.7")),  # 1.7 * 60000 / 10 = 10200 > 10000
    ("WOULD_TRIGGER_IMMEDIATELY", req("buy", "0.001", "stop", trigger_price=D(59990))),
    ("INVALID_ORDER", req("buy", "0.001", "limit")),
]


@pytest.mark.parametrize(("code", "spec"), REJECTIONS, ids=[c for c, _ in REJECTIONS])
def test_rejection(code: str, spec: OrderRequest) -> None:
    eng = started()
    result = eng.place(spec, "c1", T0)
    assert isinstance(result, Rejected) and result.code == code
    assert eng.truth().open_orders == () and eng.truth().fills == ()


def test_a_client_order_id_is_used_once() -> None:
    eng = started()
    assert isinstance(eng.place(req("buy", "0.001", "limit", price=D(59000)), "c1", T0), Accepted)
    again = eng.place(req("buy", "0.001", "limit", price=D(59000)), "c1", T0)
    assert isinstance(again, Rejected) and again.code == "DUPLICATE_CLIENT_ORDER_ID"


def test_insufficient_margin_counts_working_orders() -> None:
    eng = started()
    assert isinstance(eng.place(req("buy", "1.0", "limit", price=D(59000)), "c1", T0), Accepted)
    second = eng.place(req("buy", "0.8", "limit", price=D(59000)), "c2", T0)  # 5900+4720>10000
    assert isinstance(second, Rejected) and second.code == "INSUFFICIENT_MARGIN"


def test_the_same_seed_gives_the_same_messages() -> None:
    assert run(engine(busy(3)), 20) == run(engine(busy(3)), 20)
    assert run(engine(busy(3)), 20) != run(engine(busy(4)), 20)


# --- the key property ----------------------------------------------------------------


def assert_k_is_truth(state: AccountState, eng: SimEngine) -> None:
    """K is the venue's books: positions and holdings exactly; wallets exactly once the
    venue's per-fill rounding of realized PnL (which K books exactly) is added to K."""
    truth = eng.truth()
    k = state.k
    assets = k.wallets.keys() | truth.wallets.keys()
    assert {a: k.wallets.get(a, D(0)) + truth.rounding.get(a, D(0)) for a in assets} == {
        a: truth.wallets.get(a, D(0)) for a in assets}
    # K's own tally of that rounding (from the venue's asset_defined) is the venue's.
    assert {a: k.venue_rounding.get(a, D(0)) for a in assets} == {
        a: truth.rounding.get(a, D(0)) for a in assets}
    assert {s: (p.qty, p.avg_open) for s, p in k.positions.items()} == {
        s: (h.qty, h.avg) for s, h in truth.positions.items()}
    assert {s: (p.qty, p.avg_open) for s, p in k.holdings.items()} == {
        s: (h.qty, h.avg) for s, h in truth.holdings.items()}


def assert_reconciled(state: AccountState) -> None:
    """Every rule OK: R5 included for each settlement asset (the sim reports margin per
    asset, as Binance's account endpoint does)."""
    result = reconcile(state, ReconcileConfig())
    bad = [c for c in result.checks if c.verdict is not Verdict.OK]
    assert not bad, bad


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_k_folded_from_the_sim_stream_equals_the_venue_truth(seed: int) -> None:
    eng = engine(busy(seed))
    msgs = run(eng, 60)
    end = T0 + 60_000 * MS
    msgs.append(eng.snapshot(end))  # the reports settle: one at the end, after every mark
    state = fold_all(events(encode(msgs)))
    truth = eng.truth()
    assert len(truth.fills) > 50 and truth.funding and truth.holdings and truth.positions
    assert sum(isinstance(e, OrderFilled) for e in events(encode(msgs))) == len(truth.fills)
    assert_k_is_truth(state, eng)
    assert_reconciled(state)


def faulty_run(seed: int, faults: SimFaults) -> tuple[SimEngine, list[bytes]]:
    eng = engine(busy(seed, faults=faults))
    inj = FaultInjector(faults, random.Random(seed), eng.config.report_delay_ms)
    raws: list[bytes] = []
    for i in range(241):
        now = T0 + i * TICK
        raws += inj.push(eng.advance(now), now)
    return eng, raws + inj.flush()


def resync(eng: SimEngine, now: int) -> list[bytes]:
    """What the venue's resync queries answer (all fills, funding, transfers, definitions,
    marks, and one account report), as the wire payloads they are parsed from."""
    msgs = [*eng.definitions, *(m for _, m in eng.transfer_msgs), *(m for _, m in eng.fill_msgs),
            *(m for _, m in eng.funding_msgs), *eng.mark_msgs(now), eng.snapshot(now)]
    return encode(msgs)


def test_order_preserving_faults_plus_resync_still_give_the_truth() -> None:
    faults = SimFaults(duplicate=0.2, stale_reports=0.5)
    eng, raws = faulty_run(5, faults)
    end = T0 + 240 * TICK  # where faulty_run stopped: the resync adds no new time
    state = fold_all(events(raws + resync(eng, end)))
    assert_k_is_truth(state, eng)
    assert_reconciled(state)


@pytest.mark.parametrize("seed", [6, 7])
def test_every_fact_lost_to_faults_comes_back_through_resync(seed: int) -> None:
    faults = SimFaults(duplicate=0.1, reorder=0.1, drop=0.1, malformed=0.1, stale_reports=0.3)
    eng, raws = faulty_run(seed, faults)
    end = T0 + 240 * TICK  # where faulty_run stopped: the resync adds no new time
    streamed = events(raws)
    truth_fills = {f"fill:{f.symbol}:{f.trade_id}" for f in eng.truth().fills}
    assert not truth_fills <= {e.dedup_key for e in streamed}  # the faults did lose fills
    recovered = streamed + events(resync(eng, end))
    state = fold_all((e for e in recovered if not isinstance(e, InputQuarantined)),
                     strict=False)
    assert {e.dedup_key for e in recovered if isinstance(e, OrderFilled)} == truth_fills
    truth = eng.truth()
    # Quantities, fees, funding and transfers do not depend on the order fills arrive in.
    assert {s: p.qty for s, p in state.k.positions.items()} == {
        s: h.qty for s, h in truth.positions.items()}
    fees: dict[str, Decimal] = {}
    for f in truth.fills:
        fees[f.fee_currency] = fees.get(f.fee_currency, D(0)) + f.fee
    assert state.k.fees == fees
    funding: dict[str, Decimal] = {}
    for g in truth.funding:
        funding[g.asset] = funding.get(g.asset, D(0)) + g.amount
    assert state.k.funding == funding
    # Folded in arrival order (late fills included), K is the truth exactly: each position
    # key books its fills in the venue's order (kernel.position).
    assert_k_is_truth(state, eng)
    # And so it is folded in the venue's order.
    fills = sorted((e for e in recovered if isinstance(e, OrderFilled)),
                   key=lambda e: int(e.trade_id))
    others = [e for e in recovered if not isinstance(e, OrderFilled)]
    setup = (AssetDefined, InstrumentDefined, LeverageSet, TransferCompleted)
    ordered = [e for kind in setup for e in others if isinstance(e, kind)]
    rest = [e for e in others if not isinstance(e, (*setup, InputQuarantined))]
    assert_k_is_truth(fold_all([*ordered, *fills, *rest]), eng)


def test_a_malformed_push_parses_to_a_quarantine_never_a_fact() -> None:
    eng = engine(busy(8))
    inj = FaultInjector(SimFaults(), random.Random(8), 200)
    for msg in run(eng, 5):
        for _ in range(3):
            (ev,) = parse(inj.malform(msg), T0)
            assert isinstance(ev, InputQuarantined) and ev.source == "sim"


def test_a_fill_recovered_after_a_later_fill_still_gives_the_truth() -> None:
    eng = started(paths=path(60000, 59990, 60020, 60030))
    eng.place(req("buy", "0.002", "limit", price=D(59995)), "a", T0)
    msgs = eng.advance(T0 + TICK)  # a: 0.002 @ 59995
    msgs += eng.advance(T0 + 2 * TICK)
    eng.place(req("sell", "0.001"), "b", T0 + 2 * TICK)  # b: realizes (60020 - 59995) * .001
    lost = eng.advance(T0 + 2 * TICK)
    msgs += eng.advance(T0 + 3 * TICK)
    eng.place(req("buy", "0.001"), "c", T0 + 3 * TICK)  # c: 0.001 @ 60030
    msgs += eng.advance(T0 + 4 * TICK)
    streamed = events(encode([*eng.definitions, *(m for _, m in eng.transfer_msgs), *msgs]))
    backfilled = events(encode(lost))  # what fills_since answers after the gap
    assert any(isinstance(e, OrderFilled) and e.client_order_id == "b" for e in backfilled)
    assert_k_is_truth(fold_all(streamed + backfilled), eng)
