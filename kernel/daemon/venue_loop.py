"""The venue side of the daemon: connect, resync, stream; reconnect with backoff.

::

    connect ─> VenueConnected ─> resync ─> READY ─> session ──────────────────┐
       ^                                           ├ stream: facts -> queue   │
       │                                           └ periodic resync          │
       └── backoff <── VenueDisconnected <── a retryable error in either ─────┘

Both session tasks live in one `asyncio.TaskGroup`: when one fails, the other is
cancelled and the error reaches this loop, never a garbage collector. The periodic resync
is supervised (`kernel.daemon.supervise.Retry`): a failure is logged with the step that
failed and retried after a backoff; `resync_max_failures` in a row raise `ResyncFailing`,
which takes the reconnect path. It runs every `resync_every_s`, and sooner while the
stream is silent: `resync_silence_s` after the last pushed fact. A fatal error
(rejected credentials, a failed log, a broken invariant, or anything `classify` does not
know on the connect and stream path) propagates and stops the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import NoReturn

import structlog

from adapters.base import Venue
from events.codec import Event
from events.control import VenueConnected, VenueDisconnected
from kernel.backoff import backoff, classify
from kernel.daemon.config import KernelConfig
from kernel.daemon.metrics import Metrics
from kernel.daemon.resync import Resync, next_due
from kernel.daemon.supervise import Retry, first_error, is_fatal
from kernel.errors import VenueUnavailable


class VenueLoop:
    def __init__(
        self,
        venue: Venue,
        cfg: KernelConfig,
        *,
        put: Callable[[Event], Awaitable[None]],
        clock: Callable[[], int],
        marks: Callable[[], Mapping[str, int]],
        ready: asyncio.Event,
        metrics: Metrics | None = None,
        log: structlog.typing.FilteringBoundLogger | None = None,
    ) -> None:
        """`put` queues an event for the writer (it waits while the queue is full);
        `marks` reads the committed resync watermarks; `ready` is set after the first
        complete resync."""
        self.venue = venue
        self.cfg = cfg
        self.put = put
        self.clock = clock
        self.ready = ready
        self.metrics = metrics
        self.log = log or structlog.get_logger("exkernel")
        self.resync = Resync(venue, put, clock, marks, cfg.resync_lookback_s)
        self.connected = False
        #: Monotonic seconds of the last pushed fact and of the last completed resync.
        self.last_push = 0.0
        self.last_resync: float | None = None
        if metrics is not None:  # computed when scraped, so it ages between resyncs
            metrics.last_resync_success_age_seconds.set_function(
                lambda: float("nan") if self.last_resync is None
                else time.monotonic() - self.last_resync)

    async def run(self) -> NoReturn:
        delays = backoff(rng=random.Random())
        while True:
            try:
                await self.venue.connect()
                self._gauge(True)
                self.log.info("venue connected", venue=self.venue.name)
                await self.put(VenueConnected(venue_ts=self.clock(), venue=self.venue.name))
                await self._resync_once()
                self.ready.set()
                delays = backoff(rng=random.Random())
                await self._session()
            except Exception as caught:
                e = first_error(caught)
                if classify(e) == "fatal":
                    if e is caught:
                        raise
                    raise e from None
                await self._disconnected(e)
                await asyncio.sleep(next(delays))

    async def _session(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._stream(), name="venue-stream")
            tg.create_task(self._periodic(), name="venue-resync")

    async def _stream(self) -> None:
        async for event in self.venue.facts():
            self.last_push = time.monotonic()
            await self.put(event)
        raise VenueUnavailable("the venue's stream ended")

    async def _resync_once(self) -> None:
        """The resync after a (re)connect: a failure takes the reconnect path."""
        try:
            await self.resync.run()
        except Exception as e:
            self._failed(e)
            raise
        self.last_resync = time.monotonic()

    async def _periodic(self) -> None:
        cfg = self.cfg
        retry = Retry(cfg.resync_max_failures, max_delay=cfg.resync_every_s)
        delay: float | None = None
        while True:
            if delay is None:
                await self._until_due()
            else:
                await asyncio.sleep(delay)
            try:
                await self.resync.run()
            except Exception as e:
                self._failed(e)
                delay = retry.failed(e, self.resync.step)  # raises when it must escalate
                continue
            if retry.failures:
                self.log.info("resync recovered", venue=self.venue.name,
                              after_failures=retry.failures)
            retry.succeeded()
            delay = None
            self.last_resync = time.monotonic()

    async def _until_due(self) -> None:
        while True:
            now = time.monotonic()
            due = next_due(self.last_resync or now, self.last_push,
                           self.cfg.resync_every_s, self.cfg.resync_silence_s)
            if now >= due:
                return
            await asyncio.sleep(due - now)  # a push meanwhile moves `due` later: look again

    def _failed(self, e: BaseException) -> None:
        if is_fatal(e):
            return  # not a resync problem: whoever stops the daemon reports it
        step = self.resync.step or "?"
        if self.metrics is not None:
            self.metrics.resync_failures_total.labels(step=step).inc()
        self.log.warning("resync failed", venue=self.venue.name, step=step,
                         error=f"{type(e).__name__}: {e}", exc_info=e)

    async def _disconnected(self, e: BaseException) -> None:
        self._gauge(False)
        if self.metrics is not None:
            self.metrics.reconnects_total.inc()
        self.log.warning("venue disconnected", venue=self.venue.name, error=str(e))
        with contextlib.suppress(Exception):
            await self.venue.close()
        await self.put(VenueDisconnected(venue_ts=self.clock(), venue=self.venue.name,
                                         reason=str(e)[:200] or type(e).__name__))

    def _gauge(self, up: bool) -> None:
        self.connected = up
        if self.metrics is not None:
            self.metrics.venue_connected.set(1 if up else 0)
