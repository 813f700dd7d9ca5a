"""The fake Binance USD-M venue through ccxt's real client: REST, signing, errors, accounting.

Every ccxt call here is unmodified ccxt.pro binanceusdm (4.5.90) code talking HTTP to the fake
on loopback, configured by URL overrides only. Assertions name Binance's error *codes* (as the
venue answered them) and ccxt's exception *classes*, never message text.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import aiohttp
import ccxt  # type: ignore[import-untyped]
import pytest
from fakebinance import BinanceError, FakeBinance, VenueConfig
from fakebinance.auth import Credentials, check_signed, sign
from fakebinance.client import ccxt_client

BTC = "BTC/USDT:USDT"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def venue() -> AsyncIterator[FakeBinance]:
    async with FakeBinance(VenueConfig(seed=3, mark_interval_s=None)) as v:
        yield v


@pytest.fixture
async def ex(venue: FakeBinance) -> AsyncIterator[Any]:
    async with ccxt_client(venue, throttle=False) as exchange:
        await exchange.load_markets()
        yield exchange


def last_code(venue: FakeBinance) -> int:
    return venue.errors[-1][2].code


async def test_load_markets_reads_the_usdm_exchange_info_only(venue: FakeBinance,
                                                              ex: Any) -> None:
    m = ex.markets[BTC]
    assert (m["linear"], m["swap"], m["settle"], m["contractSize"]) == (True, True, "USDT", 1)
    assert m["precision"]["price"] == 0.1 and m["precision"]["amount"] == 0.001
    assert m["limits"]["cost"]["min"] == 100 and m["limits"]["amount"]["min"] == 0.001
    assert ("GET", "/fapi/v1/exchangeInfo") in venue.requests
    assert all(p.startswith(("/fapi/", "/sapi/")) for _, p in venue.requests)


async def test_market_order_books_position_fee_and_balance(venue: FakeBinance, ex: Any) -> None:
    order = await ex.create_order(BTC, "market", "buy", 0.01)
    assert (order["status"], order["filled"], order["average"]) == ("closed", 0.01, 60000)
    balance = await ex.fetch_balance()
    # fee 600 * 0.0005 = 0.3; initial margin 600 / 20 = 30; available = wallet - IM
    assert D(str(balance["USDT"]["total"])) == D("9999.7")
    assert D(str(balance["USDT"]["used"])) == D("30")
    assert D(str(balance["USDT"]["free"])) == D("9969.7")
    await venue.set_mark("BTCUSDT", "61000")
    [pos] = await ex.fetch_positions([BTC])
    assert (pos["side"], pos["contracts"], pos["entryPrice"]) == ("long", 0.01, 60000)
    assert pos["unrealizedPnl"] == 10
    [trade] = await ex.fetch_my_trades(BTC)
    assert trade["fee"] == {"currency": "USDT", "cost": 0.3}
    assert trade["takerOrMaker"] == "taker" and trade["order"] == order["id"]


async def test_realized_pnl_is_truncated_at_8_places_as_binance_books_it(
        venue: FakeBinance, ex: Any) -> None:
    await venue.set_mark("BTCUSDT", "60000.1")
    await ex.create_order(BTC, "market", "buy", 0.003)
    await venue.set_mark("BTCUSDT", "60000.2")
    await ex.create_order(BTC, "market", "buy", 0.004)
    await venue.set_mark("BTCUSDT", "60001.0")
    # reduce-only waives MIN_NOTIONAL (60 < 100)
    await ex.create_order(BTC, "market", "sell", 0.001, None, {"reduceOnly": True})
    trades = await ex.fetch_my_trades(BTC)
    # entry = 420001.1 / 0.007 = 60000.1571428...; (60001.0 - entry) * 0.001 = 0.00084285714...
    assert [t["info"]["realizedPnl"] for t in trades] == ["0.00000000", "0.00000000",
                                                          "0.00084285"]
    income = await ex.fetch_funding_history(BTC, params={"incomeType": "REALIZED_PNL"})
    assert [i["info"]["income"] for i in income] == ["0.00084285"]


async def test_a_one_way_fill_through_zero_realizes_the_closing_part_only(
        venue: FakeBinance, ex: Any) -> None:
    await ex.create_order(BTC, "market", "buy", 0.002)
    await venue.set_mark("BTCUSDT", "60100")
    await ex.create_order(BTC, "market", "sell", 0.005)
    [pos] = await ex.fetch_positions([BTC])
    assert (pos["side"], pos["contracts"], pos["entryPrice"]) == ("short", 0.003, 60100)
    assert (await ex.fetch_my_trades(BTC))[-1]["info"]["realizedPnl"] == "0.20000000"


async def test_limit_order_rests_is_amended_and_canceled(venue: FakeBinance, ex: Any) -> None:
    order = await ex.create_order(BTC, "limit", "buy", 0.002, 59900, {"clientOrderId": "a:b/c-1"})
    assert order["status"] == "open" and order["clientOrderId"] == "a:b/c-1"
    await venue.fill(int(order["id"]), qty="0.001")
    edited = await ex.edit_order(order["id"], BTC, "limit", "buy", 0.003, 59950)
    assert (edited["amount"], edited["price"], edited["filled"]) == (0.003, 59950, 0.001)
    assert [o["id"] for o in await ex.fetch_open_orders(BTC)] == [order["id"]]
    canceled = await ex.cancel_order(order["id"], BTC)
    assert canceled["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        await ex.cancel_order(order["id"], BTC)
    assert last_code(venue) == -2011
    fetched = await ex.fetch_order(None, BTC, {"clientOrderId": "a:b/c-1"})
    assert (fetched["id"], fetched["status"], fetched["filled"]) == (order["id"], "canceled", 0.001)


async def test_stop_goes_to_the_algo_service_and_its_fill_to_a_second_order(
        venue: FakeBinance, ex: Any) -> None:
    await ex.create_order(BTC, "market", "buy", 0.01)
    stop = await ex.create_order(BTC, "market", "sell", 0.01, None,
                                 {"triggerPrice": 59000, "reduceOnly": True})
    assert ("POST", "/fapi/v1/algoOrder") in venue.requests
    algo = venue.engine.algo.algos[int(stop["id"])]
    assert [o["id"] for o in await ex.fetch_open_orders(BTC, params={"trigger": True})] == [
        stop["id"]]
    assert (await ex.fetch_order(stop["id"], BTC, {"trigger": True}))["status"] == "open"
    await venue.set_mark("BTCUSDT", "58990")
    assert algo.algo_status == "FINISHED" and algo.actual_order_id is not None
    actual = venue.order(algo.actual_order_id)
    assert (actual.client_order_id, actual.type, actual.orig_type, actual.status) == (
        stop["clientOrderId"], "MARKET", "STOP_MARKET", "FILLED")
    assert (await ex.fetch_my_trades(BTC))[-1]["order"] == str(actual.order_id)
    assert await ex.fetch_positions([BTC]) == []
    assert (await ex.fetch_order(stop["id"], BTC, {"trigger": True}))["status"] == "closed"
    raw = await ex.fapiPrivateGetAlgoOrder({"algoId": stop["id"]})
    assert (raw["algoStatus"], raw["actualOrderId"], raw["actualPrice"]) == (
        "FINISHED", str(actual.order_id), "58990.00000")


async def test_conditional_types_are_refused_on_the_order_endpoint(venue: FakeBinance,
                                                                   ex: Any) -> None:
    with pytest.raises(ccxt.ExchangeError):
        await ex.fapiPrivatePostOrder({"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET",
                                       "quantity": "0.01", "stopPrice": "59000"})
    assert last_code(venue) == -4120


async def place(ex: Any, **params: str) -> Any:
    return await ex.fapiPrivatePostOrder({"symbol": "BTCUSDT", "side": "BUY", **params})


# (ccxt exception class behind a URL override, Binance code, how to provoke it)
REJECTIONS = [
    (ccxt.ExchangeError, -2019, lambda ex: ex.create_order(BTC, "market", "buy", 5)),
    (ccxt.ExchangeError, -2022, lambda ex: ex.create_order(BTC, "market", "sell", 0.002, None,
                                                           {"reduceOnly": True})),
    (ccxt.ExchangeError, -2021, lambda ex: ex.create_order(BTC, "market", "sell", 0.002, None,
                                                           {"triggerPrice": 60100})),
    (ccxt.ExchangeError, -4164, lambda ex: ex.create_order(BTC, "market", "buy", 0.001)),
    (ccxt.OperationRejected, -4061, lambda ex: ex.create_order(
        BTC, "market", "buy", 0.002, None, {"positionSide": "LONG"})),
    (ccxt.InvalidOrder, -5022, lambda ex: ex.create_order(BTC, "limit", "buy", 0.002, 60000,
                                                           {"postOnly": True})),
    (ccxt.BadRequest, -4014, lambda ex: place(ex, type="LIMIT", timeInForce="GTC",
                                              quantity="0.002", price="59999.95")),
    (ccxt.BadRequest, -1111, lambda ex: place(ex, type="MARKET", quantity="0.0025")),
    (ccxt.BadRequest, -1102, lambda ex: place(ex, type="LIMIT", quantity="0.002",
                                              price="59990")),
    (ccxt.BadRequest, -4024, lambda ex: place(ex, type="LIMIT", timeInForce="GTC",
                                                 quantity="0.002", price="50000")),
    (ccxt.OrderNotFound, -2013, lambda ex: ex.fetch_order("123", BTC)),
]


@pytest.mark.parametrize(("cls", "code", "call"), REJECTIONS,
                         ids=[str(code) for _, code, _ in REJECTIONS])
async def test_rejections_carry_binance_codes(venue: FakeBinance, ex: Any, cls: type,
                                              code: int, call: Any) -> None:
    with pytest.raises(cls) as info:
        await call(ex)
    assert type(info.value) is cls
    assert last_code(venue) == code
    assert venue.engine.orders == {} and venue.engine.algo.algos == {}


async def test_qty_off_step_is_4023_when_step_is_coarser_than_precision() -> None:
    from fakebinance.markets import default_instruments
    from fakebinance.orders import check_qty

    inst = default_instruments()["BTCUSDT"]
    coarse = type(inst)(**{**inst.__dict__, "step": D("0.002")})
    with pytest.raises(BinanceError) as info:
        check_qty(coarse, D("0.003"), market=True)
    assert info.value.code == -4023


async def test_wrong_secret_is_1022(venue: FakeBinance) -> None:
    async with ccxt_client(venue, secret="not-the-secret") as ex:
        with pytest.raises(ccxt.AuthenticationError):
            await ex.fetch_balance({"type": "swap"})
    assert last_code(venue) == -1022


@pytest.mark.parametrize(("key", "code"), [("unknownKey123", -2015), ("bad-key!", -2014)])
async def test_bad_api_key_is_401_with_binance_code(venue: FakeBinance, key: str,
                                                    code: int) -> None:
    async with ccxt_client(venue, api_key=key) as ex:
        with pytest.raises(ccxt.AuthenticationError):
            await ex.fapiPrivateV3GetAccount()
    err = venue.errors[-1][2]
    assert (err.status, err.code) == (401, code)


@pytest.mark.parametrize("offset_ms", [-20_000, 20_000])
async def test_stale_or_early_timestamp_is_1021(venue: FakeBinance, ex: Any,
                                                offset_ms: int) -> None:
    venue.clock.hold(venue.clock.now_ms() + offset_ms)  # the venue's clock drifted away
    with pytest.raises(ccxt.InvalidNonce):
        await ex.fetch_balance()
    assert last_code(venue) == -1021


def test_signature_follows_binance_documented_example() -> None:
    # general-info.md, "SIGNED Endpoint Examples for POST /fapi/v1/order - HMAC Keys"
    secret = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
    payload = ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
               "&recvWindow=5000&timestamp=1591702613943")
    expected = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
    assert sign(secret, payload) == expected
    creds, now = Credentials("k", secret), 1591702613943 + 10
    assert check_signed(payload + "&signature=" + expected, "", creds, now)["price"] == "9000"
    assert check_signed("", payload + "&signature=" + expected.upper(), creds, now)["side"] == "BUY"
    # mixed: totalParams is the query string concatenated with the body, no "&" between
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=9000&recvWindow=5000&timestamp=1591702613943"
    mixed = sign(secret, query + body)
    assert check_signed(query, body + "&signature=" + mixed, creds, now)["quantity"] == "1"
    with pytest.raises(BinanceError) as info:
        check_signed(query, body + "&signature=" + expected, creds, now)
    assert info.value.code == -1022


async def test_listen_key_endpoints_need_the_key_but_no_signature(venue: FakeBinance) -> None:
    async with aiohttp.ClientSession() as http:
        url = venue.rest_url + "/fapi/v1/listenKey"
        async with http.post(url, headers={"X-MBX-APIKEY": venue.config.api_key}) as r:
            key = (await r.json())["listenKey"]
        async with http.put(url, headers={"X-MBX-APIKEY": venue.config.api_key}) as r:
            assert (await r.json())["listenKey"] == key
        async with http.post(url) as r:
            assert (r.status, (await r.json())["code"]) == (401, -2014)
        async with http.delete(url, headers={"X-MBX-APIKEY": venue.config.api_key}) as r:
            assert await r.json() == {}
        async with http.put(url, headers={"X-MBX-APIKEY": venue.config.api_key}) as r:
            assert (r.status, (await r.json())["code"]) == (400, -1125)


async def test_funding_and_deposits_are_income_and_wallet(venue: FakeBinance, ex: Any) -> None:
    await ex.create_order(BTC, "market", "buy", 0.01)
    paid = await venue.fund("BTCUSDT", "0.0001", time=1_700_000_000_000)
    assert paid == D("-0.06")  # a long pays 0.01 * 60000 * 0.0001
    await venue.deposit("USDT", "500")
    funding = await ex.fetch_funding_history(BTC, since=1_700_000_000_000 - 1)
    assert [(f["amount"], f["timestamp"]) for f in funding] == [(-0.06, 1_700_000_000_000)]
    transfers = await ex.fetch_funding_history(params={"incomeType": "TRANSFER"})
    assert [t["info"]["income"] for t in transfers] == ["500.00000000"]
    balance = await ex.fetch_balance()
    assert D(str(balance["USDT"]["total"])) == D("10000") - D("0.3") - D("0.06") + D("500")


async def test_hedge_mode_keeps_long_and_short_apart(venue: FakeBinance, ex: Any) -> None:
    await ex.set_position_mode(True)
    assert (await ex.fetch_position_mode(BTC))["hedged"] is True
    await ex.create_order(BTC, "market", "buy", 0.002, None, {"positionSide": "LONG"})
    await ex.create_order(BTC, "market", "sell", 0.003, None, {"positionSide": "SHORT"})
    sides = {(p["side"], p["contracts"]) for p in await ex.fetch_positions([BTC])}
    assert sides == {("long", 0.002), ("short", 0.003)}
    with pytest.raises(ccxt.BadRequest):
        await ex.create_order(BTC, "market", "sell", 0.002, None,
                              {"positionSide": "LONG", "reduceOnly": True})
    assert last_code(venue) == -1106
    await venue.set_mark("BTCUSDT", "60500")
    await ex.create_order(BTC, "market", "sell", 0.002, None, {"positionSide": "LONG"})
    assert (await ex.fetch_my_trades(BTC))[-1]["info"]["realizedPnl"] == "1.00000000"
    with pytest.raises(ccxt.OperationRejected):
        await ex.set_position_mode(False)
    assert last_code(venue) == -4068


async def test_lost_response_leaves_the_order_to_be_found_by_client_id(
        venue: FakeBinance, ex: Any) -> None:
    venue.faults.lose_next_response("POST", "/fapi/v1/order")
    with pytest.raises(ccxt.NetworkError):
        await ex.create_order(BTC, "limit", "buy", 0.002, 59900, {"clientOrderId": "intent-1"})
    found = await ex.fetch_order(None, BTC, {"clientOrderId": "intent-1"})
    assert found["status"] == "open"
    with pytest.raises(ccxt.ExchangeError):  # a blind retry is refused while it is open
        await ex.create_order(BTC, "limit", "buy", 0.002, 59900, {"clientOrderId": "intent-1"})
    assert last_code(venue) == -4116
    assert len(venue.engine.orders) == 1


async def test_a_hung_response_is_a_client_timeout(venue: FakeBinance, ex: Any) -> None:
    venue.faults.hang_s = 0.4
    venue.faults.lose_next_response("POST", "/fapi/v1/order", mode="hang")
    ex.timeout = 100  # ms
    with pytest.raises(ccxt.RequestTimeout):
        await ex.create_order(BTC, "market", "buy", 0.002)
    assert len(venue.engine.book.trades) == 1  # it was executed all the same


async def test_triggered_and_canceled_algo_orders_stay_queryable(venue: FakeBinance,
                                                                 ex: Any) -> None:
    stop = await ex.create_order(BTC, "market", "buy", 0.002, None, {"triggerPrice": 61000})
    await ex.cancel_order(stop["id"], BTC, {"trigger": True})
    assert ("DELETE", "/fapi/v1/algoOrder") in venue.requests
    history = await ex.fetch_orders(BTC, params={"trigger": True})
    assert [(o["id"], o["status"]) for o in history] == [(stop["id"], "canceled")]
    with pytest.raises(ccxt.OrderNotFound):
        await ex.cancel_order(stop["id"], BTC, {"trigger": True})
    assert last_code(venue) == -2011


async def test_an_armed_failure_is_returned_and_nothing_executes(venue: FakeBinance,
                                                                 ex: Any) -> None:
    venue.faults.fail_next(BinanceError(-1013, "Filter failure: PRICE_FILTER"))
    with pytest.raises(ccxt.InvalidOrder):
        await ex.create_order(BTC, "limit", "buy", 0.002, 59900)
    assert last_code(venue) == -1013 and venue.engine.orders == {}


async def test_an_armed_429_is_ccxt_ddos_protection(venue: FakeBinance, ex: Any) -> None:
    from fakebinance.errors import too_many_requests

    venue.faults.fail_next(too_many_requests(), "GET", "/fapi/v1/openOrders")
    with pytest.raises(ccxt.DDoSProtection):
        await ex.fetch_open_orders(BTC)
    assert venue.errors[-1][2].status == 429
    assert await ex.fetch_open_orders(BTC) == []
    assert int(ex.last_response_headers["X-MBX-USED-WEIGHT-1M"]) > 0


async def test_same_seed_same_ids_and_walk() -> None:
    seen = []
    for _ in range(2):
        async with FakeBinance(VenueConfig(seed=11, mark_interval_s=None)) as v, \
                ccxt_client(v, throttle=False) as ex:
            await ex.load_markets()
            v.clock.hold(1_750_000_000_000)
            path = await v.walk("BTCUSDT", 5)
            venue_time = v.clock.now_ms()
            v.clock.release()
            order = await ex.create_order(BTC, "market", "buy", 0.002)
            seen.append((path, venue_time, order["id"], v.engine.book.trades[0].id,
                         v.hub.create_listen_key()))
    assert seen[0] == seen[1]


async def test_standalone_venue_serves_ccxt_and_control_calls() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakebinance", "--port", "0", "--api-key", "standaloneKey1",
        "--api-secret", "s3cret", "--wallet", "USDT=250", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10))
        exchange = ccxt.pro.binanceusdm({"apiKey": "standaloneKey1", "secret": "s3cret"})
        venue = FakeBinance()  # only for its URL recipe, pointed at the other process
        venue.port = info["port"]
        venue.apply_to(exchange)
        try:
            async with aiohttp.ClientSession() as http, http.post(
                    info["rest_url"] + "/_fake/deposit", json={"asset": "USDT", "amount": "50"}
            ) as r:
                assert (await r.json())["result"] == "300.00000000"
            assert (await exchange.fetch_balance())["USDT"]["total"] == 300
        finally:
            await exchange.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0


def test_book_truncates_toward_zero() -> None:
    from fakebinance.book import Position, q8

    assert q8(D("-0.123456789")) == D("-0.12345678") and q8(D("0.999999999")) == D("0.99999999")
    p = Position("BTCUSDT", "BOTH")
    assert p.apply_fill(D("-0.002"), D("100")) == 0
    assert p.apply_fill(D("0.005"), D("90")) == D("0.020")  # short closed at a 10 gain
    assert (p.amount, p.entry) == (D("0.003"), D("90"))
