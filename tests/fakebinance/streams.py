"""The websocket side: listenKeys, connections, subscriptions, and pushing events to them.

URLs served (websocket-market-streams.md and its Important-WebSocket-Change-Notice, and
user-data-streams.md): the routed bases `/public`, `/market`, `/private`, each in `ws` mode
(`<base>/ws/<stream>[/<stream>...]`, raw payloads) and `stream` mode
(`<base>/stream?streams=a/b`, payloads wrapped as `{"stream": name, "data": payload}`); the
private base also takes `?listenKey=<key>[&events=E1/E2]`. ccxt 4.5.90 rewrites its linear
base `.../ws` to `.../private/ws?listenKey=<key>` for user data and to `.../market/ws/<n>` plus
a JSON SUBSCRIBE for mark prices (pro/binance.py get_ws_url / get_private_ws_url), so those
are the URLs it uses here. Since 2026-04-23 Binance delivers nothing but /public streams on
unrouted connections (`/ws/...`); the fake does the same unless `legacy_routes` is set.

SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS are answered as Live-Subscribing-Unsubscribing
documents (`{"result": null, "id": 1}`). A listenKey lives `ttl_s` after its last POST/PUT;
when it lapses (or a test expires it) every connection bound to it gets `listenKeyExpired` and
nothing more. A connection naming a dead or unknown listenKey is accepted and stays silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from . import errors as E
from . import wire
from .faults import Faults

Json = dict[str, Any]


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    route: str  # "public", "market", "private" or "" (unrouted)
    combined: bool
    listen_keys: set[str] = field(default_factory=set)
    events: set[str] | None = None
    streams: set[str] = field(default_factory=set)
    received: int = 0


@dataclass
class ListenKey:
    key: str
    alive: bool = True
    timer: asyncio.TimerHandle | None = None


class Hub:
    def __init__(self, faults: Faults, rng: random.Random, *, ttl_s: float,
                 legacy_routes: bool) -> None:
        self.faults = faults
        self.rng = rng
        self.ttl_s = ttl_s
        self.legacy_routes = legacy_routes
        self.connections: set[Connection] = set()
        self.keys: dict[str, ListenKey] = {}
        self.active: ListenKey | None = None
        self.now_ms: Callable[[], int] = lambda: 0  # the venue sets its clock here
        self._subscribed = asyncio.Event()
        self._tasks: set[asyncio.Future[str]] = set()

    # --- listenKeys (POST / PUT / DELETE /fapi/v1/listenKey) ----------------------------------

    def create_listen_key(self) -> str:
        """Start-User-Data-Stream: the active key (extended), or a new one."""
        if self.active is None or not self.active.alive:
            key = "".join(self.rng.choice(string.ascii_letters + string.digits)
                          for _ in range(64))
            self.active = self.keys[key] = ListenKey(key)
        self._arm(self.active)
        return self.active.key

    def keepalive_listen_key(self) -> str:
        """Keepalive-User-Data-Stream: extend the active key, or -1125 if there is none."""
        if self.active is None or not self.active.alive:
            raise E.invalid_listen_key()
        self._arm(self.active)
        return self.active.key

    def close_listen_key(self) -> None:
        """Close-User-Data-Stream: the key is invalid from now on and its streams go silent.

        Binance also closes those streams; the fake leaves the sockets open (and silent), which
        doubles as the fault "the venue forgot the key without telling the socket".
        """
        if self.active is not None:
            self.active.alive = False
            if self.active.timer:
                self.active.timer.cancel()
            self.active = None

    def _arm(self, lk: ListenKey) -> None:
        if lk.timer:
            lk.timer.cancel()

        def lapse() -> None:
            if lk.alive:  # keep a reference: a task nobody holds can vanish mid-flight
                task = asyncio.ensure_future(self.expire(lk.key))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        lk.timer = asyncio.get_running_loop().call_later(self.ttl_s, lapse)

    async def expire(self, key: str | None = None) -> str:
        """Kill a listenKey (default: the active one) and push `listenKeyExpired` for it."""
        lk = self.keys.get(key) if key else self.active
        if lk is None or not lk.alive:
            raise ValueError("there is no live listenKey to expire")
        lk.alive = False
        if lk.timer:
            lk.timer.cancel()
        if self.active is lk:
            self.active = None
        event = wire.listen_key_expired(lk.key, self.now_ms())
        for conn in [c for c in self.connections if lk.key in c.listen_keys
                     and (self.legacy_routes or c.route == "private")]:
            await self._send(conn, json.dumps(self._wrap(conn, lk.key, event)))
        return lk.key

    # --- pushes -------------------------------------------------------------------------------

    def _wrap(self, conn: Connection, stream: str, payload: Json) -> Json:
        return {"stream": stream, "data": payload} if conn.combined else payload

    def _user_targets(self, event: object) -> list[tuple[Connection, str]]:
        live = {k for k, lk in self.keys.items() if lk.alive}
        return [(c, key) for c in self.connections for key in sorted(c.listen_keys & live)
                if (self.legacy_routes or c.route == "private")
                and (c.events is None or event in c.events)]

    async def push_user(self, payload: Json) -> int:
        """Send a user-data event to every connection on a live listenKey; return how many.

        Armed push faults (duplicate, corrupt) apply only to a push someone receives.
        """
        targets = self._user_targets(payload.get("e"))
        if not targets:
            return 0
        for frame in self.faults.shape_push(payload):
            for conn, key in targets:
                if isinstance(frame, str):
                    await self._send(conn, frame)
                else:
                    await self._send(conn, json.dumps(self._wrap(conn, key, frame)))
        return len(targets)

    async def push_user_text(self, text: str) -> int:
        """Send raw text on the user-data stream (no faults applied, no wrapping)."""
        targets = self._user_targets(None)
        for conn, _ in targets:
            await self._send(conn, text)
        return len(targets)

    async def push_market(self, stream_names: tuple[str, ...], payload: Json) -> None:
        """Send a market event once per subscribed stream among `stream_names`."""
        for conn in list(self.connections):
            if not self._market_allowed(conn):
                continue
            for name in stream_names:
                if name in conn.streams:
                    body: Json | list[Json] = [payload] if name.startswith("!") else payload
                    data = {"stream": name, "data": body} if conn.combined else body
                    await self._send(conn, json.dumps(data))

    def subscribers(self, name: str) -> int:
        return sum(1 for c in self.connections if name.lower() in c.streams)

    async def wait_subscribed(self, name: str, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not self.subscribers(name):
                self._subscribed.clear()
                await self._subscribed.wait()

    def _market_allowed(self, conn: Connection) -> bool:
        return self.legacy_routes or conn.route == "market"

    async def _send(self, conn: Connection, text: str) -> None:
        if conn.ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.ws.send_str(text)
            conn.received += 1

    async def drop(self, *, route: str | None = None, abrupt: bool = True) -> int:
        """Close connections (all, or one route's): abruptly (TCP reset) or with a close frame."""
        victims = [c for c in self.connections if route is None or c.route == route]
        for conn in victims:
            transport = conn.ws._req.transport if conn.ws._req is not None else None
            if abrupt and transport is not None:
                transport.abort()
            else:
                await conn.ws.close()
            self.connections.discard(conn)
        return len(victims)

    # --- the websocket handler ----------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        route = request.match_info.get("route", "")
        combined = request.match_info.get("mode") == "stream"
        ws = web.WebSocketResponse(heartbeat=180.0)  # Binance pings every 3 minutes
        await ws.prepare(request)
        conn = Connection(ws, route, combined)
        names = [n for n in request.match_info.get("streams", "").split("/") if n]
        names += [n for n in request.query.get("streams", "").split("/") if n]
        for key in request.query.getall("listenKey", []):
            conn.listen_keys.add(key)
        if "events" in request.query:
            conn.events = set(request.query["events"].split("/"))
        for name in names:
            self._bind(conn, name)
        self.connections.add(conn)
        self._subscribed.set()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._control(conn, msg.data)
        finally:
            self.connections.discard(conn)
        return ws

    def _bind(self, conn: Connection, name: str) -> None:
        if name in self.keys or (len(name) == 64 and name.isalnum()):
            conn.listen_keys.add(name)
        else:
            conn.streams.add(name.lower())

    async def _control(self, conn: Connection, text: str) -> None:
        try:
            req = json.loads(text)
        except ValueError:
            await conn.ws.send_str(json.dumps({"code": 3, "msg": "Invalid JSON"}))
            return
        method, rid = req.get("method"), req.get("id")
        if not isinstance(rid, int) or rid < 0:
            await conn.ws.send_str(json.dumps(
                {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}))
            return
        params = req.get("params") or []
        if method == "SUBSCRIBE":
            for name in params:
                self._bind(conn, str(name))
            self._subscribed.set()
            reply: Json = {"result": None, "id": rid}
        elif method == "UNSUBSCRIBE":
            for name in params:
                conn.streams.discard(str(name).lower())
                conn.listen_keys.discard(str(name))
            reply = {"result": None, "id": rid}
        elif method == "LIST_SUBSCRIPTIONS":
            reply = {"result": sorted(conn.streams | conn.listen_keys), "id": rid}
        else:
            reply = {"code": 2, "msg": f"Invalid request: unknown variant {method}"}
        await conn.ws.send_str(json.dumps(reply))


def mark_streams(symbol: str, *, every_second: bool) -> tuple[str, ...]:
    """The stream names a mark-price push for `symbol` goes to (lower case)."""
    s = symbol.lower()
    return (f"{s}@markprice@1s", "!markprice@arr@1s") if every_second else (
        f"{s}@markprice", "!markprice@arr")
