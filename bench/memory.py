"""(f) Memory: does the writer's resident set stay flat as the log grows?

A fresh interpreter (so that nothing an earlier benchmark allocated counts) ingests
N events through the Writer in batches of 1,000, drawn lazily from the workload so
the input itself is never all in memory, and reads VmRSS after `mark` events and
after all N. Run as `python -m bench.memory --events N --mark M --db PATH`; it prints
one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import subprocess
import sys
from pathlib import Path

from bench import workload
from bench.measure import Measurement, Stopwatch, rss_bytes
from events.log import EventLog
from kernel import money
from kernel.daemon.writer import Writer

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
BATCH = 1000  # as in bench.stores, which this module does not import: it loads eventsourcing


async def ingest(n: int, mark: int, db: Path, seed: int) -> dict[str, float]:
    log = await EventLog.open(db, synchronous="NORMAL")
    watch = Stopwatch()
    rss_mark = 0
    try:
        writer = await Writer.open(log, clock=lambda: workload.T0)
        stream = workload.events(n, seed)
        done = 0
        with watch.running():
            while batch := list(itertools.islice(stream, BATCH)):
                done += (await writer.ingest(batch)).appended
                if done == mark:
                    rss_mark = rss_bytes()
        rss_end = rss_bytes()
    finally:
        await log.close()
    if done != n or not rss_mark:
        raise RuntimeError(f"ingested {done} of {n} events; mark {mark} must be a batch multiple")
    return {"events": n, "mark": mark, "rss_mark": rss_mark, "rss_end": rss_end,
            "wall": watch.wall, "cpu": watch.cpu}


def measure(n: int, mark: int, db: Path, seed: int) -> tuple[Measurement, float]:
    """Run the ingest in a fresh subprocess; its measurement, and the RSS growth (MB)
    from `mark` events to `n`."""
    cmd = [sys.executable, "-m", "bench.memory", "--events", str(n), "--mark", str(mark),
           "--db", str(db), "--seed", str(seed)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench.memory exited {done.returncode}: {done.stderr.strip()}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    growth = (r["rss_end"] - r["rss_mark"]) / MB
    note = (f"RSS {r['rss_mark'] / MB:.1f} MB after {mark:,}, {r['rss_end'] / MB:.1f} MB after"
            f" {n:,}: growth {growth:+.1f} MB")
    m = Measurement("f", "memory: Writer.ingest in a fresh process, NORMAL", n, r["wall"],
                    r["cpu"], note)
    return m, growth


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--mark", type=int, required=True)
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    money.install()
    print(json.dumps(asyncio.run(ingest(args.events, args.mark, args.db, args.seed))))


if __name__ == "__main__":
    main()
