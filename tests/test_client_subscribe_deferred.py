"""A subscribe the daemon refuses for now (`unavailable` while it stops, `rate_limited`)
is made again, not the stream's end. The daemon here is a scripted websocket server on a
unix socket: the race it replays (a subscribe answered while the daemon begins to stop)
cannot be timed with a real daemon, and a CI run met it there once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, unix_serve
from websockets.exceptions import ConnectionClosed

from events.codec import encode
from events.control import TradingHalted
from kernel.client import Client, Unavailable

SESSION = {"version": 1, "server": "scripted", "name": "strategy",
           "scopes": ["read", "trade"], "seq": 0, "halted": False}
HALTED = json.loads(encode(TradingHalted(venue_ts=1, reason="scripted")))

#: What the server answers the n-th subscribe with (counted over all connections).
Answer = Callable[[int], dict[str, Any] | None]


class Scripted:
    """Says hello to anyone; answers subscribes as `answer` says (None: subscribed, and
    event 1 pushed), then closes the connection if `close_after_refusal`."""

    def __init__(self, answer: Answer, *, close_after_refusal: bool) -> None:
        self.answer = answer
        self.close_after_refusal = close_after_refusal
        self.subscribes = 0
        self.connections = 0

    async def handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        try:
            async for data in ws:
                req = json.loads(data)
                if req["op"] == "hello":
                    await ws.send(json.dumps({"id": req["id"], "ok": True, "result": SESSION}))
                    continue
                assert req["op"] == "subscribe_events", req
                self.subscribes += 1
                error = self.answer(self.subscribes)
                if error is not None:
                    await ws.send(json.dumps({"id": req["id"], "ok": False, "error": error}))
                    if self.close_after_refusal:
                        await ws.close(reason="shutting down")
                        return
                    continue
                sub = f"s{self.subscribes}"
                await ws.send(json.dumps({"id": req["id"], "ok": True,
                                          "result": {"sub": sub, "seq": 0}}))
                await ws.send(json.dumps({"type": "event", "sub": sub, "seq": 1,
                                          "event": HALTED}))
        except ConnectionClosed:
            pass


async def first_event(server: Scripted, path: Path, *, reconnect: bool = True) -> Any:
    async with unix_serve(server.handle, str(path)):
        client = await Client.connect(unix_path=path, token="t", reconnect=reconnect,
                                      backoff_initial=0.01, backoff_max=0.05)
        try:
            async with asyncio.timeout(10):
                return await anext(client.events(since=0))
        finally:
            await client.close()


def refuse(code: str, times: int) -> Answer:
    error = {"code": code, "message": f"scripted {code}", "field": None}
    return lambda n: error if n <= times else None


async def test_a_subscribe_refused_while_the_daemon_stops_is_made_on_the_next_connection(
    tmp_path: Path,
) -> None:
    server = Scripted(refuse("unavailable", 1), close_after_refusal=True)
    seq, event = await first_event(server, tmp_path / "api.sock")
    assert (seq, event) == (1, TradingHalted(venue_ts=1, reason="scripted"))
    assert server.connections == 2 and server.subscribes == 2


async def test_a_rate_limited_subscribe_is_made_again_on_the_same_connection(
    tmp_path: Path,
) -> None:
    server = Scripted(refuse("rate_limited", 2), close_after_refusal=False)
    seq, _ = await first_event(server, tmp_path / "api.sock")
    assert seq == 1
    assert server.connections == 1 and server.subscribes == 3


async def test_without_reconnect_an_unavailable_subscribe_ends_the_stream_with_it(
    tmp_path: Path,
) -> None:
    server = Scripted(refuse("unavailable", 1), close_after_refusal=False)
    with pytest.raises(Unavailable, match="scripted unavailable"):
        await first_event(server, tmp_path / "api.sock", reconnect=False)
    assert server.subscribes == 1
