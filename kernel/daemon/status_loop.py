"""The daemon's heartbeat for people: status.json, systemd's STATUS= line, a log line.

Every `status_every_s`: rewrite `status.json` (for `exkernel status`), send STATUS= to
systemd, and log a `status` line with K's figures at the venue's precision
(`kernel.daemon.lines.status_fields`). A status file that cannot be written (a full
disk, a removed directory) is logged and tried again next time: it is a report, and
losing one must not stop the ledger. Any other error is a bug and propagates.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import structlog

from kernel.daemon.lines import not_ok, status_fields
from kernel.daemon.notify import Notifier
from kernel.daemon.status import Status, write_status
from kernel.snapshot import AccountSnapshotV2


class StatusLoop:
    def __init__(
        self,
        state_dir: Path,
        notifier: Notifier,
        *,
        venue: str,
        started_at: int,
        every_s: float,
        clock: Callable[[], int],
        snapshot: Callable[[], AccountSnapshotV2 | None],
        connected: Callable[[], bool],
        ready: asyncio.Event,
        queued: Callable[[], int],
        log: structlog.typing.FilteringBoundLogger | None = None,
    ) -> None:
        """`snapshot` reads the writer's latest snapshot (None before replay ends)."""
        self.state_dir = state_dir
        self.notifier = notifier
        self.venue = venue
        self.started_at = started_at
        self.every_s = every_s
        self.clock = clock
        self.snapshot = snapshot
        self.connected = connected
        self.ready = ready
        self.queued = queued
        self.log = log or structlog.get_logger("exkernel")

    async def run(self) -> None:
        while True:
            try:
                self.write()
            except OSError as e:
                self.log.warning("status not written", state_dir=str(self.state_dir),
                                 error=str(e), exc_info=e)
            snap = self.snapshot()
            if snap is not None:
                self.log.info("status", seq=snap.seq, verdict=snap.reconcile.verdict.value,
                              connected=self.connected(), queue=self.queued(),
                              **status_fields(snap), checks=not_ok(snap))
            await asyncio.sleep(self.every_s)

    def write(self, stopping: bool = False) -> None:
        """status.json and STATUS= now. Raises OSError if the file cannot be written."""
        snap = self.snapshot()
        seq = 0 if snap is None else snap.seq
        verdict = "UNKNOWN" if snap is None else snap.reconcile.verdict.value
        connected = self.connected()
        self.notifier.status(f"seq {seq}; venue {'connected' if connected else 'disconnected'};"
                             f" verdict {verdict}")
        write_status(self.state_dir, Status(
            pid=os.getpid(), started_at=self.started_at, updated_at=self.clock(),
            venue=self.venue, connected=connected, ready=self.ready.is_set(),
            last_seq=seq, verdict=verdict, worst=[] if snap is None else not_ok(snap)[:20],
            stopping=stopping,
        ))
