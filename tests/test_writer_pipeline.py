"""`Writer.ingest_all`: each batch folds while the one before it commits. It must give
the very log, states and snapshots that `ingest` batch by batch gives, and when it fails,
leave exactly the batches before the failure committed. Real SQLite files."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bench.workload import events
from events.codec import Event
from events.log import EventLog
from kernel.daemon.replay import encode_state, load_state
from kernel.daemon.verify import verify
from kernel.daemon.writer import Writer
from kernel.errors import KeyLogged, LogError
from kernel.snapshot import AccountSnapshotV2

STREAM = list(events(3000, seed=5))
BATCHES = [STREAM[i:i + 250] for i in range(0, len(STREAM), 250)]


def clock() -> int:
    return 1_800_000_000_000_000_000


async def open_writer(db: Path, published: list[AccountSnapshotV2]) -> tuple[EventLog, Writer]:
    log = await EventLog.open(db)
    return log, await Writer.open(log, clock=clock, checkpoint_every=700,
                                  publish=published.append)


async def outcome(db: Path, batches: Sequence[Sequence[Event]], pipelined: bool,
                  ) -> tuple[list[tuple[int, bytes, bytes]], bytes, list[AccountSnapshotV2]]:
    published: list[AccountSnapshotV2] = []
    log, w = await open_writer(db, published)
    try:
        if pipelined:
            await w.ingest_all(batches)
        else:
            for batch in batches:
                await w.ingest(batch)
        rows = [(r.seq, r.payload, r.hash) async for r in log.rows()]
        return rows, encode_state(w.state), published
    finally:
        await log.close()


async def test_it_logs_folds_and_publishes_what_ingest_batch_by_batch_does(
    tmp_path: Path,
) -> None:
    # A redelivered batch in the middle: its keys are logged, so the pipeline screens it
    # again with a lookup, and the batch folded after it from a state that never was.
    batches = [*BATCHES[:4], BATCHES[2], *BATCHES[4:]]
    one = await outcome(tmp_path / "one.db", batches, pipelined=False)
    all_ = await outcome(tmp_path / "all.db", batches, pipelined=True)
    assert all_ == one
    assert len(one[0]) == len(STREAM)
    assert len(one[2]) == len(BATCHES)  # a snapshot per batch that appended anything


class FailingLog:
    """Wraps a log's `append`: the `fail_at`-th call raises `error`."""

    def __init__(self, log: EventLog, fail_at: int, error: Exception) -> None:
        self.append = log.append
        self.calls = 0
        self.fail_at = fail_at
        self.error = error
        self.refused: list[Exception] = []
        log.append = self  # type: ignore[method-assign]

    async def __call__(self, *args: Any, **kwargs: Any) -> int:
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.error
        try:
            return await self.append(*args, **kwargs)
        except KeyLogged as e:
            self.refused.append(e)
            raise


async def test_a_batch_refused_for_a_logged_key_is_screened_again(tmp_path: Path) -> None:
    published: list[AccountSnapshotV2] = []
    log, w = await open_writer(tmp_path / "ev.db", published)
    spy = FailingLog(log, fail_at=0, error=LogError("unused"))
    try:
        result = await w.ingest_all([BATCHES[0], BATCHES[1], [*BATCHES[0][:3], *BATCHES[2]],
                                     BATCHES[3]])
    finally:
        await log.close()
    assert len(spy.refused) == 1, "the redelivery was looked up first: the test proves nothing"
    assert (result.appended, result.duplicates) == (1000, 3)
    assert w.state.seq == log.last_seq == 1000


async def test_a_failed_append_leaves_the_batches_before_it_committed_and_no_more(
    tmp_path: Path,
) -> None:
    db = tmp_path / "ev.db"
    published: list[AccountSnapshotV2] = []
    log, w = await open_writer(db, published)
    FailingLog(log, fail_at=3, error=LogError("disk I/O error"))
    try:
        with pytest.raises(LogError, match="disk I/O error"):
            await w.ingest_all(BATCHES)
        assert w.state.seq == log.last_seq == 500
        assert [s.seq for s in published] == [250, 500]
    finally:
        await log.close()
    log = await EventLog.open(db, readonly=True)
    try:
        assert (await load_state(log)).seq == 500
        report = await verify(log)
        assert (report.events, report.fault) == (500, None)
    finally:
        await log.close()


async def test_an_error_from_the_batches_comes_after_the_batch_before_it_is_committed(
    tmp_path: Path,
) -> None:
    class Unreadable(Exception):
        pass

    def batches() -> Iterator[Sequence[Event]]:
        yield from BATCHES[:3]
        raise Unreadable

    published: list[AccountSnapshotV2] = []
    log, w = await open_writer(tmp_path / "ev.db", published)
    try:
        with pytest.raises(Unreadable):
            await w.ingest_all(batches())
        assert w.state.seq == log.last_seq == 750
        assert [s.seq for s in published] == [250, 500, 750]
    finally:
        await log.close()


async def test_a_cancel_leaves_a_log_that_reopens_whole(tmp_path: Path) -> None:
    db = tmp_path / "ev.db"
    published: list[AccountSnapshotV2] = []
    log, w = await open_writer(db, published)
    task = asyncio.create_task(w.ingest_all(BATCHES))
    while not published:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert w.state.seq <= log.last_seq < len(STREAM)
    await log.close()
    log = await EventLog.open(db)
    try:
        assert (await verify(log)).fault is None
        # The rest goes in after a reopen, each event once.
        published.clear()
        w = await Writer.open(log, clock=clock, checkpoint_every=700, publish=published.append)
        result = await w.ingest_all(BATCHES)
        assert log.last_seq == len(STREAM)
        assert result.appended + result.duplicates == len(STREAM)
    finally:
        await log.close()
