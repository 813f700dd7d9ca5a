"""Issue 10: restart to READY with a big log, and the writer's RSS as the log grows.

`python -m bench.restart [--events N] [--quick] [--runs R] [--out DIR] [--seed S]`
(default N = 10,000,000; `--quick` 200,000). Progress goes to stderr, the tables to
stdout; the exit status is 0 whether or not the targets are met.

1. **The log.** N events of `bench.workload.events(N, seed)` through the real
   `Writer` (`EventLog.open(path, synchronous="NORMAL")`, `Writer.open(log, clock=...)`,
   batches of 1,000 drawn lazily, the default `checkpoint_every`), in a fresh
   interpreter that samples its own VmRSS every 500,000 events (every N/10 below 1M),
   at 1M and at the end. The log is cached under `--out` with bench.replay's name and
   key (N, seed, a digest of bench/workload.py, events/*.py and kernel/*.py), so
   `bench.run` and this bench reuse each other's logs of the same size. A cached log
   has no build row and no RSS samples (`--rebuild` builds it again).
2. **Restart to READY.** The cached log is copied to `events.db` in a scratch state
   dir, and `python -m kernel.cli.main run --config CFG` (what the `exkernel` script
   runs) is started R times in a row on it, with a bound NOTIFY_SOCKET as systemd
   would have it (tests/campaign_support.py's approach): wall time from spawn to the
   READY=1 datagram; VmRSS and VmHWM from /proc/PID/status right after READY; then
   SIGTERM (drain, checkpoint, exit 0). Each run appends the few events its sim venue
   reports at connect (and the stop checkpoints them), so run 1 starts from the
   build's last checkpoint (at N: tail 0) and the later runs from the one the previous
   stop wrote. One more run follows after the bench appended 9,999 marks through a
   Writer that never checkpoints: a start with the longest tail the default
   `checkpoint_every` leaves. The daemon's JSON log lines split READY into phases:
   spawn -> `starting` (Python, imports, config, metrics server), -> `replayed` (open
   the log, `Writer.open`: the line's own `seconds`), -> `venue connected` (the API
   socket, the venue's connect), -> `ready` (the first resync).
3. **Floors, in process and out.** `load_state(log)` on a read-only `EventLog` of the
   cached log (newest checkpoint + tail; and the worst tail, `until=N-1`, one event
   short of a checkpoint), the checkpoint's read, hash and decode alone, and spawn ->
   exit of `python -c pass` and of `python -c "import <what exkernel run imports>"`,
   so the table says how much of READY is Python starting up.

The config is config/sim.toml's defaults (the embedded sim venue, BTCUSDT and ETHUSDT,
FULL) with the state dir set, the sim's scripted trader off (so each run appends only
the connect's facts), the metrics server on a free port and log level info.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench import workload
from bench.measure import Stopwatch, rss_bytes
from events.codec import decode_logged as decode
from events.control import InputQuarantined
from events.facts import MarkPriceObserved
from events.log import EventLog
from kernel import money
from kernel.daemon.writer import Writer

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "out"
MB = 1024 * 1024
BATCH = 1000
FULL_EVENTS = 10_000_000
QUICK_EVENTS = 200_000
SAMPLE_EVERY = 500_000
#: The longest tail a start replays with the default checkpoint_every (10,000).
WORST_TAIL = 9_999
#: What `exkernel run` imports before the daemon starts (kernel/cli/main.py's cmd_run).
RUN_IMPORTS = ("kernel.cli.main", "adapters.factory", "adapters.sim.venue",
               "kernel.daemon.metrics", "kernel.daemon.service")
#: The daemon's log lines that mark READY's phases, in order, and the stop's.
PHASES = ("starting", "replayed", "venue connected", "ready")
STOP_PHASES = ("stopping", "checkpointed")


def progress(msg: str) -> None:
    print(f"[restart] {msg}", file=sys.stderr, flush=True)


# -- 1. the log (built in a fresh interpreter) ---------------------------------------------


def sample_points(n: int) -> list[int]:
    """The event counts after which the builder reads its VmRSS: the first batch, every
    500,000 (every n/10, in whole batches, when n < 1M), 1M, and n."""
    every = SAMPLE_EVERY if n >= 1_000_000 else max(BATCH, n // 10 // BATCH * BATCH)
    points = {BATCH, n, *range(every, n + 1, every)}
    if n >= 1_000_000:
        points.add(1_000_000)
    return sorted(p for p in points if p <= n)


async def build(path: Path, n: int, seed: int) -> dict[str, Any]:
    """Ingest `n` workload events into a new log at `path`; wall and CPU time, and the
    (events, VmRSS) samples. Runs in `python -m bench.restart --build-log PATH`."""
    points = set(sample_points(n))
    samples: list[tuple[int, int]] = []
    log = await EventLog.open(path, synchronous="NORMAL")
    watch = Stopwatch()
    started = time.perf_counter()
    try:
        writer = await Writer.open(log, clock=lambda: workload.T0)
        stream = workload.events(n, seed)
        done = 0
        while True:
            with watch.running():
                batch = list(itertools.islice(stream, BATCH))
                if not batch:
                    break
                done += (await writer.ingest(batch)).appended
            if done in points:
                rss = rss_bytes()
                samples.append((done, rss))
                elapsed = time.perf_counter() - started
                eta = elapsed / done * (n - done)
                progress(f"build: {done:,}/{n:,} events, {done / elapsed:,.0f}/s,"
                         f" VmRSS {rss / MB:.1f} MB, {elapsed:,.0f} s elapsed, ETA {eta:,.0f} s")
        last = log.last_seq
    finally:
        await log.close()
    if last != n or done != n:
        raise RuntimeError(f"built a log of {last} events ({done} appended), expected {n}")
    return {"events": n, "wall": watch.wall, "cpu": watch.cpu, "samples": samples}


@dataclass(frozen=True)
class Built:
    events: int
    wall: float
    cpu: float
    samples: list[tuple[int, int]]


def cached_log(out: Path, n: int, seed: int, rebuild: bool) -> tuple[Path, Built | None]:
    """bench.replay's cached log of `n` events (its name and key), built here in a fresh
    interpreter if missing (or if `rebuild`); the build's figures if it was built."""
    # bench.replay imports eventsourcing (through bench.stores): only this parent
    # process loads it, never the builder whose RSS is measured.
    from bench.replay import code_digest

    path = out / f"replay-n{n}-seed{seed}-{code_digest()}.db"
    if path.exists() and not rebuild:
        return path, None
    for stale in out.glob(f"replay-n{n}-seed{seed}-*"):
        stale.unlink()
    building = path.with_name(path.name + ".building")
    cmd = [sys.executable, "-m", "bench.restart", "--build-log", str(building),
           "--events", str(n), "--seed", str(seed)]
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}")
    leftovers = list(out.glob(building.name + "-*"))
    if leftovers:
        raise RuntimeError(f"WAL files left after closing {building}: {leftovers}")
    building.rename(path)
    for lock in out.glob(building.name + ".lock"):
        lock.unlink()  # the builder's writer lock file, released
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return path, Built(r["events"], r["wall"], r["cpu"], [tuple(s) for s in r["samples"]])


# -- 2. the daemon, spawn to READY ---------------------------------------------------------


CONFIG = """\
# bench.restart: config/sim.toml's defaults, but for these keys.
[kernel]
state_dir = "{state_dir}"
log_level = "info"

[metrics]
port = 0

[venue.sim.trader]
enabled = false
"""


@dataclass
class DaemonRun:
    run: str
    #: The log before this run: its last seq and newest checkpoint.
    seq_before: int
    checkpoint_before: int
    seq_after: int = 0
    ready: float = 0.0
    rss: int = 0
    hwm: int = 0
    stop: float = 0.0
    exit_code: int | None = None
    #: Seconds from spawn to each of PHASES' log lines, and Writer.open's own figure;
    #: seconds from SIGTERM to each of STOP_PHASES'.
    phases: dict[str, float] = field(default_factory=dict)
    stop_phases: dict[str, float] = field(default_factory=dict)
    replay_seconds: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def tail(self) -> int:
        return self.seq_before - self.checkpoint_before

    @property
    def appended(self) -> int:
        return self.seq_after - self.seq_before


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (bytes) of a process, from /proc/PID/status."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                value, unit = rest.split()
                if unit != "kB":
                    raise RuntimeError(f"{name} in unexpected unit {unit!r}")
                found[name] = int(value) * 1024
    return found


async def log_position(db: Path) -> tuple[int, int]:
    """(last seq, newest checkpoint's seq) of the log at `db`, read-only."""
    log = await EventLog.open(db, readonly=True)
    try:
        return log.last_seq, await log.last_checkpoint_seq()
    finally:
        await log.close()


def wait_ready(sock: socket.socket, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until READY=1 arrives on `sock`; raises if the daemon exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(0.05)
        try:
            if b"READY=1" in sock.recv(4096).split(b"\n"):
                return
        except TimeoutError:
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon exited {proc.returncode} before READY") from None
    raise RuntimeError(f"the daemon sent no READY=1 within {timeout:.0f} s")


def read_phases(lines: Sequence[str], spawned_at: float, stopped_at: float, r: DaemonRun
                ) -> None:
    """Fill `r.phases` (seconds from spawn to each phase's first log line),
    `r.stop_phases` (from SIGTERM) and `r.replay_seconds` from the daemon's JSON log
    (wall-clock timestamps); note its warnings and errors."""
    for line in lines:
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        event = rec.get("event")
        if event in PHASES and event not in r.phases:
            ts = datetime.datetime.fromisoformat(rec["timestamp"]).timestamp()
            r.phases[event] = ts - spawned_at
            if event == "replayed":
                r.replay_seconds = float(rec["seconds"])
        if event in STOP_PHASES and event not in r.stop_phases:
            ts = datetime.datetime.fromisoformat(rec["timestamp"]).timestamp()
            r.stop_phases[event] = ts - stopped_at
        if rec.get("level") in ("warning", "error", "critical"):
            detail = {k: v for k, v in rec.items() if k not in ("timestamp", "level", "logger")}
            r.notes.append(json.dumps(detail)[:300])


def run_daemon(cfg: Path, db: Path, scratch: Path, i: int, label: str, timeout: float
               ) -> DaemonRun:
    seq, cp = asyncio.run(log_position(db))
    r = DaemonRun(label, seq, cp)
    notify_path = scratch / f"notify-{i}.sock"
    out_path = scratch / f"daemon-{i}.log"
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path)}
    env.pop("WATCHDOG_USEC", None)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, open(out_path, "wb") as out:
        sock.bind(str(notify_path))
        spawned_at = stopped_at = time.time()
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "kernel.cli.main", "run", "--config",
                                 str(cfg)], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            wait_ready(sock, proc, timeout)
            r.ready = time.perf_counter() - started
            status = proc_status(proc.pid)
            r.rss, r.hwm = status["VmRSS"], status["VmHWM"]
            stopped_at, stopping = time.time(), time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            r.exit_code = proc.wait(timeout=120)
            r.stop = time.perf_counter() - stopping
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    lines = out_path.read_text(errors="replace").splitlines()
    if r.exit_code != 0:
        tail = "\n".join(lines[-20:])
        raise RuntimeError(f"the daemon exited {r.exit_code}; its last lines:\n{tail}")
    read_phases(lines, spawned_at, stopped_at, r)
    r.seq_after = asyncio.run(log_position(db))[0]
    return r


async def appended_kinds(db: Path, since: int) -> dict[str, int]:
    """How many events of each kind the daemon runs appended after seq `since`; a
    quarantine counted under its source (`input_quarantined:dedup`, ...)."""
    log = await EventLog.open(db, readonly=True)
    counts: Counter[str] = Counter()
    try:
        async for row in log.rows(since=since):
            event = decode(row.payload)
            source = f":{event.source}" if isinstance(event, InputQuarantined) else ""
            counts[row.kind + source] += 1
    finally:
        await log.close()
    return dict(sorted(counts.items()))


def restarts(log_path: Path, scratch: Path, runs: int, n: int
             ) -> tuple[list[DaemonRun], dict[str, int]]:
    state = scratch / "state"
    state.mkdir()
    db = state / "events.db"
    progress(f"copying the log ({log_path.stat().st_size / MB:,.0f} MB) to {db}")
    shutil.copyfile(log_path, db)
    with open(db, "rb+") as f:
        # Or the first daemon's close (its WAL checkpoint's fsync) writes the copy back.
        os.fsync(f.fileno())
    cfg = scratch / "kernel.toml"
    cfg.write_text(CONFIG.format(state_dir=state))
    timeout = max(60.0, n / 20_000)  # ample for a full replay from genesis at 20k/s

    def run(i: int, label: str) -> DaemonRun:
        progress(f"daemon run {i}/{runs + 1}: spawn -> READY=1 -> SIGTERM")
        r = run_daemon(cfg, db, scratch, i, label, timeout)
        progress(f"  READY after {r.ready:.3f} s, VmRSS {r.rss / MB:.1f} MB,"
                 f" stopped in {r.stop:.3f} s, {r.appended} events appended")
        return r

    done = [run(i, str(i)) for i in range(1, runs + 1)]
    kinds = asyncio.run(appended_kinds(db, n))
    progress(f"appending {WORST_TAIL:,} marks without a checkpoint")
    asyncio.run(append_marks(db, WORST_TAIL))
    done.append(run(runs + 1, f"{runs + 1}: worst tail"))
    return done, kinds


async def append_marks(db: Path, count: int) -> None:
    """Append `count` mark prices of the workload's symbols to the log at `db` through a
    Writer that never checkpoints: the next start replays them all, the longest tail
    the default `checkpoint_every` (10,000) leaves when the last stop checkpointed."""
    log = await EventLog.open(db, synchronous="NORMAL")
    try:
        writer = await Writer.open(log, clock=lambda: 0, checkpoint_every=2**62)
        start = writer.state.now + workload.STEP
        base = [Decimal(p) for p in ("30000", "2000", "100", "0.5")]
        marks = (MarkPriceObserved(venue_ts=start + i * workload.STEP,
                                   recv_ts=start + i * workload.STEP,
                                   symbol=workload.SYMBOLS[i % 4],
                                   price=base[i % 4] + Decimal(i % 50) / 10)
                 for i in range(count))
        while batch := list(itertools.islice(marks, BATCH)):
            await writer.ingest(batch)
    finally:
        await log.close()


# -- 3. floors -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    label: str
    walls: list[float]
    cpus: list[float | None]
    note: str = ""

    @property
    def best(self) -> float:
        return min(self.walls)

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def best_cpu(self) -> float | None:
        return self.cpus[self.walls.index(self.best)]


def spawn_to_exit(label: str, code: str, runs: int) -> Timed:
    cmd = [sys.executable, "-c", code]
    walls: list[float] = []
    cpus: list[float | None] = []
    for _ in range(runs):
        before = os.times()
        started = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True)
        walls.append(time.perf_counter() - started)
        after = os.times()
        cpus.append(after.children_user - before.children_user
                    + after.children_system - before.children_system)
    return Timed(label, walls, cpus, f"`python -c {code!r}`")


async def in_process(path: Path, runs: int) -> list[Timed]:
    """EventLog.open (read-only), the newest checkpoint's read + hash + decode, and
    load_state with checkpoints at the log's end and one event before it."""
    from kernel.daemon.replay import checkpoint_fault, load_state
    from kernel.state import AccountState

    opens, cps, ends, worst = Laps(), Laps(), Laps(), Laps()
    size = tail_end = tail_worst = 0
    for _ in range(runs):
        with opens.lap():
            log = await EventLog.open(path, readonly=True)
        try:
            last = log.last_seq
            with cps.lap():
                cp = await log.latest_checkpoint()
                state = None if cp is None else checkpoint_fault(cp)
            if cp is None or not isinstance(state, AccountState):
                raise RuntimeError(f"no sound checkpoint in {path}: {state}")
            size = len(cp.state)
            tail_end = last - cp.seq
            before = await log.latest_checkpoint(last - 1)
            tail_worst = last - 1 - (0 if before is None else before.seq)
            with ends.lap():
                end = await load_state(log)
            with worst.lap():
                one_short = await load_state(log, last - 1)
        finally:
            await log.close()
        if end.seq != last or one_short.seq != last - 1:
            raise RuntimeError(f"load_state reached {end.seq} / {one_short.seq}, not {last}")
    return [
        opens.timed("EventLog.open(readonly=True)"),
        cps.timed("newest checkpoint: read, sha256, decode",
                  f"{size / 1024:,.1f} KiB of msgpack"),
        ends.timed("load_state(log): checkpoint + tail", f"tail {tail_end:,} events"),
        worst.timed("load_state(log, N-1): checkpoint + worst tail",
                    f"tail {tail_worst:,} events"),
    ]


@dataclass
class Laps:
    """Wall and CPU time of each run of a block."""

    walls: list[float] = field(default_factory=list)
    cpus: list[float | None] = field(default_factory=list)

    @contextmanager
    def lap(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.walls.append(time.perf_counter() - wall)
            self.cpus.append(time.process_time() - cpu)

    def timed(self, label: str, note: str = "") -> Timed:
        return Timed(label, self.walls, self.cpus, note)


# -- tables --------------------------------------------------------------------------------


def s(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def header(args: argparse.Namespace, n: int, log_path: Path) -> str:
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    cmd = " ".join(["python -m bench.restart", *sys.argv[1:]])
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join([
        f"- command: `{cmd}`",
        f"- date: {now}",
        f"- machine: {os.cpu_count()} CPUs, {platform.machine()}, {platform.platform()};"
        f" load average at the end {load}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        f"- log: {n:,} events of bench.workload (seed {args.seed}), {log_path.name},"
        f" {log_path.stat().st_size / MB:,.0f} MB; checkpoint every 10,000 (the default);"
        f" runs {args.runs}; page cache warm (the log was just copied or read)",
    ])


def build_table(b: Built | None) -> str:
    if b is None:
        return "The log was cached: no build this run (`--rebuild` builds it again)."
    lines = [
        "| build | events | wall s | CPU s | events/s (wall) | events/s (CPU) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| Writer.ingest, NORMAL, batches of 1,000, fresh process | {b.events:,}"
        f" | {b.wall:,.1f} | {b.cpu:,.1f} | {b.events / b.wall:,.0f} | {b.events / b.cpu:,.0f} |",
        "",
        "| events ingested | builder VmRSS MB |",
        "|---:|---:|",
    ]
    lines += [f"| {e:,} | {rss / MB:.1f} |" for e, rss in b.samples]
    return "\n".join(lines)


def floors_table(rows: Sequence[Timed]) -> str:
    lines = ["| measured | runs | best s | median s | CPU s (best) | note |",
             "|---|---:|---:|---:|---:|---|"]
    for t in rows:
        lines.append(f"| {t.label} | {len(t.walls)} | {s(t.best)} | {s(t.median)}"
                     f" | {s(t.best_cpu)} | {t.note} |")
    return "\n".join(lines)


def daemon_table(runs: Sequence[DaemonRun]) -> str:
    cols = ["run", "tail at start", "spawn → READY=1 s", "→ starting", "→ replayed",
            "Writer.open s", "→ venue connected", "→ ready", "VmRSS MB", "VmHWM MB",
            "SIGTERM → checkpointed", "SIGTERM → exit s", "appended"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---:|" * len(cols)]
    for r in runs:
        ph = [s(r.phases.get(p)) for p in PHASES]
        lines.append(
            f"| {r.run} | {r.tail:,} | {r.ready:.3f} | {ph[0]} | {ph[1]} | {s(r.replay_seconds)}"
            f" | {ph[2]} | {ph[3]} | {r.rss / MB:.1f} | {r.hwm / MB:.1f}"
            f" | {s(r.stop_phases.get('checkpointed'))} | {r.stop:.3f}"
            f" | {r.appended} |")
    return "\n".join(lines)


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def targets_table(runs: Sequence[DaemonRun], b: Built | None) -> str:
    """The first runs start from a checkpoint at the log's end; the last one from a
    checkpoint 9,999 events back."""
    *plain, worst = runs
    best, slowest = min(r.ready for r in plain), max(r.ready for r in plain)
    rss = max(r.rss for r in runs)
    rows: list[tuple[str, str, str, str]] = [
        (f"restart to READY=1, tail {plain[0].tail:,}, best of {len(plain)}", f"{best:.3f} s",
         "≤ 1 s", met(best <= 1)),
        (f"restart to READY=1, tail {plain[0].tail:,}, worst of {len(plain)}",
         f"{slowest:.3f} s", "≤ 1 s", met(slowest <= 1)),
        (f"restart to READY=1, tail {worst.tail:,}", f"{worst.ready:.3f} s", "≤ 1 s",
         met(worst.ready <= 1)),
        ("daemon VmRSS right after READY, largest", f"{rss / MB:.1f} MB", "≤ 150 MB",
         met(rss <= 150 * MB)),
    ]
    if b is not None:
        end = b.samples[-1][1]
        rows.append((f"builder VmRSS after {b.events:,} events", f"{end / MB:.1f} MB",
                     "≤ 150 MB", met(end <= 150 * MB)))
        mark = next((x for x in b.samples if x[0] == 1_000_000), b.samples[0])
        top = max(x[1] for x in b.samples[b.samples.index(mark):])
        rows.append((f"builder VmRSS from {mark[0]:,} events to the end: growth (max)",
                     f"{(end - mark[1]) / MB:+.1f} MB ({(top - mark[1]) / MB:+.1f} MB)",
                     "flat", ""))
    lines = ["| target | measured | goal | met |", "|---|---:|---:|---|"]
    lines += [f"| {a} | {m} | {g} | {v} |" for a, m, g, v in rows]
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.restart", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=None,
                   help=f"log size (default {FULL_EVENTS:,}; --quick {QUICK_EVENTS:,})")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_EVENTS:,} events")
    p.add_argument("--runs", type=int, default=3, help="daemon restarts and floor runs (3)")
    p.add_argument("--out", type=Path, default=OUT,
                   help="the log cache and the scratch state dir (default bench/out)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--rebuild", action="store_true", help="build the log even if cached")
    p.add_argument("--build-log", type=Path, help=argparse.SUPPRESS)  # the builder child
    args = p.parse_args()
    n = args.events or (QUICK_EVENTS if args.quick else FULL_EVENTS)
    if n % BATCH or n < 2 * BATCH:
        p.error(f"--events must be a multiple of {BATCH:,}, at least {2 * BATCH:,}")
    if args.runs < 1:
        p.error("--runs must be at least 1")
    money.install()
    if args.build_log is not None:
        print(json.dumps(asyncio.run(build(args.build_log, n, args.seed))))
        return

    args.out.mkdir(parents=True, exist_ok=True)
    progress(f"the {n:,}-event log (built once in a fresh process, then cached in {args.out})")
    build_started = time.perf_counter()
    log_path, built = cached_log(args.out, n, args.seed, args.rebuild)
    if built is not None:
        progress(f"built in {time.perf_counter() - build_started:,.0f} s")
    progress("in process: open, checkpoint, load_state")
    floors = asyncio.run(in_process(log_path, args.runs))
    progress("python start-up floors")
    floors.insert(0, spawn_to_exit("spawn → exit: interpreter", "pass", args.runs))
    floors.insert(1, spawn_to_exit("spawn → exit: interpreter + `exkernel run`'s imports",
                                   "import " + ", ".join(RUN_IMPORTS), args.runs))
    with tempfile.TemporaryDirectory(dir=args.out, prefix="restart-") as tmp:
        runs, kinds = restarts(log_path, Path(tmp), args.runs, n)

    print(header(args, n, log_path))
    print()
    print(build_table(built))
    print()
    print(floors_table(floors))
    print()
    print(daemon_table(runs))
    print()
    print(targets_table(runs, built))
    print()
    print(f"Events runs 1-{len(runs) - 1} appended, by kind: "
          + ", ".join(f"{k} {v}" for k, v in kinds.items()))
    notes = [f"run {r.run}: {note}" for r in runs for note in r.notes]
    if notes:
        print()
        print("Warnings and errors the daemon logged:")
        print()
        for note in dict.fromkeys(notes):
            print(f"- {note}")


if __name__ == "__main__":
    main()
