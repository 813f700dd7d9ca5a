"""Helpers for the API tests: a daemon in this event loop, and a raw websocket client.

`Raw` speaks the protocol as docs/api.md writes it, with `json` and a plain websocket
connection only: nothing from `kernel.protocol` or `kernel.client`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, unix_connect

from adapters.sim.config import SimConfig
from adapters.sim.venue import SimVenue
from events.codec import decode_logged
from events.log import EventLog
from kernel.daemon.auth import Grant, TokenTable, digest
from kernel.daemon.config import ApiConfig, Config, load_config
from kernel.daemon.service import Daemon
from tests.sim_support import quiet

TOKENS = {"op-token": ("op", {"read", "trade"}), "ro-token": ("viewer", {"read"}),
          "tr-token": ("trader", {"trade"})}


def tokens() -> TokenTable:
    return TokenTable([(digest(t), Grant(name=n, scopes=frozenset(s)))
                       for t, (n, s) in TOKENS.items()])


def config(sim: SimConfig | None = None, **api: Any) -> Config:
    """The API under test, with the intent reconciler off: these tests are about what
    the API logs and answers, not what the venue then does with an intent."""
    base = load_config(None)
    return msgspec.structs.replace(
        base, venue=msgspec.structs.replace(base.venue, sim=sim or quiet()),
        metrics=msgspec.structs.replace(base.metrics, enabled=False),
        api=msgspec.structs.replace(ApiConfig(), **api),
        reconciler=msgspec.structs.replace(base.reconciler, enabled=False))


@contextlib.asynccontextmanager
async def daemon(state_dir: Path, cfg: Config | None = None, pace_s: float | None = None
                 ) -> AsyncIterator[Daemon]:
    """A Daemon over the sim venue in this event loop, ready; stopped after (exit 0)."""
    cfg = cfg or config()
    d = Daemon(cfg, SimVenue(cfg.venue.sim, pace_s=pace_s), state_dir, tokens=tokens())
    task = asyncio.create_task(d.run())
    ready = asyncio.create_task(d.ready.wait())
    await asyncio.wait([task, ready], timeout=20, return_when=asyncio.FIRST_COMPLETED)
    assert ready.done(), f"the daemon did not get ready: {task}"
    try:
        yield d
    finally:
        d.stop()
        assert await asyncio.wait_for(task, 20) == 0


class Raw:
    """A client from docs/api.md: JSON text frames, `id` echoed in replies, pushes kept."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pushes: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, path: Path, token: str | None = "op-token", **kw: Any
                      ) -> AsyncIterator[Raw]:
        async with unix_connect(str(path), **kw) as ws:
            raw = cls(ws)
            if token is not None:
                reply = await raw.call("hello", token=token, versions=[1], client="test")
                assert reply["ok"], reply
            yield raw

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(message if isinstance(message, str | bytes) else json.dumps(message))

    async def reply(self, rid: object = None, timeout: float = 10) -> dict[str, Any]:
        """The next reply (with `rid`, if given); pushes met on the way are kept."""
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if "type" in msg:
                self.pushes.append(msg)
                continue
            if rid is None or msg.get("id") == rid:
                return msg  # type: ignore[no-any-return]

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        rid = next(self._ids)
        await self.send({"id": rid, "op": op, **fields})
        reply = await self.reply(rid)
        assert reply["id"] == rid
        return reply

    async def push(self, timeout: float = 10) -> dict[str, Any]:
        if self.pushes:
            return self.pushes.pop(0)
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))  # type: ignore[no-any-return]

    async def closed(self, timeout: float = 10) -> list[dict[str, Any]]:
        """Every frame until the server closes the connection."""
        frames: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        with contextlib.suppress(Exception):
            while True:
                left = deadline - time.monotonic()
                assert left > 0, "the server did not close the connection"
                frames.append(json.loads(await asyncio.wait_for(self.ws.recv(), left)))
        return frames


async def rows(db: Path, *kinds: str) -> list[tuple[int, str, Any]]:
    """(seq, kind, event) of the log's rows (of `kinds`), read as another process would."""
    log = await EventLog.open(db, readonly=True)
    try:
        return [(r.seq, r.kind, decode_logged(r.payload)) async for r in log.rows(kinds=kinds)]
    finally:
        await log.close()


async def eventually(check: Any, timeout: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} did not hold within {timeout} s"
        await asyncio.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
