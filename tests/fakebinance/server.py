"""The HTTP side: Binance's REST endpoints on an aiohttp application.

Each route has its security type and request weight from its docs page (general-info.md:
NONE, USER_STREAM = API key only, SIGNED = key + timestamp + signature). Every response carries
`X-MBX-USED-WEIGHT-1M` (the weight used this minute); order placements and amendments also
carry `X-MBX-ORDER-COUNT-10S` and `X-MBX-ORDER-COUNT-1M`, as the LIMITS section describes. An
error is `{"code", "msg"}` with its HTTP status (`errors.py`). Unknown paths get a 404. The
websocket routes are in `streams.py`, the test-side `/_fake/...` calls in `control.py`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import auth, control, views, wire
from . import errors as E
from . import orders as P

if TYPE_CHECKING:
    from .venue import FakeBinance

Handler = Callable[["FakeBinance", dict[str, str]], Any]


@dataclass(frozen=True)
class Route:
    handler: Handler
    security: str  # NONE, USER_STREAM, SIGNED
    weight: int
    counts_order: bool = False


def _dual(v: FakeBinance, p: dict[str, str]) -> Any:
    raw = P.text(p, "dualSidePosition", required=True)
    if raw not in ("true", "false"):
        raise E.invalid_parameter("dualSidePosition")
    v.engine.set_position_mode(raw == "true")
    return {"code": 200, "msg": "success"}


def _leverage(v: FakeBinance, p: dict[str, str]) -> Any:
    lev = P.integer(p, "leverage")
    if lev is None:
        raise E.mandatory_param("leverage")
    return v.engine.set_leverage(P.text(p, "symbol", required=True) or "", lev)


def _open_orders(v: FakeBinance, p: dict[str, str]) -> Any:
    symbol = P.text(p, "symbol")
    if symbol is not None:
        v.engine.instrument(symbol)
    return [v.engine.view(o, query=True) for o in v.engine.open_orders(symbol)]


def _open_order(v: FakeBinance, p: dict[str, str]) -> Any:
    o = v.engine.find(p, missing=E.BinanceError(-2013, "Order does not exist."))
    if not o.is_open:
        raise E.BinanceError(-2013, "Order does not exist.")
    return v.engine.view(o, query=True)


def _open_algos(v: FakeBinance, p: dict[str, str]) -> Any:
    symbol = P.text(p, "symbol")
    if symbol is not None:
        v.engine.instrument(symbol)
    return [v.engine.algo.view(a) for a in v.engine.algo.open(symbol)]


def _premium(v: FakeBinance, p: dict[str, str]) -> Any:
    e = v.engine
    rows = [wire.premium_index(e.instruments[s], e.marks[s], e.funding_rates[s],
                               e.next_funding_time(), e.now())
            for s in ([e.instrument(p["symbol"]).symbol] if "symbol" in p else e.instruments)]
    return rows[0] if "symbol" in p else rows


def _brackets(v: FakeBinance, p: dict[str, str]) -> Any:
    if "symbol" in p:
        return wire.leverage_bracket(v.engine.instrument(p["symbol"]))
    return [wire.leverage_bracket(i) for i in v.engine.instruments.values()]


def _symbol_config(v: FakeBinance, p: dict[str, str]) -> Any:
    e = v.engine
    symbols = [e.instrument(p["symbol"]).symbol] if "symbol" in p else list(e.instruments)
    return [wire.symbol_config(e.instruments[s], e.leverage[s]) for s in symbols]


def _coins(v: FakeBinance, p: dict[str, str]) -> Any:
    assets = {i.base for i in v.engine.instruments.values()}
    assets |= {i.margin_asset for i in v.engine.instruments.values()}
    return [wire.capital_coin(a) for a in sorted(assets)]


def _close_listen_key(v: FakeBinance, p: dict[str, str]) -> Any:
    v.hub.close_listen_key()
    return {}


def _margin_pairs(v: FakeBinance, p: dict[str, str]) -> Any:
    """`/sapi/v1/margin/allPairs` (margin_trading/market-data/Get-All-Cross-Margin-Pairs): ccxt's
    fetch_currencies asks for it (options fetchMargins); the spot pairs of the listed bases."""
    return [{"base": i.base, "id": str(n), "isBuyAllowed": True, "isMarginTrade": True,
             "isSellAllowed": True, "quote": i.quote, "symbol": i.symbol}
            for n, i in enumerate(v.engine.instruments.values(), 1)]


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/fapi/v1/ping"): Route(lambda v, p: {}, "NONE", 1),
    ("GET", "/fapi/v1/time"): Route(lambda v, p: {"serverTime": v.clock.now_ms()}, "NONE", 1),
    ("GET", "/fapi/v1/exchangeInfo"): Route(
        lambda v, p: wire.exchange_info(list(v.engine.instruments.values()), v.clock.now_ms()),
        "NONE", 1),
    ("GET", "/fapi/v1/premiumIndex"): Route(_premium, "NONE", 1),
    ("POST", "/fapi/v1/listenKey"): Route(
        lambda v, p: {"listenKey": v.hub.create_listen_key()}, "USER_STREAM", 1),
    ("PUT", "/fapi/v1/listenKey"): Route(
        lambda v, p: {"listenKey": v.hub.keepalive_listen_key()}, "USER_STREAM", 1),
    ("DELETE", "/fapi/v1/listenKey"): Route(_close_listen_key, "USER_STREAM", 1),
    ("GET", "/fapi/v3/account"): Route(lambda v, p: views.account(v.engine), "SIGNED", 5),
    ("GET", "/fapi/v2/account"): Route(
        lambda v, p: views.account(v.engine, v2=True), "SIGNED", 5),
    ("GET", "/fapi/v3/positionRisk"): Route(
        lambda v, p: views.position_risk_v3(v.engine, p), "SIGNED", 5),
    ("GET", "/fapi/v2/positionRisk"): Route(
        lambda v, p: views.position_risk_v2(v.engine, p), "SIGNED", 5),
    ("GET", "/fapi/v1/leverageBracket"): Route(_brackets, "SIGNED", 1),
    ("GET", "/fapi/v1/symbolConfig"): Route(_symbol_config, "SIGNED", 5),
    ("POST", "/fapi/v1/leverage"): Route(_leverage, "SIGNED", 1),
    ("GET", "/fapi/v1/positionSide/dual"): Route(
        lambda v, p: {"dualSidePosition": v.engine.hedge}, "SIGNED", 30),
    ("POST", "/fapi/v1/positionSide/dual"): Route(_dual, "SIGNED", 1),
    ("POST", "/fapi/v1/order"): Route(lambda v, p: v.engine.place(p), "SIGNED", 0, True),
    ("PUT", "/fapi/v1/order"): Route(lambda v, p: v.engine.amend(p), "SIGNED", 0, True),
    ("DELETE", "/fapi/v1/order"): Route(lambda v, p: v.engine.cancel(p), "SIGNED", 1),
    ("GET", "/fapi/v1/order"): Route(
        lambda v, p: v.engine.view(v.engine.find(p, missing=E.order_does_not_exist()),
                                   query=True), "SIGNED", 1),
    ("GET", "/fapi/v1/openOrder"): Route(_open_order, "SIGNED", 1),
    ("GET", "/fapi/v1/openOrders"): Route(_open_orders, "SIGNED", 1),
    ("GET", "/fapi/v1/allOrders"): Route(
        lambda v, p: views.all_orders(v.engine, p), "SIGNED", 5),
    ("GET", "/fapi/v1/userTrades"): Route(
        lambda v, p: views.user_trades(v.engine, p), "SIGNED", 5),
    ("GET", "/fapi/v1/income"): Route(lambda v, p: views.income(v.engine, p), "SIGNED", 30),
    ("POST", "/fapi/v1/algoOrder"): Route(
        lambda v, p: v.engine.algo.place(p), "SIGNED", 0, True),
    ("DELETE", "/fapi/v1/algoOrder"): Route(
        lambda v, p: v.engine.algo.cancel(p), "SIGNED", 1),
    ("GET", "/fapi/v1/algoOrder"): Route(lambda v, p: v.engine.algo.query(p), "SIGNED", 1),
    ("GET", "/fapi/v1/openAlgoOrders"): Route(_open_algos, "SIGNED", 1),
    ("GET", "/fapi/v1/allAlgoOrders"): Route(
        lambda v, p: views.all_algo_orders(v.engine, p), "SIGNED", 5),
    ("GET", "/sapi/v1/capital/config/getall"): Route(_coins, "SIGNED", 10),
    ("GET", "/sapi/v1/margin/allPairs"): Route(_margin_pairs, "USER_STREAM", 1),
}


class Meters:
    """Request weight per minute and order count per 10 s / minute, for the headers."""

    def __init__(self) -> None:
        self.weights: deque[tuple[float, int]] = deque()
        self.orders: deque[float] = deque()

    def add(self, weight: int, order: bool) -> dict[str, str]:
        now = time.monotonic()
        self.weights.append((now, weight))
        if order:
            self.orders.append(now)
        while self.weights and now - self.weights[0][0] > 60:
            self.weights.popleft()
        while self.orders and now - self.orders[0] > 60:
            self.orders.popleft()
        headers = {"X-MBX-USED-WEIGHT-1M": str(sum(w for _, w in self.weights))}
        if order:
            headers["X-MBX-ORDER-COUNT-10S"] = str(sum(1 for t in self.orders if now - t <= 10))
            headers["X-MBX-ORDER-COUNT-1M"] = str(len(self.orders))
        return headers


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, headers=headers,
                        content_type="application/json")


def build_app(venue: FakeBinance) -> web.Application:
    meters = Meters()

    async def rest(request: web.Request) -> web.StreamResponse:
        key = (request.method, request.path)
        route = ROUTES.get(key)
        if route is None:
            return web.Response(status=404, text="Not Found")
        venue.requests.append(key)
        headers = meters.add(route.weight, route.counts_order)
        body = await request.text()
        query = request.rel_url.raw_query_string
        try:
            if route.security != "NONE":
                auth.check_api_key(request.headers.get("X-MBX-APIKEY"), venue.credentials)
            if route.security == "SIGNED":
                params = auth.check_signed(query, body, venue.credentials, venue.clock.now_ms())
            else:
                params = auth.params_of(query, body)
            failure = venue.faults.take_failure(*key)
            if failure is not None:
                raise failure
            result = route.handler(venue, params)
        except E.BinanceError as err:
            venue.errors.append((*key, err))
            await venue.flush()
            return _json(err.body(), err.status, headers)
        await venue.flush()
        loss = venue.faults.take_loss(*key)
        if loss is not None:
            if loss == "hang":
                await asyncio.sleep(venue.faults.hang_s)
            if request.transport is not None:
                request.transport.abort()  # executed, but the client never hears of it
            raise asyncio.CancelledError  # aiohttp drops the handler without writing
        return _json(result, 200, headers)

    app = web.Application()
    control.add_routes(app, venue)
    for route in ("public", "market", "private"):
        for mode in ("ws", "stream"):
            app.router.add_get(f"/{{route:{route}}}/{{mode:{mode}}}", venue.hub.handle)
            app.router.add_get(f"/{{route:{route}}}/{{mode:{mode}}}/{{streams:.*}}",
                               venue.hub.handle)
    for mode in ("ws", "stream"):
        app.router.add_get(f"/{{mode:{mode}}}", venue.hub.handle)
        app.router.add_get(f"/{{mode:{mode}}}/{{streams:.*}}", venue.hub.handle)
    app.router.add_route("*", "/{tail:.*}", rest)
    return app
