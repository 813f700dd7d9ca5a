"""The writer's task: the queue into the one writer in batches, and what it tells the world.

It takes what is queued (up to `batch_max` events per commit), hands each batch to
`Writer.ingest`, pings the systemd watchdog while it lives, and after each commit: the
metrics, one log line per committed event with the fact's content (`kernel.daemon.lines`),
and a line when the verdict moves into or out of ERROR. Snapshots reach the hub from
`published`, which the writer calls after the commit.

`STOP` queued after the last event makes `run` return once everything before it is
committed: the daemon's drain on SIGTERM.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from events.codec import Event
from kernel.daemon.hub import Hub
from kernel.daemon.lines import Precision, fact_line, not_ok
from kernel.daemon.metrics import Metrics
from kernel.daemon.notify import Notifier
from kernel.daemon.writer import BatchResult, Writer
from kernel.reconcile import ReconcileResult, Verdict
from kernel.snapshot import AccountSnapshotV2

STOP = object()
#: Kinds logged at info, with their content; the rest (marks, order updates) at debug.
LOUD_KINDS = frozenset({
    "order_filled", "funding_settled", "transfer_completed", "balance_reported",
    "positions_reported", "venue_connected", "venue_disconnected", "input_quarantined",
    "manual_adjustment", "trading_halted", "trading_resumed", "leverage_set",
    "instrument_defined", "asset_defined",
})
_REPORTS = frozenset({"balance_reported", "positions_reported"})


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
        self._pending: list[AccountSnapshotV2] = []
        self._verdict: Verdict | None = None
        self._recorded: ReconcileResult | None = None
        self._event_counters: dict[str, Any] = {}
        self._last_report: float | None = None
        if metrics is not None:  # computed when scraped, so it ages between reports
            metrics.last_venue_report_age_seconds.set_function(
                lambda: float("nan") if self._last_report is None
                else time.monotonic() - self._last_report)

    def published(self, snap: AccountSnapshotV2) -> None:
        """The writer's callback, once per snapshot, after its event is committed."""
        self.hub.publish(snap)
        self._pending.append(snap)

    async def run(self, writer: Writer) -> None:
        interval = self.notifier.watchdog_interval()
        ping_every = interval / 2 if interval else 5.0
        last_ping = 0.0
        while True:
            try:
                item = await asyncio.wait_for(self.queue.get(), timeout=ping_every)
            except TimeoutError:
                self.notifier.watchdog()
                last_ping = time.monotonic()
                continue
            stop = item is STOP
            batch: list[Event] = [] if stop else [item]
            while not stop and len(batch) < self.batch_max and not self.queue.empty():
                nxt = self.queue.get_nowait()
                if nxt is STOP:
                    stop = True
                else:
                    batch.append(nxt)
            if batch:
                self._pending.clear()
                self._committed(await writer.ingest(batch), len(batch))
            if time.monotonic() - last_ping >= ping_every:
                self.notifier.watchdog()
                last_ping = time.monotonic()
            if stop:
                return

    def _committed(self, result: BatchResult, size: int) -> None:
        snaps, self._pending = self._pending, []
        for snap, event in zip(snaps, result.events, strict=True):
            self._logged(snap, event)
        m = self.metrics
        if m is None:
            return
        m.dedup_skipped_total.inc(result.duplicates)
        m.conflicts_total.inc(result.conflicts)
        m.quarantined_total.inc(result.quarantined)
        m.commit_batch_size.observe(size)
        m.fold_seconds.observe(result.fold_seconds)
        m.commit_seconds.observe(result.commit_seconds)
        m.queue_depth.set(self.queue.qsize())
        m.last_seq.set(result.last_seq)

    def _logged(self, snap: AccountSnapshotV2, event: Event) -> None:
        kind = snap.event_kind
        if self.metrics is not None:
            counter = self._event_counters.get(kind)
            if counter is None:
                counter = self._event_counters[kind] = self.metrics.events_total.labels(
                    kind=kind)
            counter.inc()
        if kind in _REPORTS:
            self._last_report = time.monotonic()
        base = {"seq": snap.seq, "kind": kind, "event_id": snap.source_event_id,
                "verdict": snap.reconcile.verdict.value}
        if kind in LOUD_KINDS:
            line = fact_line(event, Precision.of(snap))
            if line is None:
                self.log.info("event", **base)
            else:
                summary, fields = line
                self.log.info("event", **base, summary=summary, **fields)
        else:
            self.log.debug("event", **base)
        self._verdict_moved(snap)
        if self.metrics is not None and snap.reconcile is not self._recorded:
            # Snapshots share their result while no rule's inputs change.
            self.metrics.record_reconcile(snap.reconcile)
            self._recorded = snap.reconcile

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
