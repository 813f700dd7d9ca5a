"""(d) alone, interleaved: raw sqlite3 against `Writer.ingest` batch by batch and
`Writer.ingest_all` (each batch folded while the one before it commits), NORMAL and FULL;
with `--cli`, (g) too: `exkernel ingest FILE` (NORMAL) of the same events as JSON lines.

`python -m bench.pipeline [--events N] [--rounds R] [--cli]`: the same corpus as
`bench.run`'s (d), each variant once per round in turn on a fresh file in bench/out,
best and median of the rounds, and each best as a ratio to raw sqlite3's best in this
run (and (g)'s to `ingest_all` NORMAL's).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench import replay, stores
from bench.measure import Measurement
from bench.run import OUT
from kernel import money

CLI = "exkernel ingest FILE, NORMAL"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--cli", action="store_true", help="also `exkernel ingest FILE` (g)")
    args = p.parse_args()
    money.install()
    c = stores.corpus(args.events, args.seed)

    def writer(sync: str, pipelined: bool) -> Callable[[Path], Measurement]:
        return lambda path: asyncio.run(stores.writer_ingest(
            c.batches, path, "FULL" if sync == "FULL" else "NORMAL", pipelined=pipelined))

    variants: dict[str, Callable[[Path], Measurement]] = {
        "raw sqlite3 executemany, NORMAL": lambda path: stores.raw_sqlite(c, path),
        "Writer.ingest, NORMAL": writer("NORMAL", False),
        "Writer.ingest_all, NORMAL": writer("NORMAL", True),
        "Writer.ingest, FULL": writer("FULL", False),
        "Writer.ingest_all, FULL": writer("FULL", True),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    if args.cli:
        lines = replay.jsonl(OUT, args.events, args.seed)
        variants[CLI] = lambda path: replay.ingest_cli(lines, path, args.events)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, bench in variants.items():
            with tempfile.TemporaryDirectory(dir=OUT, prefix="scratch-") as tmp:
                m = bench(Path(tmp) / "x.db")
                rates[name].append(m.events / m.wall)
    raw = max(rates["raw sqlite3 executemany, NORMAL"])
    print(f"{args.events:,} events, {args.rounds} rounds\n")
    print("| variant | best ev/s | median ev/s | best ÷ raw best |")
    print("|---|---:|---:|---:|")
    for name, rs in rates.items():
        print(f"| {name} | {max(rs):,.0f} | {statistics.median(rs):,.0f} | {max(rs) / raw:.2f}× |")
    if args.cli:
        g = max(rates[CLI]) / max(rates["Writer.ingest_all, NORMAL"])
        print(f"\n(g) `exkernel ingest FILE` ÷ `Writer.ingest_all` NORMAL, best ÷ best: {g:.2f}×")


if __name__ == "__main__":
    main()
