#!/usr/bin/env python3
"""Set up the project's virtualenv (if needed) and run something in it.

    python3 dev.py run      # install, then run the daemon on the embedded sim venue and the
                            # demo strategy trading through it (Ctrl-C stops both;
                            # --daemon-only: the daemon alone, with the sim's scripted trader)
    python3 dev.py test     # install everything, then lint, type-check and run every test
    python3 dev.py demo     # install, then feed a sample account history through the kernel
    python3 dev.py bench    # install, then run the benchmarks (bench/README.md)
    python3 dev.py test --latest   # the same checks on the newest release of every dependency

Needs only Python >= 3.11 and access to PyPI. The virtualenv lives in ./.venv and holds
exactly what requirements.lock pins (hash-checked); it is reinstalled when the lock or
pyproject.toml changes. `--latest` uses a virtualenv of its own, ./.venv-latest, and no
lock. Arguments after `test` go to pytest. docs/development.md says when to use which and
how to refresh the lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
LOCK = ROOT / "requirements.lock"
VENV = ROOT / ".venv"
LATEST_VENV = ROOT / ".venv-latest"


def bin_dir(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts" if os.name == "nt" else "bin")


BIN = bin_dir(VENV)
PY = BIN / "python"
STAMP = VENV / ".installed"


def run(*cmd: str | Path, check: bool = True, env: dict[str, str] | None = None) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, check=check, env=env).returncode


def fingerprint(root: Path = ROOT) -> str:
    """What the installed .venv was made from: a change to either file means reinstall."""
    h = hashlib.sha256()
    for name in ("requirements.lock", "pyproject.toml"):
        h.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return h.hexdigest()


def check_python() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs under any python3
        sys.exit(f"exchange-kernel needs Python >= 3.11, this is {sys.version.split()[0]}")


def setup() -> None:
    """Make .venv hold exactly the lock's versions, then the project itself (editable).

    The lock pins every distribution, the build backend included, with hashes, so pip
    installs what was tested or refuses; the project goes in without dependencies and
    without build isolation, so nothing unpinned is fetched for it either.
    """
    check_python()
    want = fingerprint()
    if STAMP.exists() and STAMP.read_text() == want and PY.exists():
        return
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    # An existing .venv is reused: pip moves each locked distribution to its pinned version.
    run(PY, "-m", "pip", "install", "--quiet", "--require-hashes", "-r", LOCK)
    run(PY, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", ".")
    STAMP.write_text(want)


def setup_latest() -> Path:
    """Bring .venv-latest to the newest release of every dependency; return its bin dir.

    No lock and no stamp: every call asks PyPI again, since finding out what the newest
    releases do is the point. .venv is left alone.
    """
    check_python()
    bin_ = bin_dir(LATEST_VENV)
    if not (bin_ / "python").exists():
        venv.EnvBuilder(with_pip=True).create(LATEST_VENV)
    py = bin_ / "python"
    run(py, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(py, "-m", "pip", "install", "--quiet", "--upgrade", "--upgrade-strategy", "eager",
        "-e", ".[dev,bench]")
    run(py, "-m", "pip", "freeze", "--exclude-editable")  # what this run tested, for the record
    return bin_


def test(args: list[str], bin_: Path = BIN, keep_going: bool = False) -> int:
    """Lint, type-check, then pytest with `args`.

    keep_going (the --latest run): a new ruff or mypy finding does not hide what the tests
    say; every step runs, and the status is pytest's, else the first failing step's.
    """
    env = None
    if bin_ != BIN:  # tells tests/test_install.py that this environment is not the lock's
        env = {**os.environ, "EXKERNEL_UNLOCKED": "1"}
    lint = run(bin_ / "ruff", "check", ".", check=not keep_going)
    types = run(bin_ / "mypy", "kernel", "events", "adapters", check=not keep_going)
    tests = run(bin_ / "python", "-m", "pytest", *args, check=False, env=env)
    return tests or lint or types


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
    """The daemon on the embedded sim venue, and the demo strategy trading through its
    API (`--daemon-only`: the daemon alone, with the sim's own scripted trader)."""
    alone = "--daemon-only" in args
    args = [a for a in args if a != "--daemon-only"]
    # The embedded sim's account lives only as long as the process: each run starts a
    # fresh one, with a fresh log beside it (a real venue's account outlives restarts).
    state = ROOT / "var" / "sim-run"
    shutil.rmtree(state, ignore_errors=True)
    env = {**os.environ, "EXKERNEL_API_TOKEN": secrets.token_urlsafe(24)}
    print(f"state directory {state}; in another terminal:\n"
          f"  .venv/bin/exkernel tail -f --db {state}/events.db\n"
          f"  .venv/bin/exkernel snapshot --db {state}/events.db\n"
          f"  .venv/bin/exkernel status --state-dir {state}", flush=True)
    config = "config/sim.toml" if alone else "config/demo.toml"
    cmd = [str(BIN / "exkernel"), "run", "--config", config, "--state-dir", str(state), *args]
    print("+", " ".join(cmd), flush=True)
    daemon = subprocess.Popen(cmd, cwd=ROOT, env=env)
    strategy = None
    try:
        if not alone:
            deadline = time.monotonic() + 30
            while not (state / "api.sock").exists() and daemon.poll() is None:
                if time.monotonic() > deadline:
                    print("dev.py: the daemon's API did not come up", file=sys.stderr)
                    break
                time.sleep(0.1)
            if daemon.poll() is None:
                grid = [str(PY), "-m", "examples.grid", "--state-dir", str(state),
                        "--rounds", "0"]
                print("+", " ".join(grid), flush=True)
                strategy = subprocess.Popen(grid, cwd=ROOT, env=env)
        while True:
            try:
                return daemon.wait()
            except KeyboardInterrupt:  # the terminal sent SIGINT to both: let them drain
                continue
    finally:
        if strategy is not None:
            with contextlib.suppress(KeyboardInterrupt):
                strategy.wait(timeout=10)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"run", "test", "demo", "bench"}:
        print(__doc__)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "test" and "--latest" in rest:
        rest.remove("--latest")
        return test(rest, setup_latest(), keep_going=True)
    setup()
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
