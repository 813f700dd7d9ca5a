"""The simulated venue in a process of its own, so its account outlives the kernel's.

    python -m adapters.sim.server --config kernel.toml [--host 127.0.0.1] [--port 0]
                                  [--api-key-env NAME]

serves the `[venue.sim]` account of that config over one websocket on loopback and
prints `listening PORT`. With `--api-key-env`, `connect` must present the key held in
that environment variable, or it is refused as `CredentialsRejected`. One client at a
time (a new one replaces the old). Frames are JSON text, events in the kernel's own
encoding:

* client → server: `{"id": 1, "op": "place", "args": {...}}`
* server → client: `{"id": 1, "ok": ...}`, `{"id": 1, "error": "..."}`, or a pushed fact
  `{"push": {...event...}}` once the client has sent `{"op": "connect"}`.

Ops: `connect`, the `Venue` methods by name (`place`, `amend`, `cancel` take the command
event as `args.command`; `order` takes `symbol`, `client_order_id`; the `*_since` ops take
`venue_ts`), and for tests `quiet` (the venue stops moving) and `truth` (its books:
wallets, positions by position key, holdings, and per asset the `rounding` its per-fill
rounding of realized PnL added to the wallet). An injected disconnect closes the socket;
the account lives on for the next connection. Hedge mode and asset precision are the
config's `[venue.sim]` keys, as for the embedded sim.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from adapters.sim.venue import SimVenue
from events.codec import decode_logged, encode
from events.orders import AmendOrder, CancelOrder, PlaceOrder
from kernel import money
from kernel.daemon.config import load_config
from kernel.errors import VenueUnavailable

C = TypeVar("C", PlaceOrder, AmendOrder, CancelOrder)


class Request(msgspec.Struct, frozen=True):
    op: str
    id: int = 0
    args: dict[str, Any] = {}


def _command(args: dict[str, Any], kind: type[C]) -> C:
    cmd = decode_logged(msgspec.json.encode(args["command"]))
    if not isinstance(cmd, kind):
        raise KeyError(f"expected a {kind.__name__}, got {type(cmd).__name__}")
    return cmd


def _raw(value: Any) -> Any:
    """Events as their own JSON; lists of events too."""
    if isinstance(value, list):
        return [_raw(v) for v in value]
    if value is None or isinstance(value, dict):
        return value
    return msgspec.Raw(encode(value))


class SimServer:
    def __init__(self, venue: SimVenue, api_key: str | None = None) -> None:
        self.venue = venue
        self._api_key = api_key
        self._pump: asyncio.Task[None] | None = None
        self._ops: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "place": lambda a: venue.place(_command(a, PlaceOrder)),
            "amend": lambda a: venue.amend(_command(a, AmendOrder)),
            "cancel": lambda a: venue.cancel(_command(a, CancelOrder)),
            "instruments": lambda a: venue.instruments(),
            "assets": lambda a: venue.assets(),
            "leverage_settings": lambda a: venue.leverage_settings(),
            "marks": lambda a: venue.marks(),
            "balances": lambda a: venue.balances(),
            "positions": lambda a: venue.positions(),
            "open_orders": lambda a: venue.open_orders(),
            "order": lambda a: venue.order(a["symbol"], a["client_order_id"]),
            "fills_since": lambda a: venue.fills_since(a["venue_ts"]),
            "funding_since": lambda a: venue.funding_since(a["venue_ts"]),
            "transfers_since": lambda a: venue.transfers_since(a["venue_ts"]),
            "quiet": self._quiet,
            "truth": self._truth,
        }

    async def _quiet(self, args: dict[str, Any]) -> dict[str, Any]:
        self.venue.engine.quiet()
        return {}

    async def _truth(self, args: dict[str, Any]) -> dict[str, Any]:
        t = self.venue.engine.truth()
        return {
            "wallets": {a: str(v) for a, v in t.wallets.items()},
            "positions": {k: [str(h.qty), str(h.avg)] for k, h in t.positions.items()},
            "holdings": {s: [str(h.qty), str(h.avg)] for s, h in t.holdings.items()},
            "rounding": {a: str(v) for a, v in t.rounding.items()},
            "fills": len(t.fills),
            "funding": len(t.funding),
            # every order the venue accepted, by client order id, and the open ones
            "orders": sorted(o.client_order_id for o in self.venue.engine.orders.values()),
            "open_orders": [o.client_order_id for o in self.venue.engine.open_orders()],
        }

    async def handle(self, ws: ServerConnection) -> None:
        if self._pump is not None:  # a new client replaces the old one
            self._pump.cancel()
        try:
            async for frame in ws:
                req = msgspec.json.decode(frame, type=Request)
                if req.op == "connect":
                    if self._api_key is not None and req.args.get("api_key") != self._api_key:
                        await ws.send(msgspec.json.encode(
                            {"id": req.id, "error": "CredentialsRejected: invalid API key"}))
                        continue
                    await self.venue.connect()
                    if self._pump is not None:
                        self._pump.cancel()
                    self._pump = asyncio.create_task(self._push(ws))
                    await ws.send(msgspec.json.encode({"id": req.id, "ok": {}}))
                    continue
                try:
                    result = await self._ops[req.op](req.args)
                    reply: dict[str, Any] = {"id": req.id, "ok": _raw(result)}
                except (KeyError, VenueUnavailable) as e:
                    reply = {"id": req.id, "error": f"{type(e).__name__}: {e}"}
                await ws.send(msgspec.json.encode(reply))
        except ConnectionClosed:
            pass

    async def _push(self, ws: ServerConnection) -> None:
        try:
            async for event in self.venue.facts():
                await ws.send(b'{"push":' + encode(event) + b"}")
        except VenueUnavailable:  # an injected disconnect: drop the client, keep the account
            await ws.close(code=1011, reason="venue disconnected")
        except ConnectionClosed:
            pass


async def main(config: Path, host: str, port: int, api_key: str | None) -> None:
    money.install()
    venue = SimVenue(load_config(config).venue.sim)
    server = SimServer(venue, api_key)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve(server.handle, host, port) as ws_server:
        bound = next(iter(ws_server.sockets)).getsockname()[1]
        print(f"listening {bound}", flush=True)
        await stop.wait()
    with contextlib.suppress(Exception):
        await venue.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m adapters.sim.server",
                                     description="Serve a simulated venue account on loopback.")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key-env", help="require the API key in this variable")
    ns = parser.parse_args()
    key = os.environ.get(ns.api_key_env) if ns.api_key_env else None
    if ns.api_key_env and not key:
        parser.error(f"${ns.api_key_env} is not set")
    asyncio.run(main(ns.config, ns.host, ns.port, key))
