"""Snapshot fan-out that never blocks the writer.

Each subscriber sees the latest snapshot, conflated: a slow one skips intermediate
snapshots instead of making the writer wait or memory grow. Publishing is a plain
function call from the writer's task.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from kernel.snapshot import AccountSnapshotV2


class Hub:
    def __init__(self) -> None:
        self.latest: AccountSnapshotV2 | None = None
        self._changed = asyncio.Event()
        self._closed = False

    def publish(self, snapshot: AccountSnapshotV2) -> None:
        self.latest = snapshot
        self._changed.set()

    def close(self) -> None:
        self._closed = True
        self._changed.set()

    async def subscribe(self) -> AsyncIterator[AccountSnapshotV2]:
        """The latest snapshot now (if any), then each newer one as it is published,
        skipping those published while the subscriber was busy. Ends when closed."""
        seen = -1
        while not self._closed:
            snap = self.latest
            if snap is not None and snap.seq > seen:
                seen = snap.seq
                yield snap
                continue
            self._changed.clear()
            if self.latest is not None and self.latest.seq > seen:
                continue
            await self._changed.wait()
