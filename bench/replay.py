"""(e) Replay: re-folding a whole log from genesis, in process and through the CLI.

The log is built once with the writer (NORMAL, batches of 1,000) and cached under the
output directory, keyed by N, the seed, and a digest of the code that decides its
bytes (the workload, `events/`, `kernel/`): after any change there, it is built anew
(and the stale one deleted) rather than replayed stale.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import subprocess
import sys
import time
from pathlib import Path

from bench import workload
from bench.measure import Measurement, Stopwatch
from bench.stores import BATCH
from events.codec import encode
from events.log import EventLog
from kernel.daemon.replay import load_state
from kernel.daemon.writer import Writer

ROOT = Path(__file__).resolve().parent.parent
_CLI_LINE = re.compile(r"replayed (\d+) events in ([\d.]+) s")


def code_digest() -> str:
    h = hashlib.sha256()
    files = [ROOT / "bench" / "workload.py"]
    files += sorted((ROOT / "events").glob("*.py")) + sorted((ROOT / "kernel").glob("*.py"))
    # The log's format and the checkpoints' encoding.
    files += sorted((ROOT / "events" / "log").glob("*.py"))
    files += [ROOT / "kernel" / "daemon" / "writer.py", ROOT / "kernel" / "daemon" / "replay.py"]
    for f in files:
        h.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:12]


async def cached_log(out: Path, n: int, seed: int) -> tuple[Path, Measurement | None]:
    """The path of an `n`-event log of `workload.events(n, seed)`, and the measurement
    of building it if it was not cached."""
    path = out / f"replay-n{n}-seed{seed}-{code_digest()}.db"
    if path.exists():
        return path, None
    # Logs of older code (and an interrupted build) are stale: only the newest is kept.
    for stale in out.glob(f"replay-n{n}-seed{seed}-*"):
        stale.unlink()
    building = path.with_name(path.name + ".building")
    log = await EventLog.open(building, synchronous="NORMAL")
    watch = Stopwatch()
    try:
        writer = await Writer.open(log, clock=lambda: workload.T0)
        stream = workload.events(n, seed)
        with watch.running():
            while batch := list(itertools.islice(stream, BATCH)):
                await writer.ingest(batch)
        last = log.last_seq
    finally:
        await log.close()  # the last connection's close checkpoints and removes the WAL
    if last != n:
        raise RuntimeError(f"built a log of {last} events, expected {n}")
    leftovers = list(out.glob(building.name + "-*"))
    if leftovers:
        raise RuntimeError(f"WAL files left after closing {building}: {leftovers}")
    building.rename(path)
    return path, Measurement("e", "build log: Writer.ingest, NORMAL", n, watch.wall, watch.cpu)


async def replay_in_process(path: Path, n: int) -> Measurement:
    log = await EventLog.open(path, readonly=True)
    watch = Stopwatch()
    try:
        with watch.running():
            state = await load_state(log, use_checkpoints=False)
    finally:
        await log.close()
    if state.seq != n:
        raise RuntimeError(f"replay reached seq {state.seq}, expected {n}")
    return Measurement("e", "replay: load_state(use_checkpoints=False)", n, watch.wall, watch.cpu)


def exkernel() -> list[str]:
    script = Path(sys.executable).with_name("exkernel")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kernel.cli.main"]


def run_cli(args: list[str], pattern: re.Pattern[str], n: int) -> tuple[str, float, float]:
    """Run `exkernel ARGS`; its summary line, the time it reports (`pattern`'s second
    group, its first being the event count, which must be `n`) and the process's wall."""
    cmd = [*exkernel(), *args]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    process_wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()}")
    line = done.stdout.strip()
    m = pattern.search(line)
    if m is None or int(m.group(1)) != n:
        raise RuntimeError(f"unexpected output from {' '.join(cmd)}: {line!r}")
    return line, float(m.group(2)), process_wall


def replay_cli(path: Path, n: int) -> Measurement:
    """`exkernel replay --db PATH` in a subprocess; the wall time is the one it reports
    (its process start-up and open are in the note)."""
    line, reported, wall = run_cli(["replay", "--db", str(path)], _CLI_LINE, n)
    note = f"`{line}` (process wall {wall:.2f} s)"
    return Measurement("e", "`exkernel replay --db PATH`", n, reported, None, note)


_INGEST_LINE = re.compile(r"appended (\d+) .* in ([\d.]+) s")


def jsonl(out: Path, n: int, seed: int) -> Path:
    """The workload's first `n` events as a JSON-lines file (docs/events.md), cached."""
    path = out / f"workload-n{n}-seed{seed}-{code_digest()}.jsonl"
    if not path.exists():
        for stale in out.glob(f"workload-n{n}-seed{seed}-*.jsonl"):
            stale.unlink()
        building = path.with_name(path.name + ".building")
        with building.open("wb") as f:
            for ev in workload.events(n, seed):
                f.write(encode(ev) + b"\n")
        building.rename(path)
    return path


def ingest_cli(file: Path, db: Path, n: int) -> Measurement:
    """`exkernel ingest --db NEW FILE` in a subprocess (NORMAL, as row (d) NORMAL): its
    own reported time, from the first line read to the last commit; the process's whole
    wall time is in the note."""
    _, reported, wall = run_cli(
        ["ingest", "--db", str(db), "--synchronous", "NORMAL", str(file)], _INGEST_LINE, n)
    return Measurement("g", "`exkernel ingest FILE`, NORMAL", n, reported, None,
                       f"process wall {wall:.2f} s")
