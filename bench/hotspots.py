"""cProfile of the hot paths, to name what limits the fold and the writer.

`python -m bench.hotspots [--events N] [--top K] [--writer]`: profiles decode + fold +
project over N pre-encoded workload events (as benchmark (a) does), and with
`--writer` also `Writer.ingest` of the same events in batches of 1,000 on a scratch
file (as benchmark (d) NORMAL does). Prints the top K functions by own time.
cProfile slows pure-Python code several-fold, so read the shares, not the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

from bench import fold, stores
from bench.run import OUT
from kernel import money
from kernel.reconcile import ReconcileConfig


def profile_fold(n: int, seed: int, top: int) -> None:
    blobs = fold.encoded(n, seed)
    cfg = ReconcileConfig()
    prof = cProfile.Profile()
    prof.runcall(fold.pipeline, blobs, cfg)
    print(f"## decode + fold + project, {n:,} events\n")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def profile_writer(n: int, seed: int, top: int) -> None:
    c = stores.corpus(n, seed)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT, prefix="scratch-") as tmp:
        prof = cProfile.Profile()
        coro = stores.writer_ingest(c.batches, Path(tmp) / "w.db", "NORMAL")
        prof.runcall(asyncio.run, coro)
    print(f"## Writer.ingest, NORMAL, {n:,} events (main thread only: SQLite runs in"
          " aiosqlite's thread and shows here as waiting)\n")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.hotspots", description=__doc__)
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--writer", action="store_true", help="also profile Writer.ingest")
    args = p.parse_args()
    money.install()
    profile_fold(args.events, args.seed, args.top)
    if args.writer:
        profile_writer(args.events, args.seed, args.top)


if __name__ == "__main__":
    main()
