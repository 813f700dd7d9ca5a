"""The fake venue's websockets: ccxt.pro's real watch_* code, raw frames, listenKeys, faults.

ccxt.pro binanceusdm (4.5.90) connects to the URLs it derives from the overridden
`ws.linear` base; raw aiohttp clients check what goes over the wire frame by frame.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import aiohttp
import ccxt  # type: ignore[import-untyped]
import pytest
from fakebinance import FakeBinance, VenueConfig
from fakebinance.client import ccxt_client

BTC = "BTC/USDT:USDT"


@pytest.fixture
async def venue() -> AsyncIterator[FakeBinance]:
    async with FakeBinance(VenueConfig(seed=5, mark_interval_s=None)) as v:
        yield v


@pytest.fixture
async def ex(venue: FakeBinance) -> AsyncIterator[Any]:
    async with ccxt_client(venue, throttle=False) as exchange:
        await exchange.load_markets()
        yield exchange


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def user_socket(venue: FakeBinance, http: aiohttp.ClientSession,
                      query: str = "") -> aiohttp.ClientWebSocketResponse:
    key = venue.hub.create_listen_key()
    ws = await http.ws_connect(f"ws://127.0.0.1:{venue.port}/private/ws?listenKey={key}{query}")
    await venue.wait_user_stream()
    return ws


async def frames(ws: aiohttp.ClientWebSocketResponse, n: int, timeout: float = 2.0) -> list[str]:
    out = []
    for _ in range(n):
        msg = await ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        out.append(msg.data)
    return out


async def silent(ws: aiohttp.ClientWebSocketResponse, wait: float = 0.2) -> bool:
    try:
        await ws.receive(timeout=wait)
    except TimeoutError:
        return True
    return False


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


async def collect(watch: Any, count: int, timeout: float = 3.0) -> list[Any]:
    """Call a ccxt watch_* again and again (each call returns only what is new)."""
    got: list[Any] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            got.extend(await watch())
    return got


async def test_watch_my_trades_and_orders_carry_binance_fill_fields(venue: FakeBinance,
                                                                    ex: Any) -> None:
    trades = asyncio.create_task(collect(lambda: ex.watch_my_trades(BTC), 2))
    await venue.wait_user_stream()
    orders = asyncio.create_task(ex.watch_orders(BTC))
    order = await ex.create_order(BTC, "limit", "buy", 0.003, 59900, {"clientOrderId": "cid-7"})
    await venue.fill(int(order["id"]), qty="0.001")
    await venue.fill(int(order["id"]))
    t1, t2 = await trades
    assert [t["amount"] for t in (t1, t2)] == [0.001, 0.002]
    assert t1["id"] == str(venue.engine.book.trades[0].id) == str(t1["info"]["t"])
    assert t1["info"]["c"] == "cid-7" and t1["info"]["ps"] == "BOTH"
    assert (t1["info"]["n"], t1["info"]["N"], t1["info"]["rp"]) == ("0.01198000", "USDT",
                                                                    "0.00000000")
    assert t1["takerOrMaker"] == "maker" and t1["fee"] == {"cost": 0.01198, "currency": "USDT"}
    # watch_orders returns the latest state of each order that changed since the last call
    [latest] = await orders
    assert (latest["id"], latest["clientOrderId"]) == (order["id"], "cid-7")
    assert [(o.status, str(o.executed_qty)) for o in [venue.order("cid-7")]] == [
        ("FILLED", "0.003")]


async def test_watch_balance_sees_each_account_update_reason(venue: FakeBinance,
                                                             ex: Any) -> None:
    reasons = []
    watch = asyncio.create_task(ex.watch_balance())
    await venue.wait_user_stream()
    for action in (lambda: venue.deposit("USDT", "100"), lambda: venue.withdraw("USDT", "40"),
                   lambda: ex.create_order(BTC, "market", "buy", 0.01),
                   lambda: venue.fund("BTCUSDT", "0.0001")):
        await action()
        balance = await asyncio.wait_for(watch, 3)
        reasons.append((balance["info"]["a"]["m"], D(str(balance["USDT"]["total"]))))
        watch = asyncio.create_task(ex.watch_balance())
    watch.cancel()
    assert reasons == [("DEPOSIT", D("10100")), ("WITHDRAW", D("10060")),
                       ("ORDER", D("10059.7")), ("FUNDING_FEE", D("10059.64"))]


async def test_first_watch_positions_is_a_rest_snapshot_then_pushes(venue: FakeBinance,
                                                                    ex: Any) -> None:
    await ex.create_order(BTC, "market", "buy", 0.002)
    before = len(venue.requests)
    snapshot = await asyncio.wait_for(ex.watch_positions([BTC]), 3)
    assert [p["contracts"] for p in snapshot] == [0.002]
    assert ("GET", "/fapi/v3/positionRisk") in venue.requests[before:]
    pushed = asyncio.create_task(ex.watch_positions([BTC]))
    await venue.wait_user_stream()
    await ex.create_order(BTC, "market", "buy", 0.003)
    assert [p["contracts"] for p in await asyncio.wait_for(pushed, 3)] == [0.005]


async def test_watch_mark_price_subscribes_on_the_market_route(venue: FakeBinance,
                                                               ex: Any) -> None:
    watch = asyncio.create_task(ex.watch_mark_price(BTC))
    await venue.wait_subscribed("btcusdt@markPrice@1s")
    [conn] = [c for c in venue.hub.connections if c.streams]
    assert conn.route == "market"
    await venue.set_mark("BTCUSDT", "60123.4")
    ticker = await asyncio.wait_for(watch, 3)
    assert ticker["markPrice"] == 60123.4 and ticker["info"]["e"] == "markPriceUpdate"


async def test_marks_are_published_periodically_without_changes() -> None:
    async with FakeBinance(VenueConfig(mark_interval_s=0.05)) as venue, \
            ccxt_client(venue, throttle=False) as ex:
        first = await asyncio.wait_for(ex.watch_mark_price(BTC), 3)
        second = await asyncio.wait_for(ex.watch_mark_price(BTC), 3)
        assert first["markPrice"] == second["markPrice"] == 60000
        assert second["timestamp"] > first["timestamp"]


async def test_watch_ticker_gets_24hr_mini_tickers(venue: FakeBinance, ex: Any) -> None:
    watch = asyncio.create_task(ex.watch_ticker(BTC))
    await venue.wait_subscribed("btcusdt@miniTicker")
    await venue.set_mark("BTCUSDT", "60600")
    ticker = await asyncio.wait_for(watch, 3)
    assert ticker["last"] == 60600 and ticker["info"]["e"] == "24hrMiniTicker"


async def test_combined_streams_are_wrapped(venue: FakeBinance,
                                            http: aiohttp.ClientSession) -> None:
    url = f"ws://127.0.0.1:{venue.port}/market/stream?streams=btcusdt@markPrice/!markPrice@arr"
    async with http.ws_connect(url) as ws:
        await venue.wait_subscribed("!markPrice@arr")
        await venue.set_mark("BTCUSDT", "60010")
        one, arr = [json.loads(f) for f in await frames(ws, 2)]
    assert one["stream"] == "btcusdt@markprice" and one["data"]["p"] == "60010.00000000"
    assert arr["stream"] == "!markprice@arr" and arr["data"][0]["s"] == "BTCUSDT"


async def test_subscribe_protocol_answers_as_binance(venue: FakeBinance,
                                                     http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(f"ws://127.0.0.1:{venue.port}/market/ws") as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["ethusdt@markPrice"], "id": 1})
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 2})
        await ws.send_json({"method": "SUBSCRIBE", "params": [], "id": "x"})
        replies = [json.loads(f) for f in await frames(ws, 3)]
    assert replies[:2] == [{"result": None, "id": 1}, {"result": ["ethusdt@markprice"], "id": 2}]
    assert replies[2]["code"] == 2


@pytest.mark.parametrize("legacy", [False, True])
async def test_unrouted_connections_get_public_streams_only(legacy: bool,
                                                            http: aiohttp.ClientSession) -> None:
    async with FakeBinance(VenueConfig(mark_interval_s=None, legacy_ws_routes=legacy)) as venue:
        key = venue.hub.create_listen_key()
        async with http.ws_connect(f"ws://127.0.0.1:{venue.port}/ws/btcusdt@markPrice") as mws, \
                http.ws_connect(f"ws://127.0.0.1:{venue.port}/ws/{key}") as uws:
            await asyncio.sleep(0.05)
            await venue.set_mark("BTCUSDT", "60010")
            await venue.deposit("USDT", "1")
            assert await silent(mws) is not legacy and await silent(uws) is not legacy


async def test_listen_key_lapses_without_keepalive(http: aiohttp.ClientSession) -> None:
    async with FakeBinance(VenueConfig(mark_interval_s=None, listen_key_ttl_s=0.3)) as venue:
        ws = await user_socket(venue, http)
        key = venue.hub.active.key if venue.hub.active else ""
        [expired] = [json.loads(f) for f in await frames(ws, 1, timeout=2)]
        assert (expired["e"], expired["listenKey"]) == ("listenKeyExpired", key)
        await venue.deposit("USDT", "1")
        assert await silent(ws)  # nothing more on a dead key
        headers = {"X-MBX-APIKEY": venue.config.api_key}
        async with http.put(venue.rest_url + "/fapi/v1/listenKey", headers=headers) as r:
            assert (await r.json())["code"] == -1125
        async with http.post(venue.rest_url + "/fapi/v1/listenKey", headers=headers) as r:
            assert (await r.json())["listenKey"] != key
        await ws.close()


async def test_keepalive_extends_the_listen_key(http: aiohttp.ClientSession) -> None:
    async with FakeBinance(VenueConfig(mark_interval_s=None, listen_key_ttl_s=0.4)) as venue, \
            ccxt_client(venue, throttle=False) as ex:
        ws = await user_socket(venue, http)
        await asyncio.sleep(0.25)
        await ex.fapiPrivatePutListenKey()  # ccxt's own keep-alive call
        assert await silent(ws, 0.3)  # past the first deadline, still alive
        assert json.loads((await frames(ws, 1))[0])["e"] == "listenKeyExpired"
        await ws.close()


async def test_expire_on_demand_leaves_ccxt_waiting_on_a_dead_key(venue: FakeBinance,
                                                                  ex: Any,
                                                                  http: aiohttp.ClientSession
                                                                  ) -> None:
    watch = asyncio.create_task(ex.watch_orders(BTC))
    await venue.wait_user_stream()
    ws = await http.ws_connect(
        f"ws://127.0.0.1:{venue.port}/private/ws?listenKey={venue.hub.active.key}"  # type: ignore[union-attr]
    )
    await venue.expire_listen_key()
    assert json.loads((await frames(ws, 1))[0])["e"] == "listenKeyExpired"
    await ex.create_order(BTC, "market", "buy", 0.002)
    await asyncio.sleep(0.1)
    assert not watch.done()  # ccxt has no handler for listenKeyExpired: it just waits
    watch.cancel()
    await ws.close()


async def test_events_filter_on_the_private_route(venue: FakeBinance,
                                                  http: aiohttp.ClientSession) -> None:
    ws = await user_socket(venue, http, "&events=ACCOUNT_UPDATE")
    await venue.set_mark("BTCUSDT", "60000")
    venue.engine.place({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                        "quantity": "0.002"})
    await venue.flush()
    [only] = [json.loads(f) for f in await frames(ws, 1)]
    assert only["e"] == "ACCOUNT_UPDATE" and await silent(ws)
    await ws.close()


async def test_duplicate_push_is_sent_twice(venue: FakeBinance,
                                            http: aiohttp.ClientSession) -> None:
    ws = await user_socket(venue, http)
    venue.faults.duplicate_next_push()
    await venue.deposit("USDT", "5")
    first, second = await frames(ws, 2)
    assert first == second and json.loads(first)["a"]["m"] == "DEPOSIT"
    assert await silent(ws)
    await ws.close()


@pytest.mark.parametrize(("how", "check"), [
    ("truncate", lambda text: not is_json(text)),
    ("nan", lambda text: json.loads(text)["a"]["B"][0]["wb"] == "NaN"),
    ("negative", lambda text: json.loads(text)["a"]["B"][0]["wb"].startswith("-")),
    ("missing", lambda text: "wb" not in json.loads(text)["a"]["B"][0]),
])
async def test_corrupted_push(venue: FakeBinance, http: aiohttp.ClientSession, how: str,
                              check: Any) -> None:
    ws = await user_socket(venue, http)
    venue.faults.corrupt_next_push(how)
    await venue.deposit("USDT", "5")
    await venue.deposit("USDT", "5")
    bad, good = await frames(ws, 2)
    assert check(bad)
    assert json.loads(good)["a"]["B"][0]["wb"] == "10010.00000000"
    await ws.close()


async def test_corrupting_a_fill_push(venue: FakeBinance, http: aiohttp.ClientSession) -> None:
    ws = await user_socket(venue, http)
    venue.faults.corrupt_next_push("nan")  # armed for the next push: the order's NEW
    venue.faults.corrupt_next_push("missing", field="t")
    await venue.set_mark("BTCUSDT", "60000")
    venue.engine.place({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                        "quantity": "0.002"})
    await venue.flush()
    new, trade = [json.loads(f) for f in await frames(ws, 2)]
    assert new["o"]["L"] == "NaN" and trade["o"]["x"] == "TRADE" and "t" not in trade["o"]
    await ws.close()


async def test_raw_text_push(venue: FakeBinance, http: aiohttp.ClientSession) -> None:
    ws = await user_socket(venue, http)
    assert await venue.push_raw("{not json") == 1
    assert await frames(ws, 1) == ["{not json"]
    await ws.close()


async def test_dropped_socket_fails_the_watch_and_ccxt_reconnects(venue: FakeBinance,
                                                                  ex: Any) -> None:
    watch = asyncio.create_task(ex.watch_orders(BTC))
    await venue.wait_user_stream()
    assert await venue.drop_sockets() == 1
    with pytest.raises(ccxt.NetworkError):
        await asyncio.wait_for(watch, 3)
    again = asyncio.create_task(ex.watch_orders(BTC))
    await venue.wait_user_stream()
    order = await ex.create_order(BTC, "market", "buy", 0.002)
    assert [o["id"] for o in await asyncio.wait_for(again, 3)] == [order["id"]]


async def test_stop_trigger_sequence_on_the_wire(venue: FakeBinance, ex: Any,
                                                 http: aiohttp.ClientSession) -> None:
    await ex.create_order(BTC, "market", "buy", 0.01)
    ws = await user_socket(venue, http)
    stop = await ex.create_order(BTC, "market", "sell", 0.01, None,
                                 {"triggerPrice": 59500, "reduceOnly": True,
                                  "clientOrderId": "sl-1"})
    await venue.set_mark("BTCUSDT", "59400")
    seq = [json.loads(f) for f in await frames(ws, 7)]
    kinds = [(m["e"], m.get("o", {}).get("X") or m.get("a", {}).get("m")) for m in seq]
    assert kinds == [("ALGO_UPDATE", "NEW"), ("ALGO_UPDATE", "TRIGGERING"),
                     ("ALGO_UPDATE", "TRIGGERED"), ("ORDER_TRADE_UPDATE", "NEW"),
                     ("ORDER_TRADE_UPDATE", "FILLED"), ("ACCOUNT_UPDATE", "ORDER"),
                     ("ALGO_UPDATE", "FINISHED")]
    actual = seq[3]["o"]
    assert (actual["c"], actual["o"], actual["ot"], str(actual["i"])) == (
        "sl-1", "MARKET", "STOP_MARKET", seq[2]["o"]["ai"])
    assert seq[0]["o"]["aid"] == int(stop["id"]) and seq[0]["o"]["caid"] == "sl-1"
    await ws.close()


async def test_a_held_clock_stamps_events(venue: FakeBinance,
                                          http: aiohttp.ClientSession) -> None:
    ws = await user_socket(venue, http)
    venue.clock.hold(1_760_000_000_000)
    await venue.deposit("USDT", "1")
    event = json.loads((await frames(ws, 1))[0])
    assert (event["T"], event["E"]) == (1_760_000_000_000, 1_760_000_000_001)
    await ws.close()
