"""Property: redelivering any events any number of times, anywhere after their first
delivery and across any batch boundaries, gives the very log and state that delivering
each once does, batch by batch (`Writer.ingest`) or pipelined (`Writer.ingest_all`, where
a redelivery makes a batch screened without a lookup be refused and screened again, and
the batch folded after it be screened again too). Through the real writer and a real
SQLite file."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from pathlib import Path

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.workload import events
from events.codec import Event
from events.log import EventLog
from kernel.daemon.replay import encode_state
from kernel.daemon.writer import Writer

STREAM = list(events(120, seed=3))


def clock() -> int:
    return 1_800_000_000_000_000_000


async def ingest(db: Path, batches: list[list[Event]],
                 pipelined: bool = False) -> tuple[bytes, bytes, int]:
    log = await EventLog.open(db)
    try:
        writer = await Writer.open(log, clock=clock, checkpoint_every=25)
        if pipelined:
            await writer.ingest_all(batches)
        else:
            for batch in batches:
                await writer.ingest(batch)
        return encode_state(writer.state), log.last_hash, log.last_seq
    finally:
        await log.close()


def split(items: list[Event], cuts: list[int]) -> list[list[Event]]:
    bounds = sorted({c % (len(items) + 1) for c in cuts} | {0, len(items)})
    return [items[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@settings(max_examples=25, deadline=None)
@given(
    copies=st.lists(st.tuples(st.integers(0, len(STREAM) - 1), st.integers(0, 400)),
                    max_size=60),
    cuts=st.lists(st.integers(0, 1000), max_size=8),
    restamp=st.booleans(),
    pipelined=st.booleans(),
)
def test_redeliveries_anywhere_equal_delivering_each_once(
    copies: list[tuple[int, int]], cuts: list[int], restamp: bool, pipelined: bool
) -> None:
    delivered = list(STREAM)
    for index, offset in copies:
        original = STREAM[index]
        first = delivered.index(original)  # a copy always comes after the first delivery
        at = first + 1 + offset % (len(delivered) - first)
        copy = msgspec.structs.replace(original, recv_ts=original.recv_ts + 7) if restamp \
            else original
        delivered.insert(at, copy)
    with tempfile.TemporaryDirectory() as d:
        once = asyncio.run(ingest(Path(d) / "once.db", [STREAM]))
        many = asyncio.run(ingest(Path(d) / "many.db", split(delivered, cuts), pipelined))
    assert many == once
