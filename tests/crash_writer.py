"""The victim of the crash-safety campaign (tests/test_crash_safety.py); not a test module.

    python tests/crash_writer.py DB SEED N BATCH

Ingests `bench.workload.events(N, SEED)` into the log at DB in batches of BATCH, with
`synchronous=FULL` and a small checkpoint interval so that checkpoints land mid-run.
After each `Writer.ingest` returns it prints, and flushes,

    COMMITTED <last_seq> <first dedup key of the batch> <last dedup key of the batch>

so the parent knows what it may hold the log to after a SIGKILL. Restarted on an
existing log, it re-ingests the whole stream from the start: the workload is
deterministic, and the writer's dedup skips every batch already logged.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

# Run as a script, the project root is not on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.workload import events
from events.codec import Event
from events.log import EventLog
from kernel import money
from kernel.daemon.writer import Writer

CHECKPOINT_EVERY = 500


def batched(items: Iterable[Event], size: int) -> Iterator[list[Event]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


async def run(db: Path, seed: int, n: int, batch_size: int) -> None:
    log = await EventLog.open(db, synchronous="FULL")
    try:
        # The workload stamps recv_ts itself, so this clock is never read for its events.
        writer = await Writer.open(log, clock=time.time_ns, checkpoint_every=CHECKPOINT_EVERY)
        for batch in batched(events(n, seed), batch_size):
            result = await writer.ingest(batch)
            print(f"COMMITTED {result.last_seq} {batch[0].dedup_key} {batch[-1].dedup_key}",
                  flush=True)
    finally:
        await log.close()


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: crash_writer.py DB SEED N BATCH", file=sys.stderr)
        return 2
    money.install()
    asyncio.run(run(Path(argv[0]), int(argv[1]), int(argv[2]), int(argv[3])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
