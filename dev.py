#!/usr/bin/env python3
"""Set up the project's virtualenv (if needed) and run something in it.

    python3 dev.py run      # install, then run the daemon on the embedded sim venue (Ctrl-C stops)
    python3 dev.py test     # install everything, then lint, type-check and run every test
    python3 dev.py demo     # install, then feed a sample account history through the kernel
    python3 dev.py bench    # install, then run the benchmarks (bench/README.md)

Needs only Python >= 3.11 and access to PyPI. The virtualenv lives in ./.venv and is
reused while pyproject.toml is unchanged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".installed"


def run(*cmd: str | Path, check: bool = True) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, check=check).returncode


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs under any python3
        sys.exit(f"exchange-kernel needs Python >= 3.11, this is {sys.version.split()[0]}")
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want and PY.exists():
        return
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PY, "-m", "pip", "install", "--quiet", "-e", ".[dev,bench]")
    STAMP.write_text(want)


def test(args: list[str]) -> int:
    run(BIN / "ruff", "check", ".")
    run(BIN / "mypy", "kernel", "events", "adapters")
    return run(PY, "-m", "pytest", *args, check=False)


def demo(args: list[str]) -> int:
    db = ROOT / "var" / "demo.db"
    db.parent.mkdir(exist_ok=True)
    db.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    exk = BIN / "exkernel"
    run(exk, "ingest", "--db", db, "docs/examples/account.jsonl")
    run(exk, "tail", "--db", db, "-n", "40")
    run(exk, "snapshot", "--db", db)
    return run(exk, "verify", "--db", db, check=False)


def run_daemon(args: list[str]) -> int:
    # The embedded sim's account lives only as long as the process: each run starts a
    # fresh one, with a fresh log beside it (a real venue's account outlives restarts).
    state = ROOT / "var" / "sim-run"
    shutil.rmtree(state, ignore_errors=True)
    print(f"state directory {state}; in another terminal:\n"
          f"  .venv/bin/exkernel tail -f --db {state}/events.db\n"
          f"  .venv/bin/exkernel snapshot --db {state}/events.db\n"
          f"  .venv/bin/exkernel status --state-dir {state}", flush=True)
    cmd = [str(BIN / "exkernel"), "run", "--config", "config/sim.toml", "--state-dir",
           str(state), *args]
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT)
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:  # the terminal sent SIGINT to the daemon too: let it drain
            continue


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"run", "test", "demo", "bench"}:
        print(__doc__)
        return 2
    setup()
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "test":
        return test(rest)
    if command == "demo":
        return demo(rest)
    if command == "run":
        return run_daemon(rest)
    return run(PY, "-m", "bench.run", *rest, check=False)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as e:
        print(f"dev.py: {' '.join(map(str, e.cmd))} failed with status {e.returncode}",
              file=sys.stderr)
        sys.exit(e.returncode)
