"""`FakeBinance`: start, stop, point ccxt at it, make things happen, break things.

The Python API a test uses (all on the test's event loop; actions are coroutines because they
push on the websockets before they return):

    async with FakeBinance(VenueConfig(seed=7)) as venue:
        venue.apply_to(exchange)                  # the URL overrides, see the package docs
        await venue.set_mark("BTCUSDT", D("60100"))
        await venue.fill(order_id, qty=D("0.001"))  # a counterparty takes a resting limit
        await venue.fund("BTCUSDT", rate=D("0.0001"))
        await venue.deposit("USDT", D("500"))
        venue.faults.lose_next_response()         # see faults.py
        await venue.drop_sockets(); await venue.expire_listen_key()
        venue.clock.hold(); venue.clock.advance(1000)

Everything the venue did is in `venue.engine` (orders, algo orders, `book.trades`,
`book.income`, `book.wallet`, positions) and `venue.requests` (every REST call's method and
path, in order) and `venue.errors` (every error response: method, path, `BinanceError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN
from decimal import Decimal as D
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .auth import Credentials
from .clock import VenueClock
from .engine import Engine, EngineConfig
from .errors import BinanceError
from .faults import Faults
from .markets import Instrument, default_instruments
from .orders import Order
from .server import build_app
from .streams import Hub, mark_streams

DEFAULT_KEY = "fakeBinanceTestApiKey0000000000000000000000000000000000000000001"
DEFAULT_SECRET = "fakeBinanceTestSecret0000000000000000000000000000000000000000001"


@dataclass
class VenueConfig:
    api_key: str = DEFAULT_KEY
    api_secret: str = DEFAULT_SECRET
    seed: int = 0
    engine: EngineConfig = field(default_factory=EngineConfig)
    instruments: dict[str, Instrument] = field(default_factory=default_instruments)
    listen_key_ttl_s: float = 3600.0  # Binance: 60 minutes after the last POST/PUT
    mark_interval_s: float | None = 1.0  # period of the @1s mark pushes; None: only set_mark
    legacy_ws_routes: bool = False
    host: str = "127.0.0.1"
    port: int = 0


class FakeBinance:
    def __init__(self, config: VenueConfig | None = None) -> None:
        self.config: VenueConfig = config or VenueConfig()
        self.clock: VenueClock = VenueClock()
        self.credentials: Credentials = Credentials(self.config.api_key, self.config.api_secret)
        self.engine: Engine = Engine(self.config.engine, dict(self.config.instruments),
                                     self.clock, self.config.seed)
        self.faults: Faults = Faults()
        self.hub: Hub = Hub(self.faults, random.Random(self.config.seed + 1),
                       ttl_s=self.config.listen_key_ttl_s,
                       legacy_routes=self.config.legacy_ws_routes)
        self.hub.now_ms = self.clock.now_ms
        self.requests: list[tuple[str, str]] = []
        self.errors: list[tuple[str, str, BinanceError]] = []
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self.port: int = 0
        self._walk_rng = random.Random(self.config.seed + 2)

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> FakeBinance:
        self._runner = web.AppRunner(build_app(self), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        server = site._server
        assert server is not None and hasattr(server, "sockets")
        self.port = server.sockets[0].getsockname()[1]
        if self.config.mark_interval_s:
            self._ticker = asyncio.create_task(self._publish_marks(self.config.mark_interval_s))
        return self

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.hub.drop(abrupt=False)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBinance:
        return await self.start()

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # --- where it is --------------------------------------------------------------------------

    @property
    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The value for ccxt's `urls['api']['ws']['linear']` (it appends /market, /private)."""
        return f"ws://{self.config.host}:{self.port}/ws"

    def ccxt_urls(self, api: dict[str, Any]) -> dict[str, Any]:
        """`api` (an exchange's `urls['api']`) with every REST base moved onto this venue."""
        out: dict[str, Any] = {}
        for name, url in api.items():
            if isinstance(url, str):
                out[name] = self.rest_url + urlsplit(url).path
            elif name == "ws" and isinstance(url, dict):
                out[name] = {**url, "linear": self.ws_url}
            else:
                out[name] = url
        return out

    def apply_to(self, exchange: Any) -> None:
        """Point a ccxt (pro) binanceusdm instance here, by URL overrides only."""
        exchange.urls["api"] = self.ccxt_urls(exchange.urls["api"])

    # --- delivering what the engine produced --------------------------------------------------

    async def flush(self) -> None:
        """Push everything the engine queued, in order."""
        async with self._flush_lock:
            e = self.engine
            while e.user_events or e.market_events:
                while e.user_events:
                    await self.hub.push_user(e.user_events.pop(0))
                while e.market_events:
                    symbol, payload = e.market_events.pop(0)
                    await self.hub.push_market(
                        mark_streams(symbol, every_second=True)
                        + mark_streams(symbol, every_second=False), payload)
                    await self._push_ticker(symbol)

    async def _push_ticker(self, symbol: str) -> None:
        from . import wire

        inst, now = self.engine.instruments[symbol], self.clock.now_ms()
        mark = self.engine.marks[symbol]
        await self.hub.push_market((f"{symbol.lower()}@ticker",),
                                   wire.ticker_24hr(inst, mark, inst.mark, D(0), now))
        await self.hub.push_market((f"{symbol.lower()}@miniticker",),
                                   wire.mini_ticker_24hr(inst, mark, inst.mark, D(0), now))

    async def _publish_marks(self, interval: float) -> None:
        tick = 0
        while True:
            await asyncio.sleep(interval)
            tick += 1
            for symbol, inst in self.engine.instruments.items():
                event = self.engine.mark_event(inst)
                await self.hub.push_market(mark_streams(symbol, every_second=True), event)
                if tick % 3 == 0:
                    await self.hub.push_market(mark_streams(symbol, every_second=False), event)
                    await self._push_ticker(symbol)

    # --- what a test makes happen -------------------------------------------------------------

    async def set_mark(self, symbol: str, price: D | str | int) -> None:
        self.engine.set_mark(symbol, D(price))
        await self.flush()

    async def walk(self, symbol: str, steps: int, *, step_bps: int = 5,
                   seed: int | None = None) -> list[D]:
        """A random walk of the mark, `steps` moves of up to `step_bps` basis points each;
        deterministic: from the venue's seed (continuing where the last walk left off), or from
        `seed` when given."""
        rng = self._walk_rng if seed is None else random.Random(seed)
        inst = self.engine.instruments[symbol]
        path = []
        for _ in range(steps):
            move = D(rng.randint(-step_bps, step_bps)) / 10_000
            price = (self.engine.marks[symbol] * (1 + move) / inst.tick).quantize(
                D(1), rounding=ROUND_HALF_EVEN) * inst.tick
            await self.set_mark(symbol, price)
            path.append(price)
        return path

    def order(self, ref: int | str) -> Order:
        """An order by `orderId` or (the latest with a) `clientOrderId`."""
        for o in reversed(list(self.engine.orders.values())):
            if ref in (o.order_id, o.client_order_id):
                return o
        raise KeyError(f"no order {ref!r}")

    async def fill(self, ref: int | str, qty: D | str | None = None,
                   price: D | str | None = None) -> Order:
        """A counterparty trades with a resting limit order (a maker fill at its price)."""
        o = self.engine.fill_resting(self.order(ref).order_id,
                                     None if qty is None else D(qty),
                                     None if price is None else D(price))
        await self.flush()
        return o

    async def fund(self, symbol: str, rate: D | str | None = None,
                   time: int | None = None) -> D:
        total = self.engine.settle_funding(symbol, None if rate is None else D(rate), time)
        await self.flush()
        return total

    async def deposit(self, asset: str, amount: D | str) -> D:
        balance = self.engine.transfer(asset, D(amount))
        await self.flush()
        return balance

    async def withdraw(self, asset: str, amount: D | str) -> D:
        balance = self.engine.transfer(asset, -D(amount))
        await self.flush()
        return balance

    async def push_raw(self, payload: dict[str, Any] | str) -> int:
        """Send any payload (or raw text) on the user-data stream, as if the venue had."""
        if isinstance(payload, str):
            return await self.hub.push_user_text(payload)
        return await self.hub.push_user(payload)

    async def drop_sockets(self, route: str | None = None, *, abrupt: bool = True) -> int:
        return await self.hub.drop(route=route, abrupt=abrupt)

    async def expire_listen_key(self, key: str | None = None) -> str:
        return await self.hub.expire(key)

    async def wait_user_stream(self, timeout: float = 5.0) -> None:
        """Until a connection listens on the live listenKey."""
        async with asyncio.timeout(timeout):
            while not any(self.hub.active and self.hub.active.key in c.listen_keys
                          for c in self.hub.connections):
                await asyncio.sleep(0.01)

    async def wait_subscribed(self, stream: str, timeout: float = 5.0) -> None:
        await self.hub.wait_subscribed(stream, timeout)
