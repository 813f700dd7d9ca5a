"""The writer's task: the queue into the one writer in batches, and what it tells the world.

It takes what is queued (up to `batch_max` events per commit), hands each batch to
`Writer.send` (while more is queued, a batch is screened and folded while SQLite commits
the one before it; when the queue runs dry, the batch in flight is seen committed
before the loop waits for more), pings the systemd watchdog while it lives, and after each commit
(`committed`, which the writer calls once per batch): the metrics, one log line per
committed event with the fact's content (`kernel.daemon.lines`), a line when the verdict
moves into or out of ERROR, and the batch to the hub (the API's subscribers).

**Submissions.** `await loop.submit(fn)` runs `fn(writer)` *inside this task*, between
batches, so a check of the state and the append it decides on are atomic under the one
writer: nothing else is folded in between. Submissions go through the same bounded
queue as the venue's facts, so they are ordered with them (every fact queued before a
submission is committed before it runs) and share its backpressure. The API's intent
ops and the intent reconciler use it.

`STOP` queued after the last event makes `run` return once everything before it is
committed: the daemon's drain on SIGTERM.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import structlog

from events.codec import TAGS, Event
from kernel.daemon.hub import Hub
from kernel.daemon.lines import Precision, fact_line, not_ok
from kernel.daemon.metrics import Metrics
from kernel.daemon.notify import Notifier
from kernel.daemon.writer import BatchResult, Writer
from kernel.errors import LogError
from kernel.reconcile import ReconcileResult, Verdict
from kernel.snapshot import AccountSnapshotV2

T = TypeVar("T")
STOP = object()
#: Kinds logged at info, with their content; the rest (marks, order updates) at debug.
LOUD_KINDS = frozenset({
    "order_filled", "funding_settled", "transfer_completed", "balance_reported",
    "positions_reported", "venue_connected", "venue_disconnected", "input_quarantined",
    "manual_adjustment", "trading_halted", "trading_resumed", "leverage_set",
    "instrument_defined", "asset_defined", "intent_placed", "intent_amended",
    "intent_canceled",
})
_REPORTS = frozenset({"balance_reported", "positions_reported"})


class WriterClosed(RuntimeError):
    """The writer loop has stopped (or is stopping): a submission can no longer run."""


class _Submission(Generic[T]):
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[Writer], Awaitable[T]], future: asyncio.Future[T]) -> None:
        self.fn = fn
        self.future = future


class WriterLoop:
    def __init__(self, queue: asyncio.Queue[Any], hub: Hub, notifier: Notifier, *,
                 batch_max: int, metrics: Metrics | None = None,
                 log: structlog.typing.FilteringBoundLogger | None = None) -> None:
        self.queue = queue
        self.hub = hub
        self.notifier = notifier
        self.batch_max = batch_max
        self.metrics = metrics
        self.log = log or structlog.get_logger("exkernel")
        self._published: AccountSnapshotV2 | None = None
        self._verdict: Verdict | None = None
        self._recorded: ReconcileResult | None = None
        self._event_counters: dict[str, Any] = {}
        self._last_report: float | None = None
        self._writer: Writer | None = None
        self._closed = False
        if metrics is not None:  # computed when scraped, so it ages between reports
            metrics.last_venue_report_age_seconds.set_function(
                lambda: float("nan") if self._last_report is None
                else time.monotonic() - self._last_report)

    def published(self, snap: AccountSnapshotV2) -> None:
        """The writer's callback, once per batch, with the snapshot after its last event,
        once the batch is committed."""
        self._published = snap

    async def submit(self, fn: Callable[[Writer], Awaitable[T]]) -> T:
        """Run `fn(writer)` in the writer's task and return its result (or raise its
        exception) once it is done, i.e. after every `writer.ingest` it awaited has
        committed.

        `fn` runs after every event queued before the call is committed and before any
        queued after it; nothing else touches the writer while it runs, so what it reads
        of `writer.state` is what its `writer.ingest([...])` appends to. Waits while the
        queue is full (backpressure). Obligations on `fn`: be short (it holds up the
        ledger and the watchdog) and wait on nothing but the writer's own log (no venue
        calls); do not keep `writer` for later. A submission canceled before it ran
        never runs. Raises `WriterClosed` once the loop has stopped, without running
        `fn`. An exception from `fn` is the caller's; the loop carries on, except after a
        `LogError` (the log failed), which also stops the loop as any failed append does.
        """
        if self._closed:
            raise WriterClosed("the writer is stopping: nothing more can be logged")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self.queue.put(_Submission(fn, future))
        return await future

    async def run(self, writer: Writer) -> None:
        self._writer = writer
        interval = self.notifier.watchdog_interval()
        ping_every = interval / 2 if interval else 5.0
        last_ping = 0.0
        try:
            while True:
                if self.queue.empty():
                    # Nothing to fold beside the commit in flight: see it land before
                    # waiting (its failure stops the loop now, not at the next event).
                    await writer.flush()
                try:
                    # asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a cancel
                    # that lands as an item arrives, and the writer would run on.
                    async with asyncio.timeout(ping_every):
                        item = await self.queue.get()
                except TimeoutError:
                    self.notifier.watchdog()
                    last_ping = time.monotonic()
                    continue
                stop = item is STOP
                held = item if isinstance(item, _Submission) else None
                batch: list[Event] = [] if stop or held else [item]
                # A submission ends the batch: it must see every fact queued before it.
                while batch and len(batch) < self.batch_max and not self.queue.empty():
                    nxt = self.queue.get_nowait()
                    if nxt is STOP:
                        stop = True
                        break
                    if isinstance(nxt, _Submission):
                        held = nxt
                        break
                    batch.append(nxt)
                if batch:
                    # Folded while the batch before commits; handed over to SQLite's
                    # thread at once only if the next batch is queued to fold beside it.
                    await writer.send(batch, hand_off=not self.queue.empty())
                if held is not None or stop:
                    await writer.flush()  # a submission sees every fact before it logged
                if held is not None:
                    await self._run_submission(writer, held)
                if time.monotonic() - last_ping >= ping_every:
                    self.notifier.watchdog()
                    last_ping = time.monotonic()
                if stop:
                    return
        finally:
            self._closed = True
            await writer.abandon()  # only a loop ended by a cancel or an error has one
            self._refuse_queued()

    async def _run_submission(self, writer: Writer, sub: _Submission[Any]) -> None:
        future = sub.future
        if future.done():  # its caller gave up before it ran: it never runs
            return
        try:
            result = await sub.fn(writer)
        except LogError as e:
            if not future.done():
                future.set_exception(e)
            raise  # the log failed: the daemon stops, as for a venue batch
        except Exception as e:
            if not future.done():
                future.set_exception(e)
        else:
            if not future.done():
                future.set_result(result)
        finally:
            if not future.done():  # the loop itself is being canceled
                future.set_exception(WriterClosed("the writer stopped while this ran"))

    def _refuse_queued(self) -> None:
        """Submissions still queued when the loop ends are refused, never left waiting."""
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if isinstance(item, _Submission) and not item.future.done():
                item.future.set_exception(
                    WriterClosed("the writer stopped before this could be logged"))

    def committed(self, result: BatchResult) -> None:
        """The writer's callback, once per batch (from this loop or a submission),
        after the batch's snapshots were published: logs, metrics, the hub."""
        snap, self._published = self._published, None
        if snap is not None:
            last = len(result.events) - 1
            precision = Precision.of(snap)
            for i, (event, key) in enumerate(zip(result.events, result.keys, strict=True)):
                self._logged(event, key, snap.seq - last + i, precision,
                             snap if i == last else None)
            self._verdict_moved(snap)
            if self.metrics is not None and snap.reconcile is not self._recorded:
                # Snapshots share their result while no rule's inputs change.
                self.metrics.record_reconcile(snap.reconcile)
                self._recorded = snap.reconcile
            if self._writer is not None:
                self.hub.committed(snap, self._writer.state.book, result.events)
        m = self.metrics
        if m is None:
            return
        m.dedup_skipped_total.inc(result.duplicates)
        m.conflicts_total.inc(result.conflicts)
        m.quarantined_total.inc(result.quarantined)
        m.commit_batch_size.observe(result.received)
        m.fold_seconds.observe(result.fold_seconds)
        m.commit_seconds.observe(result.commit_seconds)
        m.queue_depth.set(self.queue.qsize())
        m.last_seq.set(result.last_seq)

    def _logged(self, event: Event, key: str, seq: int, precision: Precision,
                snap: AccountSnapshotV2 | None) -> None:
        """One committed event's line; the batch's last (`snap` given) also carries the
        verdict after it: the published snapshot's (no other state was reconciled)."""
        kind = TAGS[type(event)]
        if self.metrics is not None:
            counter = self._event_counters.get(kind)
            if counter is None:
                counter = self._event_counters[kind] = self.metrics.events_total.labels(
                    kind=kind)
            counter.inc()
        if kind in _REPORTS:
            self._last_report = time.monotonic()
        base: dict[str, Any] = {"seq": seq, "kind": kind, "event_id": key}
        if snap is not None:
            base["verdict"] = snap.reconcile.verdict.value
        if kind in LOUD_KINDS:
            # Input the kernel refused (malformed, inadmissible, a dedup conflict) is news.
            log = self.log.warning if kind == "input_quarantined" else self.log.info
            line = fact_line(event, precision)
            if line is None:
                log("event", **base)
            else:
                summary, fields = line
                log("event", **base, summary=summary, **fields)
        else:
            self.log.debug("event", **base)

    def _verdict_moved(self, snap: AccountSnapshotV2) -> None:
        verdict = snap.reconcile.verdict
        if verdict is self._verdict:
            return
        # Explained WARNs come and go with every mark; into or out of ERROR is news.
        if verdict is Verdict.ERROR:
            log = self.log.warning
        elif self._verdict is Verdict.ERROR:
            log = self.log.info
        else:
            log = self.log.debug
        log("verdict changed", seq=snap.seq, verdict=verdict.value,
            was=None if self._verdict is None else self._verdict.value, checks=not_ok(snap))
        self._verdict = verdict
