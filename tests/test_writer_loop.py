"""The writer loop under a burst: each batch folds while the one before it commits
(`Writer.send`), and what it logs, folds and publishes is what `ingest` batch by batch
gives. When a commit fails, the loop stops at once, with exactly the batches before it
committed. A real WriterLoop on a real Writer over real SQLite files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bench.workload import events
from events.log import EventLog
from kernel.daemon.hub import Hub
from kernel.daemon.notify import Notifier
from kernel.daemon.replay import encode_state
from kernel.daemon.verify import verify
from kernel.daemon.writer import Writer
from kernel.daemon.writer_loop import STOP, WriterLoop
from kernel.errors import LogError
from kernel.snapshot import AccountSnapshotV2

STREAM = list(events(3000, seed=11))
BATCH = 250


def clock() -> int:
    return 1_800_000_000_000_000_000


class Rig:
    """A loop over a fresh log, its queue filled before it starts (`fill`), recording
    what the writer did in order: `prepare`, `append` and `appended`, and each snapshot
    published with the log's last committed seq at that moment."""

    def __init__(self, log: EventLog, writer: Writer, loop: WriterLoop,
                 queue: asyncio.Queue[Any]) -> None:
        self.log, self.writer, self.loop, self.queue = log, writer, loop, queue
        self.trace: list[str] = []
        self.published: list[tuple[int, int]] = []
        self.fail_at = 0
        prepare, append = writer._prepare, log.append

        async def traced_prepare(*args: Any, **kwargs: Any) -> Any:
            self.trace.append("prepare")
            return await prepare(*args, **kwargs)

        async def traced_append(*args: Any, **kwargs: Any) -> Any:
            self.trace.append("append")
            if self.trace.count("append") == self.fail_at:
                raise LogError("disk I/O error")
            n = await append(*args, **kwargs)
            self.trace.append("appended")
            return n

        writer._prepare = traced_prepare  # type: ignore[method-assign]
        log.append = traced_append  # type: ignore[method-assign]

    def fill(self, *items: Any) -> None:
        for item in items:
            self.queue.put_nowait(item)

    def record(self, snap: AccountSnapshotV2) -> None:
        self.published.append((snap.seq, self.log.last_seq))
        self.loop.published(snap)

    def overlapped(self) -> int:
        """How many batches were prepared while an append was under way."""
        inside, n = False, 0
        for step in self.trace:
            if step == "append":
                inside = True
            elif step == "appended":
                inside = False
            elif inside:
                n += 1
        return n


@pytest.fixture
async def make_rig(tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    opened: list[EventLog] = []

    async def make(name: str) -> Rig:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        hub = Hub(backlog=100)
        loop = WriterLoop(queue, hub, Notifier({}), batch_max=BATCH)
        log = await EventLog.open(tmp_path / name)
        opened.append(log)
        rig: Rig | None = None
        writer = await Writer.open(log, clock=clock, checkpoint_every=700,
                                   publish=lambda s: rig.record(s) if rig else None,
                                   committed=loop.committed)
        hub.start(writer.snapshot, writer.state.book)
        rig = Rig(log, writer, loop, queue)
        return rig

    yield make
    for log in opened:
        await log.close()


async def batch_by_batch(db: Path) -> tuple[list[tuple[int, bytes, bytes]], bytes, list[int]]:
    published: list[AccountSnapshotV2] = []
    log = await EventLog.open(db)
    try:
        w = await Writer.open(log, clock=clock, checkpoint_every=700, publish=published.append)
        for i in range(0, len(STREAM), BATCH):
            await w.ingest(STREAM[i:i + BATCH])
        rows = [(r.seq, r.payload, r.hash) async for r in log.rows()]
        return rows, encode_state(w.state), [s.seq for s in published]
    finally:
        await log.close()


async def test_a_burst_folds_each_batch_beside_the_commit_before_and_logs_what_ingest_does(
    make_rig: Callable[[str], Any], tmp_path: Path,
) -> None:
    rig: Rig = await make_rig("loop.db")
    rig.fill(*STREAM, STOP)
    await asyncio.wait_for(rig.loop.run(rig.writer), 60)
    assert rig.overlapped() >= len(STREAM) // BATCH - 2, rig.trace
    rows = [(r.seq, r.payload, r.hash) async for r in rig.log.rows()]
    expected_rows, expected_state, expected_seqs = await batch_by_batch(tmp_path / "one.db")
    assert rows == expected_rows
    assert encode_state(rig.writer.state) == expected_state
    assert [seq for seq, _ in rig.published] == expected_seqs
    # Write-ahead: a snapshot is published only once its events are committed.
    assert all(seq <= committed for seq, committed in rig.published), rig.published


async def test_a_commit_that_fails_with_nothing_behind_it_stops_the_loop_at_once(
    make_rig: Callable[[str], Any],
) -> None:
    rig: Rig = await make_rig("loop.db")
    rig.fail_at = 1
    rig.fill(*STREAM[:BATCH])  # and then nothing more: the loop must not wait for it
    with pytest.raises(LogError, match="disk I/O error"):
        await asyncio.wait_for(rig.loop.run(rig.writer), 10)
    assert rig.writer.state.seq == rig.log.last_seq == 0


async def test_a_commit_that_fails_in_a_burst_leaves_the_batches_before_it_and_no_more(
    make_rig: Callable[[str], Any], tmp_path: Path,
) -> None:
    rig: Rig = await make_rig("loop.db")
    rig.fail_at = 3
    rig.fill(*STREAM, STOP)
    with pytest.raises(LogError, match="disk I/O error"):
        await asyncio.wait_for(rig.loop.run(rig.writer), 60)
    assert rig.writer.state.seq == rig.log.last_seq == 2 * BATCH
    assert [seq for seq, _ in rig.published] == [BATCH, 2 * BATCH]
    report = await verify(rig.log)
    assert (report.events, report.fault) == (2 * BATCH, None)


async def test_a_submission_after_a_burst_sees_every_fact_queued_before_it_committed(
    make_rig: Callable[[str], Any],
) -> None:
    rig: Rig = await make_rig("loop.db")
    rig.fill(*STREAM[:1100])

    async def seen(writer: Writer) -> tuple[int, int]:
        return writer.state.seq, writer.log.last_seq

    submitted = asyncio.create_task(rig.loop.submit(seen))
    await asyncio.sleep(0)  # queued behind the facts
    rig.fill(*STREAM[1100:1200], STOP)
    await asyncio.wait_for(rig.loop.run(rig.writer), 60)
    assert await submitted == (1100, 1100)
    assert rig.writer.state.seq == 1200


async def test_a_cancel_in_a_burst_leaves_no_commit_running_and_a_log_that_reopens_whole(
    make_rig: Callable[[str], Any],
) -> None:
    rig: Rig = await make_rig("loop.db")
    rig.fill(*STREAM)
    task = asyncio.create_task(rig.loop.run(rig.writer))
    while len(rig.published) < 2:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert rig.writer.state.seq <= rig.log.last_seq < len(STREAM)
    path = rig.log.path
    await rig.log.close()
    log = await EventLog.open(path, readonly=True)
    try:
        assert (await verify(log)).fault is None
    finally:
        await log.close()
