"""Run every benchmark once and print a markdown table: `python -m bench.run [--quick]`.

Progress goes to stderr, results to stdout. The machine is shared, so each store is
measured in interleaved rounds (b, c, d, b, c, d, ...) and the fastest round of each
is kept; targets on store speed are ratios between runs of this same process. The
exit status is 0 whether or not the targets are met; a benchmark that fails raises.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import fold, memory, replay, stores
from bench.measure import Measurement, best
from kernel import money
from kernel.reconcile import ReconcileConfig

OUT = Path(__file__).resolve().parent / "out"


@dataclass(frozen=True)
class Sizes:
    fold: int
    store: int
    big: int
    mark: int
    rounds: int


FULL = Sizes(fold=200_000, store=200_000, big=1_000_000, mark=100_000, rounds=3)
QUICK = Sizes(fold=20_000, store=20_000, big=50_000, mark=5_000, rounds=1)


@dataclass(frozen=True)
class Target:
    name: str
    measured: float
    goal: float
    unit: str
    at_most: bool = False

    @property
    def met(self) -> bool:
        return self.measured <= self.goal if self.at_most else self.measured >= self.goal


def progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def fold_benchmarks(s: Sizes, seed: int) -> list[Measurement]:
    blobs = fold.encoded(s.fold, seed)
    cfg = ReconcileConfig()
    runs: list[list[Measurement]] = []
    for r in range(s.rounds):
        progress(f"(a) fold, round {r + 1}/{s.rounds}")
        runs.append([fold.pipeline(blobs, cfg), fold.pipeline(blobs, cfg, fold.BATCH),
                     *fold.stages(blobs, cfg)])
    return [best(column) for column in zip(*runs, strict=True)]


def store_benchmarks(s: Sizes, seed: int, scratch: Path, out: Path) -> list[Measurement]:
    c = stores.corpus(s.store, seed)
    file = replay.jsonl(out, s.store, seed)
    variants: list[tuple[str, Callable[[Path], Measurement]]] = [
        ("b raw sqlite3", lambda p: stores.raw_sqlite(c, p)),
        ("c eventsourcing default", lambda p: stores.eventsourcing_recorder(c, p, "default")),
        ("c eventsourcing NORMAL", lambda p: stores.eventsourcing_recorder(c, p, "NORMAL")),
        ("c eventsourcing Application", lambda p: stores.eventsourcing_application(c, p)),
        ("d writer NORMAL", lambda p: asyncio.run(stores.writer_ingest(c.batches, p, "NORMAL"))),
        ("d writer FULL", lambda p: asyncio.run(stores.writer_ingest(c.batches, p, "FULL"))),
        ("d writer ingest_all NORMAL", lambda p: asyncio.run(
            stores.writer_ingest(c.batches, p, "NORMAL", pipelined=True))),
        ("d writer ingest_all FULL", lambda p: asyncio.run(
            stores.writer_ingest(c.batches, p, "FULL", pipelined=True))),

        ("g exkernel ingest", lambda p: replay.ingest_cli(file, p, s.store)),
    ]
    runs: list[list[Measurement]] = [[] for _ in variants]
    for r in range(s.rounds):
        for i, (name, bench) in enumerate(variants):
            progress(f"({name[0]}) {name[2:]}, round {r + 1}/{s.rounds}")
            db = scratch / f"{name.replace(' ', '-')}-{r}.db"
            runs[i].append(bench(db))
            for f in scratch.glob(db.name + "*"):
                f.unlink()
    return [best(column) for column in runs]


async def replay_benchmarks(s: Sizes, seed: int, out: Path) -> list[Measurement]:
    progress(f"(e) the {s.big:,}-event log (built once, then cached in {out})")
    path, built = await replay.cached_log(out, s.big, seed)
    progress("(e) replay in process")
    in_process = await replay.replay_in_process(path, s.big)
    progress("(e) exkernel replay")
    cli = replay.replay_cli(path, s.big)
    origin = f"log {path.name}"
    in_process = Measurement(in_process.id, in_process.label, in_process.events,
                             in_process.wall, in_process.cpu, origin)
    return [m for m in (built, in_process, cli) if m is not None]


def fmt_rate(x: float | None) -> str:
    return "" if x is None else f"{x:,.0f}"


def fmt_time(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def results_table(ms: list[Measurement]) -> str:
    lines = [
        "| id | benchmark | events | wall s | CPU s | events/s (wall) | events/s (CPU) | note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for m in ms:
        lines.append(
            f"| {m.id} | {m.label} | {m.events:,} | {fmt_time(m.wall)} | {fmt_time(m.cpu)}"
            f" | {fmt_rate(m.rate)} | {fmt_rate(m.cpu_rate)} | {m.note} |"
        )
    return "\n".join(lines)


def targets_table(ts: list[Target]) -> str:
    lines = ["| target | measured | goal | met |", "|---|---:|---:|---|"]
    for t in ts:
        goal = f"{'≤' if t.at_most else '≥'} {t.goal:,.2f}{t.unit}"
        value = f"{t.measured:,.2f}{t.unit}"
        lines.append(f"| {t.name} | {value} | {goal} | {'met' if t.met else 'NOT met'} |")
    return "\n".join(lines)


def targets(ms: dict[str, Measurement], growth: float) -> list[Target]:
    a, e = ms["a"], ms["e"]
    b, d_normal, d_full = ms["b"], ms["d NORMAL"], ms["d FULL"]
    d_all, d_all_full = ms["d all"], ms["d all FULL"]
    c_default, c_normal, c_app = ms["c default"], ms["c NORMAL"], ms["c app"]
    decode, published, g = ms["decode"], ms["a published"], ms["g"]
    assert a.cpu_rate is not None and decode.cpu_rate is not None
    assert published.cpu_rate is not None
    return [
        # Issue 10's, all ratios between rows of this run.
        Target("(a) decode+fold+project per published snapshot ÷ decode alone (CPU)",
               published.cpu_rate / decode.cpu_rate, 0.5, "×"),
        Target("(d) `ingest_all` NORMAL ÷ (b) raw sqlite3 NORMAL, 1,000 per transaction",
               d_all.rate / b.rate, 0.5, "×"),
        Target("(d) `ingest` batch by batch, NORMAL ÷ (b)", d_normal.rate / b.rate, 0.5, "×"),
        Target("(d) `ingest_all` FULL ÷ (b) raw sqlite3 NORMAL", d_all_full.rate / b.rate,
               0.5, "×"),
        Target("(g) `exkernel ingest FILE` ÷ (d) `ingest_all` NORMAL (the path it takes)",
               g.rate / d_all.rate, 0.8, "×"),
        Target("(e) full replay ÷ decode alone (wall)", e.rate / decode.rate, 0.6, "×"),
        # The core issue's, kept for comparison across sessions.
        Target("(a) decode+fold+project, events/s of CPU time", a.cpu_rate, 150_000, ""),
        Target("(a) decode+fold+project, events/s of wall time", a.rate, 150_000, ""),
        Target("(d) NORMAL ÷ (c) recorder, NORMAL", d_normal.rate / c_normal.rate, 6, "×"),
        Target("(d) FULL ÷ (c) recorder, library default",
               d_full.rate / c_default.rate, 6, "×"),
        Target("(d) FULL ÷ (c) Application + Aggregate, library default",
               d_full.rate / c_app.rate, 6, "×"),
        Target("(d) NORMAL ÷ (c) Application + Aggregate, library default",
               d_normal.rate / c_app.rate, 6, "×"),
        Target("(e) full replay, events/s of wall time", e.rate, 100_000, ""),
        Target("(f) RSS growth from the mark to the end", growth, 50, " MB", at_most=True),
    ]


def header(args: argparse.Namespace, s: Sizes) -> str:
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return "\n".join([
        f"- command: `python -m bench.run{' --quick' if args.quick else ''}`",
        f"- date: {now}",
        f"- machine: {os.cpu_count()} CPUs, {platform.machine()}, {platform.platform()}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        f"- sizes: fold {s.fold:,}; stores {s.store:,}; replay and memory {s.big:,}"
        f" (memory mark at {s.mark:,}); rounds {s.rounds}; seed {args.seed}",
    ])


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes, one round (seconds)")
    p.add_argument("--out", type=Path, default=OUT,
                   help="the cache of replay logs and the scratch databases (default bench/out)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    money.install()
    s = QUICK if args.quick else FULL
    args.out.mkdir(parents=True, exist_ok=True)

    results: list[Measurement] = fold_benchmarks(s, args.seed)
    with tempfile.TemporaryDirectory(dir=args.out, prefix="scratch-") as tmp:
        scratch = Path(tmp)
        store_rows = store_benchmarks(s, args.seed, scratch, args.out)
        b, c_default, c_normal, c_app, d_normal, d_full, d_all, d_all_full, g = store_rows
        results += store_rows
        results += asyncio.run(replay_benchmarks(s, args.seed, args.out))
        progress(f"(f) memory: {s.big:,} events in a fresh process")
        mem, growth = memory.measure(s.big, s.mark, scratch / "memory.db", args.seed)
        results.append(mem)

    by_name = {
        "a": results[0], "a published": results[1], "decode": results[2], "g": g, "b": b,
        "c default": c_default, "c NORMAL": c_normal, "c app": c_app,
        "d NORMAL": d_normal, "d FULL": d_full, "d all": d_all, "d all FULL": d_all_full,
        "e": next(m for m in results if m.label.startswith("replay:")),
    }
    print(header(args, s))
    print()
    print(results_table(results))
    print()
    print(targets_table(targets(by_name, growth)))


if __name__ == "__main__":
    main()
