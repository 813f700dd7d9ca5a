"""The writer loop's submission path: a function run inside the one writer, between batches.

A real WriterLoop on a real Writer over a real SQLite file: ordering with queued facts,
the result after the commit, errors back to the caller, cancellation, backpressure, the
stop, and that a submission's appends reach the hub and the log lines like any batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from events.facts import InstrumentDefined, MarkPriceObserved
from events.log import EventLog
from kernel.daemon.hub import Hub
from kernel.daemon.notify import Notifier
from kernel.daemon.writer import Writer
from kernel.daemon.writer_loop import STOP, WriterClosed, WriterLoop
from kernel.errors import LogError

T = 1_700_000_000_000_000_000
BTC = InstrumentDefined(venue_ts=T, symbol="BTCUSDT", instrument_kind="linear", base="BTC",
                        quote="USDT", settle="USDT", tick_size=Decimal("0.1"),
                        lot_size=Decimal("0.001"), min_notional=Decimal(5))


def mark(i: int) -> MarkPriceObserved:
    return MarkPriceObserved(venue_ts=T + i, symbol="BTCUSDT", price=Decimal(100 + i))


class Rig:
    def __init__(self, log: EventLog, writer: Writer, loop: WriterLoop,
                 queue: asyncio.Queue[object], hub: Hub) -> None:
        self.log, self.writer, self.loop, self.queue, self.hub = log, writer, loop, queue, hub
        self.task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self.loop.run(self.writer), name="writer")
        return self.task

    async def rows(self) -> list[int]:
        reader = await EventLog.open(self.log.path, readonly=True)
        try:
            return [r.seq async for r in reader.rows()]
        finally:
            await reader.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    queue: asyncio.Queue[object] = asyncio.Queue(8)
    hub = Hub(backlog=100)
    loop = WriterLoop(queue, hub, Notifier({}), batch_max=100)
    log = await EventLog.open(tmp_path / "events.db")
    writer = await Writer.open(log, clock=lambda: T + 10**9, publish=loop.published,
                               committed=loop.committed)
    await writer.ingest([BTC])
    hub.start(writer.snapshot, writer.state.book)
    r = Rig(log, writer, loop, queue, hub)
    try:
        yield r
    finally:
        if r.task is not None and not r.task.done():
            r.task.cancel()
            await asyncio.gather(r.task, return_exceptions=True)
        await log.close()


async def test_a_submission_runs_in_the_writer_task_after_what_was_queued_before_it(
    rig: Rig,
) -> None:
    for i in range(1, 4):
        rig.queue.put_nowait(mark(i))
    seen: dict[str, object] = {}

    async def fn(writer: Writer) -> int:
        seen["task"] = asyncio.current_task()
        seen["seq_before"] = writer.state.seq
        result = await writer.ingest([mark(10)])
        return result.last_seq

    submitted = asyncio.create_task(rig.loop.submit(fn))
    await asyncio.sleep(0)  # the submission is queued behind the three marks
    rig.queue.put_nowait(mark(20))  # and this fact behind the submission
    task = rig.start()
    assert await submitted == 5
    assert seen["task"] is task
    assert seen["seq_before"] == 4  # BTC and the three marks queued before it
    await asyncio.sleep(0.05)
    assert rig.writer.state.seq == 6  # the mark queued after it came after its append


async def test_the_result_comes_after_the_commit_and_reaches_hub_and_log_lines(
    rig: Rig,
) -> None:
    rig.start()

    async def fn(writer: Writer) -> int:
        return (await writer.ingest([mark(1)])).last_seq

    rig.hub.retain_events()
    with capture_logs() as logs:
        seq = await rig.loop.submit(fn)
    assert seq == 2 and await rig.rows() == [1, 2]  # readable by another connection
    assert rig.hub.seq == 2 and rig.hub.latest is not None and rig.hub.latest.seq == 2
    logged = rig.hub.event(2)
    assert logged is not None and logged.kind == "mark_price_observed"
    assert any(e.get("seq") == 2 and e["event"] == "event" for e in logs), logs


async def test_an_exception_in_the_function_is_the_callers_and_the_loop_carries_on(
    rig: Rig,
) -> None:
    task = rig.start()

    async def broken(writer: Writer) -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        await rig.loop.submit(broken)

    async def fine(writer: Writer) -> int:
        return (await writer.ingest([mark(1)])).last_seq

    assert await rig.loop.submit(fine) == 2
    assert not task.done()


async def test_a_log_error_goes_to_the_caller_and_stops_the_loop(rig: Rig) -> None:
    task = rig.start()

    async def failing(writer: Writer) -> None:
        raise LogError("disk on fire")

    with pytest.raises(LogError):
        await rig.loop.submit(failing)
    with pytest.raises(LogError):
        await task
    with pytest.raises(WriterClosed):
        await rig.loop.submit(failing)


async def test_a_submission_canceled_before_it_ran_never_runs(rig: Rig) -> None:
    ran: list[int] = []

    async def fn(writer: Writer) -> None:
        ran.append(1)

    pending = asyncio.create_task(rig.loop.submit(fn))
    await asyncio.sleep(0)
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    rig.start()
    await rig.loop.submit(fn)  # runs after the canceled one's place in the queue
    assert ran == [1]


async def test_a_full_queue_holds_the_submitter_back(rig: Rig) -> None:
    for i in range(1, 9):
        rig.queue.put_nowait(mark(i))  # queue_size 8: full

    async def fn(writer: Writer) -> int:
        return writer.state.seq

    pending = asyncio.create_task(rig.loop.submit(fn))
    await asyncio.sleep(0.05)
    assert not pending.done() and rig.queue.full()
    rig.start()
    assert await pending == 9


async def test_after_stop_submissions_are_refused_and_queued_ones_told(rig: Rig) -> None:
    async def fn(writer: Writer) -> int:
        return writer.state.seq

    rig.queue.put_nowait(STOP)
    late = asyncio.create_task(rig.loop.submit(fn))  # queued behind the stop mark
    await asyncio.sleep(0)
    await rig.start()
    with pytest.raises(WriterClosed):
        await late
    with pytest.raises(WriterClosed):
        await rig.loop.submit(fn)


async def test_a_cancel_that_lands_as_an_item_arrives_still_stops_the_loop(rig: Rig) -> None:
    # 3.11's wait_for returns the inner result when both happen in one loop turn, and
    # the task runs on: the daemon's shutdown (or a crash's cancel) would hang on it.
    task = rig.start()
    for _ in range(3):
        await asyncio.sleep(0)  # waiting on the queue
    rig.queue.put_nowait(mark(1))
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    assert done and task.cancelled()
    assert rig.writer.state.seq == 1  # nothing was folded after the cancel
