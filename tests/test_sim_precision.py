"""The sim keeps money at each asset's precision, as Binance does: fees, each fill's
realized PnL and funding are rounded (8 places by default, half-even) before they are
booked, and reported so; the precisions are venue facts (`asset_defined`). Every number
here is worked by hand in the comments."""

from __future__ import annotations

import msgspec
import pytest
from sim_support import BTC, MS, T0, D, encode, engine, events, quiet

from adapters.sim.config import SimConfig, SimInstrument
from adapters.sim.engine import SimEngine
from adapters.sim.trader import OrderRequest
from events.facts import AssetDefined, FundingSettled, OrderFilled, PositionsReported

TICK = 250 * MS


def eth(price: str) -> SimInstrument:
    """ETHUSDT at a fixed `price`: 2 price decimals + 3 lot decimals + 4 of a rate make
    amounts of 9 places, one more than USDT keeps."""
    return SimInstrument(symbol="ETHUSDT", base="ETH", quote="USDT", settle="USDT",
                         tick_size=D("0.01"), lot_size=D("0.001"), min_notional=D(1),
                         start_price=D(price), volatility=D(0), leverage=D(5))


def market(side: str, qty: str, symbol: str = "BTCUSDT") -> OrderRequest:
    return OrderRequest(symbol=symbol, side=side, order_type="market", qty=D(qty))


def started(cfg: SimConfig, paths: dict[str, list[tuple[int, D]]] | None = None) -> SimEngine:
    eng = engine(cfg, paths)
    eng.advance(T0)
    return eng


def test_a_fee_is_rounded_to_8_places_before_it_is_booked() -> None:
    eng = started(quiet(eth("3000.01")))
    eng.place(market("buy", "0.001", "ETHUSDT"), "c1", T0)
    (fill,) = eng.truth().fills
    assert fill.fee == D("0.00120000")  # 0.001 * 3000.01 * 0.0004 = 0.001200004
    assert eng.truth().wallets == {"USDT": D("9999.99880000")}
    (ev, _) = events(encode([eng.fill_msgs[0][1]]))
    assert isinstance(ev, OrderFilled) and str(ev.fee) == "0.00120000"  # as Binance writes it


def test_each_fill_realizes_pnl_rounded_and_the_wallet_books_the_rounded_figure() -> None:
    prices = [(0, D(60000)), (250, D("60000.1")), (500, D(60100))]
    eng = started(quiet(BTC), {"BTCUSDT": prices})
    eng.place(market("buy", "0.001"), "a", T0)  # @ 60000
    eng.advance(T0 + TICK)
    eng.place(market("buy", "0.001"), "b", T0 + TICK)  # @ 60000.1
    eng.place(market("buy", "0.001"), "c", T0 + TICK)  # @ 60000.1
    assert eng.truth().positions["BTCUSDT"].avg == D("60000.066666666666666667")  # 180000.2/3
    eng.advance(T0 + 2 * TICK)
    eng.place(market("sell", "0.001"), "d", T0 + 2 * TICK)  # @ 60100
    last = eng.truth().fills[-1]
    # (60100 - 60000.066666666666666667) * 0.001 = 0.099933333333333333(333)
    assert last.exact_realized == D("0.099933333333333333")
    assert last.realized == D("0.09993333")
    # fees 0.024 + 0.02400004 + 0.02400004 + 0.02404 = 0.09604008
    truth = eng.truth()
    assert truth.wallets == {"USDT": D("10000.00389325")}  # 10000 - 0.09604008 + 0.09993333
    assert truth.rounding == {"USDT": D("-0.000000003333333333")}  # booked - exact
    (fill, _) = events(encode([eng.fill_msgs[-1][1]]))
    assert isinstance(fill, OrderFilled) and fill.venue_realized_pnl == D("0.09993333")
    report = eng.snapshot(T0 + 2 * TICK)
    assert report["a"]["B"] == [{"a": "USDT", "wb": "10000.00389325", "cw": "10000.00389325",
                                 "bc": "0"}]


@pytest.mark.parametrize(("rounding", "amount"), [
    ("half_even", "-0.00030000"), ("half_up", "-0.00030001"), ("down", "-0.00030000"),
])
def test_funding_is_rounded_the_configured_way(rounding: str, amount: str) -> None:
    eng = started(quiet(eth("3000.05"), funding_interval_s=1.0, rounding=rounding))
    eng.place(market("buy", "0.001", "ETHUSDT"), "c1", T0)  # fee 0.00120002: exact
    eng.advance(T0 + 1_000 * MS)
    (f,) = eng.truth().funding
    assert f.amount == D(amount)  # -0.001 * 3000.05 * 0.0001 = -0.000300005
    assert eng.truth().wallets["USDT"] == D("9999.99879998") + D(amount)
    (ev,) = events(encode([eng.funding_msgs[0][1]]))
    assert isinstance(ev, FundingSettled) and ev.amount == D(amount)


def test_an_asset_with_its_own_precision_is_rounded_to_it() -> None:
    eng = started(quiet(eth("3000.01"), asset_precision={"USDT": 2}))
    eng.place(market("buy", "0.001", "ETHUSDT"), "c1", T0)
    assert eng.truth().fills[0].fee == D("0.00")  # 0.001200004 at 2 places
    assert eng.truth().wallets == {"USDT": D("10000.00")}


def test_the_venue_defines_each_assets_precision() -> None:
    cfg = quiet(BTC, msgspec.structs.replace(eth("3000"), symbol="ETHSPOT", kind="spot"),
                deposits={"USDT": D(100), "BNB": D(1)}, asset_precision={"ETH": 6},
                rounding="half_up")
    eng = started(cfg)
    defined = [e for e in events(encode(eng.definitions)) if isinstance(e, AssetDefined)]
    # The deposits, the perpetual's settlement asset, the spot pair's base and quote.
    assert [(a.asset, a.precision, a.rounding, a.venue_ts) for a in defined] == [
        ("BNB", 8, "half_up", T0), ("ETH", 6, "half_up", T0), ("USDT", 8, "half_up", T0)]


def test_the_position_report_carries_the_venues_own_signed_notional() -> None:
    eng = started(quiet(BTC))
    eng.place(market("sell", "0.001"), "c1", T0)
    _, positions = events(encode([eng.snapshot(T0)]))
    assert isinstance(positions, PositionsReported)
    (p,) = positions.positions
    assert (p.qty, p.notional) == (D("-0.001"), D(-60))  # -0.001 * 60000, signed like qty
