"""`exkernel run`: the venue's facts into the log, snapshots out, for months on end.

::

    VenueLoop ──facts──> bounded queue ──> WriterLoop (the one writer) ──> hub ──> ApiServer
     connect · resync · stream    ▲     dedup · admit · fold · commit     snapshots, events
     periodic resync, supervised  │     log lines · metrics · watchdog    (fan-out)
                                  └──── submissions (intents, halts) ◄─── ApiServer
                                        StatusLoop: status.json, STATUS=, status line

The Daemon composes these task modules (kernel/daemon/venue_loop.py, writer_loop.py,
status_loop.py, api.py) under one `asyncio.TaskGroup`: every task has a parent, and a
task that fails stops the others and the daemon with its own error, never silently.

Lifecycle: replay the log, open the API (the unix socket, TCP if configured), connect
and resync the venue, then READY=1. SIGTERM or SIGINT: STOPPING=1, stop the API
(requests in flight are answered, then `bye shutdown`), stop the venue loop, drain the
queue, checkpoint, exit 0. A rejected credential or a config error (an API socket that
cannot be bound) exits with a status systemd does not restart on; any other fatal
failure propagates (the process dies loudly; restart and replay recover).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from adapters.base import Venue
from events.codec import Event
from events.log import EventLog
from kernel.daemon.api import ApiServer
from kernel.daemon.auth import TokenTable
from kernel.daemon.clock import EventClock
from kernel.daemon.config import Config
from kernel.daemon.hub import Hub
from kernel.daemon.metrics import Metrics
from kernel.daemon.notify import Notifier
from kernel.daemon.reconciler import Reconciler
from kernel.daemon.status_loop import StatusLoop
from kernel.daemon.supervise import first_error
from kernel.daemon.venue_loop import VenueLoop
from kernel.daemon.writer import BatchResult, Writer
from kernel.daemon.writer_loop import STOP, WriterLoop
from kernel.snapshot import AccountSnapshotV2


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
        tokens: TokenTable | None = None,
    ) -> None:
        """`tokens`: the API's clients (default: from `cfg.api`, tokens read from the
        environment and the systemd credentials)."""
        self.cfg = cfg
        self.venue = venue
        self.state_dir = state_dir
        self.clock = clock
        self.notifier = notifier or Notifier()
        self.metrics = metrics
        self.hub = Hub(backlog=cfg.api.max_event_backlog)
        self.log = structlog.get_logger("exkernel")
        self.queue: asyncio.Queue[Any] = asyncio.Queue(cfg.kernel.queue_size)
        self.started_at = clock()
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._writer: Writer | None = None
        self.writer_loop = WriterLoop(self.queue, self.hub, self.notifier,
                                      batch_max=cfg.kernel.batch_max, metrics=metrics,
                                      log=self.log)
        self.venue_loop = VenueLoop(venue, cfg.kernel, put=self._put, clock=clock,
                                    marks=self._marks, ready=self.ready, metrics=metrics,
                                    log=self.log)
        self.status = StatusLoop(
            state_dir, self.notifier, venue=venue.name, started_at=self.started_at,
            every_s=cfg.kernel.status_every_s, clock=clock, snapshot=self._snapshot,
            connected=lambda: self.venue_loop.connected, ready=self.ready,
            queued=self.queue.qsize, log=self.log)
        if tokens is None:
            tokens, warnings = TokenTable.from_config(cfg.api)
            for warning in warnings:
                self.log.warning("api token missing", problem=warning)
        self._reconciler_task: asyncio.Task[None] | None = None
        self.reconciler = Reconciler(
            venue, cfg.reconciler, commit=self._commit,
            state=lambda: None if self._writer is None else self._writer.state,
            connected=lambda: self.venue_loop.connected and self.ready.is_set(),
            clock=clock, log=structlog.get_logger("exkernel.reconciler"))
        self.api = ApiServer(cfg.api, state_dir=state_dir, hub=self.hub,
                             writer_loop=self.writer_loop, tokens=tokens,
                             reconcile=cfg.reconcile, status=self._api_status,
                             limits=cfg.risk,
                             log=structlog.get_logger("exkernel.api"))

    @property
    def connected(self) -> bool:
        return self.venue_loop.connected

    def _snapshot(self) -> AccountSnapshotV2 | None:
        return None if self._writer is None else self._writer.snapshot

    def _marks(self) -> Mapping[str, int]:
        """The committed resync watermarks: each moves only once its marker is logged."""
        return {} if self._writer is None else self._writer.state.resync_marks

    def _published(self, snap: AccountSnapshotV2) -> None:
        """The writer's callback for each snapshot, after its event is committed (a hook
        for subclasses that time the path, as bench/daemon_flood.py does)."""
        self.writer_loop.published(snap)
        self.reconciler.published(snap)

    async def _commit(self, events: Sequence[Event]) -> BatchResult:
        """The reconciler's commands and outcomes, through the one writer; returns once
        they are committed (write-ahead: nothing is sent before)."""
        return await self.writer_loop.submit(lambda w: w.ingest(list(events)))

    def _api_status(self) -> dict[str, Any]:
        snap = self._snapshot()
        return {
            "pid": os.getpid(), "venue": self.venue.name, "connected": self.connected,
            "ready": self.ready.is_set(), "seq": 0 if snap is None else snap.seq,
            "verdict": "UNKNOWN" if snap is None else snap.reconcile.verdict.value,
            "halted": False if snap is None else snap.halted, "queue": self.queue.qsize(),
            "started_at": self.started_at,
        }

    async def _put(self, event: Event) -> None:
        await self.queue.put(event)  # bounded: a flood waits here, memory stays flat

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
            log, clock=EventClock(wall=self.clock), reconcile=self.cfg.reconcile,
            checkpoint_every=self.cfg.kernel.checkpoint_every,
            publish=self._published, committed=self.writer_loop.committed,
        )
        self._writer = writer
        self.hub.start(writer.snapshot, writer.state.book)
        self.log.info("replayed", seq=writer.state.seq,
                      seconds=round(time.perf_counter() - started, 3), db=str(log.path),
                      resync_marks=dict(writer.state.resync_marks))
        self.notifier.status(f"replayed {writer.state.seq} events; connecting")
        try:
            await self.api.start(writer)
        except BaseException:
            await self.api.stop()  # whatever did bind
            raise
        try:
            async with asyncio.TaskGroup() as tg:
                writer_task = tg.create_task(self.writer_loop.run(writer), name="writer")
                helpers = [tg.create_task(self.status.run(), name="status"),
                           tg.create_task(self._announce_ready(), name="ready")]
                venue_task = tg.create_task(self.venue_loop.run(), name="venue")
                api_task = tg.create_task(self.api.serve(), name="api")
                if self.cfg.reconciler.enabled:
                    self._reconciler_task = tg.create_task(self.reconciler.run(),
                                                           name="reconciler")
                await self._stop.wait()  # a failed task cancels this wait, and the group raises
                await self._drain(writer, writer_task, venue_task)
                await asyncio.wait([api_task])
                for t in helpers:
                    t.cancel()
            return 0
        except BaseExceptionGroup as group:
            # The caller acts on the error itself (CredentialsRejected: exit 77), not a group.
            raise first_error(group) from None
        finally:
            self.hub.close()
            await self.api.stop()

    async def _drain(self, writer: Writer, writer_task: asyncio.Task[None],
                     venue_task: asyncio.Task[Any]) -> None:
        self.log.info("stopping", seq=writer.state.seq)
        self.notifier.stopping()
        self.status.write(stopping=True)
        await self.api.stop()  # first: intents in flight are logged and answered
        if self._reconciler_task is not None:
            # A command logged but not answered yet is resolved by query at the next
            # start, as after a crash: write-ahead makes stopping here safe.
            self._reconciler_task.cancel()
            await asyncio.wait([self._reconciler_task])
        venue_task.cancel()
        await asyncio.wait([venue_task])
        await self.queue.put(STOP)
        await asyncio.wait([writer_task])  # drains everything queued before the stop mark
        if writer_task.cancelled() or writer_task.exception() is not None:
            return  # the task group raises the writer's error
        if await writer.checkpoint():
            self.log.info("checkpointed", seq=writer.state.seq)
        self.status.write(stopping=True)

    async def _announce_ready(self) -> None:
        await self.ready.wait()
        self.notifier.ready()
        self.log.info("ready", venue=self.venue.name)
