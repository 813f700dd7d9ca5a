"""`exkernel run`: the venue's facts into the log, snapshots out, for months on end.

::

    venue loop ──facts──> bounded queue ──> writer loop (the one writer) ──> hub
     connect · resync · stream             dedup · admit · fold · commit      snapshots
     backoff on failure                    watchdog pings

Lifecycle: replay the log, connect and resync the venue, then READY=1. SIGTERM or
SIGINT: STOPPING=1, stop the venue loop, drain the queue, checkpoint, exit 0. A
rejected credential or a config error exits with a status systemd does not restart on;
any other failure propagates (the process dies loudly; restart and replay recover).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from adapters.base import Venue
from events.codec import Event
from events.control import VenueConnected, VenueDisconnected
from events.log import EventLog
from kernel.backoff import backoff, classify
from kernel.daemon.config import Config
from kernel.daemon.hub import Hub
from kernel.daemon.metrics import Metrics
from kernel.daemon.notify import Notifier
from kernel.daemon.status import Status, write_status
from kernel.daemon.writer import BatchResult, Writer
from kernel.errors import VenueUnavailable
from kernel.reconcile import ReconcileResult, Verdict
from kernel.snapshot import AccountSnapshotV2

_STOP = object()
_LOUD_KINDS = frozenset({
    "order_filled", "funding_settled", "transfer_completed", "balance_reported",
    "positions_reported", "venue_connected", "venue_disconnected", "input_quarantined",
    "manual_adjustment", "trading_halted", "trading_resumed", "leverage_set",
    "instrument_defined",
})


class Daemon:
    def __init__(
        self,
        cfg: Config,
        venue: Venue,
        state_dir: Path,
        *,
        clock: Callable[[], int] = time.time_ns,
        notifier: Notifier | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.cfg = cfg
        self.venue = venue
        self.state_dir = state_dir
        self.clock = clock
        self.notifier = notifier or Notifier()
        self.metrics = metrics
        self.hub = Hub()
        self.log = structlog.get_logger("exkernel")
        self.queue: asyncio.Queue[Any] = asyncio.Queue(cfg.kernel.queue_size)
        self.started_at = clock()
        self.connected = False
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        # Resync asks for fills, funding and transfers with venue time >= `_since`: where
        # the previous complete resync began, less a lookback. Never the newest fact seen:
        # a dropped fill is older than the next one that arrives.
        self._since = 0
        self._verdict: Verdict | None = None
        self._recorded: ReconcileResult | None = None
        self._event_counters: dict[str, Any] = {}
        self._last_report: float | None = None
        if metrics is not None:  # computed when scraped, so it ages between reports
            metrics.last_venue_report_age_seconds.set_function(
                lambda: float("nan") if self._last_report is None
                else time.monotonic() - self._last_report)
        self._writer: Writer | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        log = await EventLog.open(self.state_dir / "events.db",
                                  synchronous=self.cfg.kernel.synchronous)
        try:
            return await self._run(log)
        finally:
            await log.close()
            with contextlib.suppress(Exception):
                await self.venue.close()

    async def _run(self, log: EventLog) -> int:
        started = time.perf_counter()
        writer = await Writer.open(
            log, clock=self.clock, reconcile=self.cfg.reconcile,
            checkpoint_every=self.cfg.kernel.checkpoint_every, publish=self._published,
        )
        self._writer = writer
        lookback = int(self.cfg.kernel.resync_lookback_s * 1e9)
        newest = max([await log.max_venue_ts(kind) or 0 for kind in
                      ("order_filled", "funding_settled", "transfer_completed")])
        self._since = max(0, newest - lookback) if newest else 0
        self.log.info("replayed", seq=writer.state.seq,
                      seconds=round(time.perf_counter() - started, 3), db=str(log.path))
        self.notifier.status(f"replayed {writer.state.seq} events; connecting")
        writer_task = asyncio.create_task(self._writer_loop(writer), name="writer")
        venue_task = asyncio.create_task(self._venue_loop(), name="venue")
        status_task = asyncio.create_task(self._status_loop(), name="status")
        stop_task = asyncio.create_task(self._stop.wait(), name="stop")
        ready_task = asyncio.create_task(self._announce_ready(), name="ready")
        tasks = {writer_task, venue_task, stop_task}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done - {stop_task}:
                t.result()  # a failed loop: raise its error (CredentialsRejected, LogError...)
            self.log.info("stopping", seq=writer.state.seq)
            self.notifier.stopping()
            self._write_status(stopping=True)
            venue_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await venue_task
            await self.queue.put(_STOP)
            await writer_task  # drains everything queued before the stop mark
            if await writer.checkpoint():
                self.log.info("checkpointed", seq=writer.state.seq)
            self._write_status(stopping=True)
            return 0
        finally:
            for t in (writer_task, venue_task, status_task, stop_task, ready_task):
                t.cancel()
            self.hub.close()

    async def _announce_ready(self) -> None:
        await self.ready.wait()
        self.notifier.ready()
        self.log.info("ready", venue=self.venue.name)

    # -- the writer ----------------------------------------------------------------------

    async def _writer_loop(self, writer: Writer) -> None:
        interval = self.notifier.watchdog_interval()
        ping_every = interval / 2 if interval else 5.0
        last_ping = 0.0
        batch_max = self.cfg.kernel.batch_max
        while True:
            try:
                item = await asyncio.wait_for(self.queue.get(), timeout=ping_every)
            except TimeoutError:
                self.notifier.watchdog()
                last_ping = time.monotonic()
                continue
            stop = item is _STOP
            batch: list[Event] = [] if stop else [item]
            while not stop and len(batch) < batch_max and not self.queue.empty():
                nxt = self.queue.get_nowait()
                if nxt is _STOP:
                    stop = True
                else:
                    batch.append(nxt)
            if batch:
                self._account(await writer.ingest(batch), len(batch))
            if time.monotonic() - last_ping >= ping_every:
                self.notifier.watchdog()
                last_ping = time.monotonic()
            if stop:
                return

    def _account(self, result: BatchResult, size: int) -> None:
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

    def _published(self, snap: AccountSnapshotV2) -> None:
        """Called by the writer for each snapshot, after its events are committed."""
        self.hub.publish(snap)
        kind = snap.event_kind
        if self.metrics is not None:
            counter = self._event_counters.get(kind)
            if counter is None:
                counter = self._event_counters[kind] = self.metrics.events_total.labels(
                    kind=kind)
            counter.inc()
            if kind in ("balance_reported", "positions_reported"):
                self._last_report = time.monotonic()
        level = "info" if kind in _LOUD_KINDS else "debug"
        getattr(self.log, level)("event", seq=snap.seq, kind=kind,
                                 event_id=snap.source_event_id,
                                 verdict=snap.reconcile.verdict.value)
        verdict = snap.reconcile.verdict
        if verdict is not self._verdict:
            # Explained WARNs come and go with every mark; into or out of ERROR is news.
            if verdict is Verdict.ERROR:
                log = self.log.warning
            elif self._verdict is Verdict.ERROR:
                log = self.log.info
            else:
                log = self.log.debug
            log("verdict changed", seq=snap.seq, verdict=verdict.value,
                was=None if self._verdict is None else self._verdict.value,
                checks=_not_ok(snap))
            self._verdict = verdict
        if self.metrics is not None and snap.reconcile is not self._recorded:
            # Snapshots share their result while no rule's inputs change.
            self.metrics.record_reconcile(snap.reconcile)
            self._recorded = snap.reconcile

    # -- the venue -----------------------------------------------------------------------

    async def _put(self, event: Event) -> None:
        await self.queue.put(event)  # bounded: a flood waits here, memory stays flat

    async def _venue_loop(self) -> None:
        delays = backoff(rng=random.Random())
        while True:
            try:
                await self.venue.connect()
                self.connected = True
                self._gauge_connected(True)
                self.log.info("venue connected", venue=self.venue.name)
                await self._put(VenueConnected(venue_ts=self.clock(), venue=self.venue.name))
                await self.resync()
                self.ready.set()
                delays = backoff(rng=random.Random())
                await self._stream()
            except Exception as e:
                if classify(e) == "fatal":
                    raise
                await self._disconnected(e)
                await asyncio.sleep(next(delays))

    async def _stream(self) -> None:
        resync = asyncio.create_task(self._resync_every(self.cfg.kernel.resync_every_s))
        try:
            async for event in self.venue.facts():
                await self._put(event)
            raise VenueUnavailable("the venue's stream ended")
        finally:
            resync.cancel()

    async def _disconnected(self, e: BaseException) -> None:
        self.connected = False
        self._gauge_connected(False)
        if self.metrics is not None:
            self.metrics.reconnects_total.inc()
        self.log.warning("venue disconnected", venue=self.venue.name, error=str(e))
        with contextlib.suppress(Exception):
            await self.venue.close()
        await self._put(VenueDisconnected(venue_ts=self.clock(), venue=self.venue.name,
                                          reason=str(e)[:200] or type(e).__name__))

    def _gauge_connected(self, up: bool) -> None:
        if self.metrics is not None:
            self.metrics.venue_connected.set(1 if up else 0)

    async def resync(self) -> None:
        """Ask the venue for everything since the previous resync began (less the lookback);
        the log's dedup absorbs what the stream already delivered."""
        v = self.venue
        started = self.clock()
        since = self._since
        for inst in await v.instruments():
            await self._put(inst)
        for lev in await v.leverage_settings():
            await self._put(lev)
        for transfer in await v.transfers_since(since):
            await self._put(transfer)
        for mark in await v.marks():
            await self._put(mark)
        await self._put(await v.balances())
        await self._put(await v.positions())
        for order in await v.open_orders():
            await self._put(order)
        for fill in await v.fills_since(since):
            await self._put(fill)
        for funding in await v.funding_since(since):
            await self._put(funding)
        self._since = max(since, started - int(self.cfg.kernel.resync_lookback_s * 1e9))

    async def _resync_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self.resync()

    # -- status --------------------------------------------------------------------------

    async def _status_loop(self) -> None:
        while True:
            self._write_status()
            snap = self._writer.snapshot if self._writer is not None else None
            if snap is not None:
                k = snap.k
                self.log.info(
                    "status", seq=snap.seq, verdict=snap.reconcile.verdict.value,
                    connected=self.connected, queue=self.queue.qsize(),
                    capital={a: str(v) for a, v in k.wallets.items()},
                    equity={a: str(v) for a, v in k.equity.items()},
                    positions={key: str(p.qty) for key, p in k.positions.items()},
                    checks=_not_ok(snap),
                )
            await asyncio.sleep(self.cfg.kernel.status_every_s)

    def _write_status(self, stopping: bool = False) -> None:
        snap = self._writer.snapshot if self._writer is not None else None
        worst = [] if snap is None else _not_ok(snap)
        write_status(self.state_dir, Status(
            pid=os.getpid(), started_at=self.started_at, updated_at=self.clock(),
            venue=self.venue.name, connected=self.connected, ready=self.ready.is_set(),
            last_seq=0 if snap is None else snap.seq,
            verdict="UNKNOWN" if snap is None else snap.reconcile.verdict.value,
            worst=worst[:20], stopping=stopping,
        ))
        self.notifier.status(
            f"seq {0 if snap is None else snap.seq}; venue "
            f"{'connected' if self.connected else 'disconnected'}; verdict "
            f"{'UNKNOWN' if snap is None else snap.reconcile.verdict.value}")


def _not_ok(snap: AccountSnapshotV2) -> list[str]:
    return [f"{c.rule} {c.subject} {c.verdict.value} {c.reason}"
            for c in snap.reconcile.checks if c.verdict is not Verdict.OK]
