"""One connection to the venue: the ccxt.pro exchange, its watch loops, and the queue
`Venue.facts` reads.

A `Session` lives from `open` to `close`; a reconnect is a new session with a new ccxt
instance (a fresh listenKey, no stale caches). Its tasks:

* **watch loops** keep ccxt's websockets subscribed and end the session when one drops:
  for the Binance family `watch_orders` (the user-data stream) and `watch_mark_prices`;
  their facts come from the raw messages (`sink`), never from ccxt's return values.
  Each `watch_*` call returns only what is new since the previous call, and a message
  handled while no call waits wakes nobody (`Client.resolve` drops it): the loops call
  again at once and take nothing from the results;
* **sink** (called by ccxt for every websocket message, synchronously): parses it
  (`parse.ws_message`) into the queue, asks for a REST refresh after an account update,
  and ends the session when the venue says the listenKey expired;
* **keep-alive** renews the listenKey every `listen_key_keepalive_s` (ccxt 4.5.90's
  `keep_alive_listen_key` reschedules itself only for clients whose `subscriptions` it
  finds with `safe_dict(clients, i)`, which a `Client` object never is, so it renews at
  most once); a renewal answered -1125 means the key is gone: the session ends, and
  the reconnect authenticates afresh (ccxt alone would keep dialing the dead key until
  `lastAuthenticatedTime` ages past `listenKeyRefreshRate`, `pro/binance.py:authenticate`);
* **refresher** answers an account push with the REST reports (balances with margin,
  positions with the venue's notional), and funding or transfers since the push, at
  most once per `report_refresh_s`.

Any failure ends the session: `facts` raises it (`VenueUnavailable`, or
`CredentialsRejected`), and the daemon reconnects and resyncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog

from adapters.ccxtpro import parse
from adapters.ccxtpro.book import Book, quarantined
from adapters.ccxtpro.client import BadFrame
from adapters.ccxtpro.config import CcxtProSettings
from adapters.ccxtpro.execution import is_listen_key_gone, venue_failure
from events.codec import Event
from events.control import InputQuarantined
from kernel.errors import CredentialsRejected, VenueError, VenueUnavailable

Clock = Callable[[], int]
#: Queries the refresher runs: (what to refresh, since ns) -> events.
Refresh = Callable[[set[str], int], Awaitable[list[Event]]]
_CLOSED = object()
_LOOKBACK_NS = 60 * 1_000_000_000


class Session:
    def __init__(self, ex: Any, book: Book, settings: CcxtProSettings, clock: Clock,
                 refresh: Refresh, symbols: tuple[str, ...],
                 log: structlog.typing.FilteringBoundLogger,
                 observe: Callable[[Event], None] = lambda ev: None) -> None:
        """`observe` sees each event before it is queued (the adapter learns from it)."""
        self.ex, self.book, self.settings, self.observe = ex, book, settings, observe
        self.clock, self.refresh, self.symbols, self.log = clock, refresh, symbols, log
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.failed: VenueError | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self._wanted: set[str] = set()
        self._since: int | None = None
        self._wake = asyncio.Event()
        self.last_message_ns = 0

    # -- lifecycle -----------------------------------------------------------------

    def start(self, loops: list[Callable[[], Awaitable[None]]]) -> None:
        # ccxt sets the current decimal context's rounding (decimal_to_precision): its
        # tasks get a context object of their own, so the daemon's is left alone.
        with decimal.localcontext():
            for loop in [*loops, self._refresher]:
                self.tasks.append(asyncio.create_task(self._run(loop),
                                                      name=f"ccxtpro-{loop.__name__}"))

    async def _run(self, loop: Callable[[], Awaitable[None]]) -> None:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except VenueError as e:
            self.fail(e)
        except Exception as e:
            self.fail(venue_failure(e, loop.__name__.strip("_")))

    def fail(self, e: VenueError) -> None:
        """End the session with `e` (the first failure wins)."""
        if self.failed is None:
            self.failed = e
            self.log.warning("venue session ended", venue=self.book.exchange, error=str(e))
            self.queue.put_nowait(e)

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.tasks = []
        self.ex.kernel_sink = None
        with contextlib.suppress(Exception):
            await self.ex.close()
        self.queue.put_nowait(_CLOSED)

    async def facts(self) -> AsyncIterator[Event]:
        queue = self.queue
        while True:
            item = await queue.get()
            if item is _CLOSED:
                return
            if isinstance(item, CredentialsRejected | VenueUnavailable | VenueError):
                raise item
            assert isinstance(item, list)
            for event in item:
                yield event

    def put(self, events: list[Event]) -> None:
        if not events or self.failed is not None:
            return
        for ev in events:
            self.observe(ev)
        self.queue.put_nowait(events)
        if self.queue.qsize() > self.settings.max_backlog:
            # Drop a consumer that cannot keep up rather than buffer for it without
            # end; the resync after the reconnect recovers what was waiting.
            self.fail(VenueUnavailable(f"{self.book.exchange}: the kernel fell"
                                       f" {self.settings.max_backlog} pushes behind"))

    # -- the websocket sink --------------------------------------------------------

    def sink(self, url: str, message: Any) -> bool:
        """ccxt's `handle_message` hook: never raises. Returns whether ccxt's own
        handlers should see the message (not if it was quarantined)."""
        now = self.clock()
        self.last_message_ns = now
        if isinstance(message, BadFrame):
            if message.decoded:
                self.log.warning("ccxt failed on a venue message", venue=self.book.exchange,
                                 error=message.error)
                return False
            self.put([quarantined(self.book, message.data, f"not JSON: {message.error}", now)])
            return False
        try:
            pushed = parse.ws_message(message, self.book, now)
        except Exception as e:
            self.log.error("parser failed", venue=self.book.exchange, exc_info=e)
            self.put([quarantined(self.book, message, f"parser failed: {type(e).__name__}", now)])
            return False
        self.put(pushed.events)
        if pushed.refresh:
            self.want(pushed.refresh, self._push_time(message, now))
        if pushed.expired:
            self.fail(VenueUnavailable(f"{self.book.exchange}: the venue says the listenKey"
                                       " expired (listenKeyExpired)"))
        return not any(isinstance(e, InputQuarantined) for e in pushed.events)

    @staticmethod
    def _push_time(message: Any, now: int) -> int:
        e = message.get("E") if isinstance(message, dict) else None
        return e * 1_000_000 if isinstance(e, int) and e > 0 else now

    # -- the REST refresher --------------------------------------------------------

    def want(self, kinds: set[str], at_ns: int) -> None:
        self._wanted |= kinds
        since = max(0, at_ns - _LOOKBACK_NS)
        self._since = since if self._since is None else min(self._since, since)
        self._wake.set()

    async def _refresher(self) -> None:
        delay = self.settings.report_refresh_s
        while True:
            await self._wake.wait()
            await asyncio.sleep(delay)
            kinds, since = self._wanted, self._since or 0
            self._wanted, self._since = set(), None
            self._wake.clear()
            try:
                self.put(await self.refresh(kinds, since))
            except VenueUnavailable as e:
                # The periodic resync is the backstop; ask again a little later.
                self.log.warning("report refresh failed", venue=self.book.exchange, error=str(e))
                self.want(kinds, since + _LOOKBACK_NS)
                delay = min(delay * 2, 30.0)
                continue
            delay = self.settings.report_refresh_s

    # -- Binance family loops ------------------------------------------------------

    async def user_stream(self) -> None:
        """Keeps the user-data websocket open; its messages arrive through `sink`."""
        while True:
            await self.ex.watch_orders()

    async def mark_stream(self) -> None:
        while True:
            await self.ex.watch_mark_prices(list(self.symbols))

    def keepalive(self, renew: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        async def _keepalive() -> None:
            every = self.settings.listen_key_keepalive_s
            delay = every
            while True:
                await asyncio.sleep(delay)
                try:
                    await renew()
                except Exception as e:
                    failure = venue_failure(e, "listenKey keep-alive")
                    if isinstance(failure, CredentialsRejected) or is_listen_key_gone(e):
                        raise failure from e
                    # A transient failure: try again soon, well before the key expires.
                    self.log.warning("listenKey keep-alive failed", venue=self.book.exchange,
                                     error=str(failure))
                    delay = min(every, 30.0)
                    continue
                delay = every
        return _keepalive

    async def wait_connected(self, timeout_s: float) -> None:
        """Until a websocket of this session is open (the user-data one for Binance),
        so a resync after `connect` covers everything the stream did not push."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.failed is not None:
                raise self.failed
            for url, client in list((self.ex.clients or {}).items()):
                if "listenKey" in url or not self.book.exchange.startswith("binance"):
                    connected = getattr(client, "connected", None)
                    if connected is not None and connected.done() and not connected.cancelled()\
                            and connected.exception() is None:
                        return
            await asyncio.sleep(0.01)
        raise VenueUnavailable(f"{self.book.exchange}: the user-data websocket did not open"
                               f" within {timeout_s} s")
