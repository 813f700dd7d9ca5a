"""The fake venue's matching engine on its own: the rules a test scenario can rely on."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from fakebinance import BinanceError, EngineConfig, default_instruments
from fakebinance.clock import VenueClock
from fakebinance.engine import Engine
from fakebinance.views import income, user_trades


def engine(**config: Any) -> Engine:
    clock = VenueClock()
    clock.hold(1_750_000_000_000)
    return Engine(EngineConfig(**config), default_instruments(), clock, seed=1)


def order(e: Engine, **params: str) -> dict[str, Any]:
    return e.place({"symbol": "BTCUSDT", "newOrderRespType": "RESULT", **params})


def code(call: Any) -> int:
    with pytest.raises(BinanceError) as info:
        call()
    return info.value.code


def test_ioc_that_does_not_cross_expires_and_fok_is_refused() -> None:
    e = engine()
    ioc = order(e, side="BUY", type="LIMIT", timeInForce="IOC", quantity="0.002", price="59000")
    assert ioc["status"] == "EXPIRED"
    assert e.user_events[-1]["o"]["er"] == "2"
    assert code(lambda: order(e, side="BUY", type="LIMIT", timeInForce="FOK", quantity="0.002",
                              price="59000")) == -5021


def test_reduce_only_market_fills_the_position_and_expires_the_rest() -> None:
    e = engine()
    order(e, side="BUY", type="MARKET", quantity="0.002")
    closing = order(e, side="SELL", type="MARKET", quantity="0.005", reduceOnly="true")
    assert (closing["status"], closing["executedQty"]) == ("EXPIRED", "0.002")
    assert e.book.open_positions() == []


def test_resting_limit_fills_at_its_price_when_the_mark_reaches_it() -> None:
    e = engine()
    rest = order(e, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.002",
                 price="59500")
    assert e.risk().open_order_im == D("0.002") * D("59500") / 20
    e.set_mark("BTCUSDT", D("59400"))
    o = e.orders[rest["orderId"]]
    assert (o.status, o.avg_price) == ("FILLED", D("59500"))
    assert e.book.trades[-1].maker and e.book.trades[-1].commission == D("0.0238")


def test_amend_rules() -> None:
    e = engine()
    placed = order(e, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.004",
                   price="59500")
    ref = {"symbol": "BTCUSDT", "orderId": str(placed["orderId"]), "side": "BUY"}
    assert code(lambda: e.amend({**ref, "quantity": "0.004", "price": "59500"})) == -5027
    e.fill_resting(placed["orderId"], D("0.002"))
    e.amend({**ref, "quantity": "0.004", "price": "60100"})  # now crosses: fills as taker
    assert e.orders[placed["orderId"]].status == "FILLED"
    second = order(e, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.004",
                   price="59500")
    e.fill_resting(second["orderId"], D("0.002"))
    e.amend({**ref, "orderId": str(second["orderId"]), "quantity": "0.002", "price": "59500"})
    assert e.orders[second["orderId"]].status == "CANCELED"  # new qty <= executed qty


def test_trailing_stop_fires_on_the_callback_from_the_high() -> None:
    e = engine()
    order(e, side="BUY", type="MARKET", quantity="0.01")
    algo = e.algo.place({"algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL",
                         "type": "TRAILING_STOP_MARKET", "quantity": "0.01",
                         "callbackRate": "1", "activatePrice": "60500", "reduceOnly": "true"})
    for mark in ("60400", "61000", "60500"):
        e.set_mark("BTCUSDT", D(mark))
    assert e.algo.algos[algo["algoId"]].algo_status == "NEW"
    e.set_mark("BTCUSDT", D("60390"))  # 61000 * 0.99
    assert e.algo.algos[algo["algoId"]].algo_status == "FINISHED"
    assert e.book.open_positions() == []


def test_close_position_stop_closes_whatever_is_open() -> None:
    e = engine()
    order(e, side="BUY", type="MARKET", quantity="0.003")
    e.algo.place({"algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL",
                  "type": "STOP_MARKET", "triggerPrice": "59000", "closePosition": "true"})
    order(e, side="BUY", type="MARKET", quantity="0.002")
    e.set_mark("BTCUSDT", D("58900"))
    assert e.book.open_positions() == [] and e.book.trades[-1].qty == D("0.005")


def test_hedge_mode_close_beyond_the_position_is_2022() -> None:
    e = engine(hedge_mode=True)
    order(e, side="BUY", type="MARKET", quantity="0.002", positionSide="LONG")
    assert code(lambda: order(e, side="SELL", type="MARKET", quantity="0.003",
                              positionSide="LONG")) == -2022
    assert code(lambda: order(e, side="BUY", type="MARKET", quantity="0.002")) == -4061


def test_account_settings_refuse_what_binance_refuses() -> None:
    e = engine()
    assert code(lambda: e.set_leverage("BTCUSDT", 126)) == -4028
    order(e, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.002", price="59500")
    assert code(lambda: e.set_position_mode(True)) == -4067
    assert code(lambda: e.set_position_mode(False)) == -4059
    assert code(lambda: e.transfer("USDT", D("-100000"))) == -2018


def test_trade_and_income_queries_follow_the_documented_windows() -> None:
    e = engine()
    for _ in range(3):
        order(e, side="BUY", type="MARKET", quantity="0.002")
        e.clock.advance(1000)
    base = {"symbol": "BTCUSDT"}
    first = e.book.trades[0]
    assert [t["id"] for t in user_trades(e, {**base, "limit": "2"})] == [
        t.id for t in e.book.trades[1:]]
    assert len(user_trades(e, {**base, "fromId": str(first.id + 1)})) == 2
    assert code(lambda: user_trades(e, {**base, "fromId": "1", "startTime": "0"})) == -1128
    assert code(lambda: user_trades(e, {**base, "startTime": "0",
                                        "endTime": str(8 * 86_400_000)})) == -1127
    pages = [income(e, {"incomeType": "COMMISSION", "startTime": str(first.time),
                        "limit": "2", "page": str(n)}) for n in (1, 2)]
    assert [len(p) for p in pages] == [2, 1]
