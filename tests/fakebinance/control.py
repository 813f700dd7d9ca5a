"""`/_fake/...`: the test-side API over HTTP, for a venue running in another process.

Not part of Binance's API (no real venue has these paths): JSON in, JSON out, no auth, on the
loopback address the venue binds. Each call maps to the `FakeBinance` method of the same name:

    POST /_fake/mark      {"symbol": "BTCUSDT", "price": "60100"}
    POST /_fake/walk      {"symbol": "BTCUSDT", "steps": 10, "step_bps": 5}
    POST /_fake/fill      {"order": 4000000001 | "client-id", "qty": "0.001", "price": null}
    POST /_fake/fund      {"symbol": "BTCUSDT", "rate": "0.0001", "time": null}
    POST /_fake/deposit   {"asset": "USDT", "amount": "100"}     (and /_fake/withdraw)
    POST /_fake/expire-listen-key {}
    POST /_fake/drop-sockets {"route": null}
    GET  /_fake/state     wallet, positions, open orders, trade count
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import wire
from .errors import BinanceError

if TYPE_CHECKING:
    from .venue import FakeBinance


def _state(v: FakeBinance) -> dict[str, Any]:
    e = v.engine
    return {
        "wallet": {a: wire.money(x) for a, x in e.book.wallet.items()},
        "positions": [{"symbol": p.symbol, "side": p.side, "amount": str(p.amount),
                       "entry": wire.money(p.entry)} for p in e.book.open_positions()],
        "open_orders": [e.view(o, query=True) for o in e.open_orders()],
        "trades": len(e.book.trades),
        "marks": {s: str(m) for s, m in e.marks.items()},
    }


def add_routes(app: web.Application, v: FakeBinance) -> None:
    async def call(request: web.Request) -> web.Response:
        action = request.match_info["action"]
        args: dict[str, Any] = await request.json() if request.can_read_body else {}
        try:
            if action == "mark":
                await v.set_mark(args["symbol"], args["price"])
                result: Any = None
            elif action == "walk":
                path = await v.walk(args["symbol"], int(args["steps"]),
                                    step_bps=int(args.get("step_bps", 5)))
                result = [str(p) for p in path]
            elif action == "fill":
                result = v.engine.view(await v.fill(args["order"], args.get("qty"),
                                                    args.get("price")), query=True)
            elif action == "fund":
                result = wire.money(await v.fund(args["symbol"], args.get("rate"),
                                                 args.get("time")))
            elif action in ("deposit", "withdraw"):
                move = v.deposit if action == "deposit" else v.withdraw
                result = wire.money(await move(args["asset"], args["amount"]))
            elif action == "expire-listen-key":
                result = await v.expire_listen_key(args.get("key"))
            elif action == "drop-sockets":
                result = await v.drop_sockets(args.get("route"))
            else:
                return web.json_response({"error": f"no action {action!r}"}, status=404)
        except (KeyError, ValueError, BinanceError) as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response({"result": result}, dumps=json.dumps)

    async def state(request: web.Request) -> web.Response:
        return web.json_response(_state(v))

    app.router.add_get("/_fake/state", state)
    app.router.add_post("/_fake/{action}", call)
