"""The daemon and the sim venue, instrumented to time each event: when the sim pushed it,
when the venue's `facts()` yielded it, and when the batch holding it was committed and
handed to the hub. `bench.daemon_flood`, `bench.api_subscribers` and `bench.intents` run
them; only benchmarks do (the instruments cost time of their own).
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

from adapters.sim import wire
from adapters.sim.config import SimConfig
from adapters.sim.venue import SimVenue
from adapters.sim.wire import Msg
from events.codec import Event
from kernel.daemon.config import Config
from kernel.daemon.metrics import Metrics
from kernel.daemon.service import Daemon
from kernel.daemon.writer import BatchResult


class StampedQueue(asyncio.Queue[object]):
    """The sim's push queue, noting when each item was put: `taken_ns` is the put time of
    the item `get` returned last (the venue's emit time of what `facts()` parses next)."""

    taken_ns = 0

    def _put(self, item: object) -> None:
        super()._put((time.perf_counter_ns(), item))

    def _get(self) -> object:
        stamp, item = cast(tuple[int, object], super()._get())
        self.taken_ns = stamp
        return item


class TimedVenue(SimVenue):
    """SimVenue that stamps each event: when the sim pushed its message and when `facts()`
    yielded it (`emitted`, by dedup key); it counts what the sim generates."""

    def __init__(self, config: SimConfig, *, pace_s: float | None = None) -> None:
        super().__init__(config, pace_s=pace_s)
        self.emitted: dict[str, tuple[int, int]] = {}
        self.yielded = 0
        self.generated = 0
        self.engine.flood_marks = self._flood_marks  # type: ignore[method-assign]
        self._credit = 0.0
        self._credit_at: int | None = None

    async def connect(self) -> None:
        await super().connect()
        # The clock task `connect` created has not run yet (no await since): nothing is
        # queued. An early return (already connected) left the stamped queue in place.
        if not isinstance(self._queue, StampedQueue):
            self._queue = StampedQueue()

    def _flood_marks(self, now_ns: int, n: int) -> list[Msg]:
        """`SimEngine.flood_marks`, building only the `n` marks it returns.

        The engine's own builds every instrument's mark for each of up to `n` stamps
        (n × instruments messages, each four Decimal formats) and keeps the first `n`: with
        50 instruments that was 98% of the process's time at 1k/s. Same stamps, same
        symbols first, same `_flood_ms` bookkeeping; only the waste is gone."""
        eng = self.engine
        if self._credit_at is not None:  # called only when int(elapsed × rate) >= 1
            self._credit += (now_ns - self._credit_at) * self.config.flood_per_s / 1e9
            n = int(self._credit)
            self._credit -= n
        self._credit_at = now_ns
        last_tick = eng._next_tick - round(eng.config.tick_s * 1e9)
        first = max(eng._flood_ms, wire.ms(last_tick)) + 1
        prices = list(eng.prices.items())
        rates = {i.symbol: i.funding_rate for i in eng.config.instruments}
        stamps = range(first, min(first + -(-n // len(prices)), wire.ms(now_ns) + 1))
        out: list[Msg] = []
        for stamp in stamps:
            t = stamp * wire.NS_PER_MS
            for sym, price in prices[:n - len(out)]:
                out.append(wire.mark_price(t, sym, price, rates[sym], eng._next_funding))
        if stamps:
            eng._flood_ms = stamps[-1]
        return out

    def _deliver(self, msgs: list[Msg], now: int) -> None:
        self.generated += len(msgs)
        super()._deliver(msgs, now)

    async def facts(self) -> AsyncIterator[Event]:
        queue = self._queue
        async for event in super().facts():
            self.yielded += 1
            pushed = queue.taken_ns if isinstance(queue, StampedQueue) else 0
            self.emitted[event.dedup_key] = (pushed, time.perf_counter_ns())
            yield event


class TimedDaemon(Daemon):
    """Daemon whose writer loop, after handing each committed batch to the hub, records
    every event's emit → published and yield → published latency, and when the batch
    reached the hub (for the subscribers' commit → receive delay), and whose `_put` notes
    each time the bounded queue was full (the venue loop had to wait)."""

    venue: TimedVenue

    def __init__(self, cfg: Config, venue: TimedVenue, state_dir: Path,
                 metrics: Metrics | None = None) -> None:
        super().__init__(cfg, venue, state_dir, metrics=metrics)
        self.window: tuple[int, int] | None = None  # perf_counter_ns of its start and end
        #: (emitted, published) perf_counter_ns of each event emitted in the window.
        self.samples: list[tuple[int, int]] = []
        self.yield_latencies: list[int] = []  # ns
        #: Each batch's `log.append` (the commit: aiosqlite's round trips, the fsync),
        #: as (start, end) perf_counter_ns, its end taken as the publish.
        self.commits: list[tuple[int, int]] = []
        self.full_puts = 0
        self.max_depth = 0
        self.committed_seq: list[int] = []
        self.committed_ns: list[int] = []
        self.hub.listen(self._at)
        committed = self.writer_loop.committed  # what `Writer.open` will be handed

        def timed(result: BatchResult) -> None:
            committed(result)
            done = time.perf_counter_ns()
            if result.appended:
                self.commits.append((done - round(result.commit_seconds * 1e9), done))
            emitted, w = self.venue.emitted, self.window
            for key in result.keys:
                stamps = emitted.pop(key, None)
                if stamps is not None and w is not None and w[0] <= stamps[0] <= w[1]:
                    self.samples.append((stamps[0], done))
                    self.yield_latencies.append(done - stamps[1])

        self.writer_loop.committed = timed  # type: ignore[method-assign]

    def _at(self) -> None:
        self.committed_seq.append(self.hub.seq)
        self.committed_ns.append(time.perf_counter_ns())

    def commit_ns(self, seq: int) -> int | None:
        """When the batch holding `seq` was handed to the hub."""
        i = bisect.bisect_left(self.committed_seq, seq)
        return self.committed_ns[i] if i < len(self.committed_seq) else None

    async def _put(self, event: Event) -> None:
        q = self.queue
        if q.full():
            self.full_puts += 1
        await super()._put(event)
        self.max_depth = max(self.max_depth, q.qsize())
