"""Steady-state verdicts: what an operator sees over a long run (issue 6's measurement).

    .venv/bin/python -m bench.steady_state                 # the three runs, 300 s each
    .venv/bin/python -m bench.steady_state --seconds 60 --only clean

* **clean**: `exkernel run` exactly as `python3 dev.py run` starts it (the built-in
  defaults, which are config/sim.toml's; no faults), as a real subprocess. The verdict is
  sampled every second with `exkernel snapshot --json`, and afterwards every snapshot of
  the log is re-projected and counted (`kernel.census`).
* **demo**: the same, as `python3 dev.py run` starts it: no scripted trader; the grid
  strategy (examples/grid.py) trading through the API.
* **faults**: the daemon in process against the sim with the fault campaign's faults on
  (duplicates, reorders, drops, malformed pushes, stale reports, disconnects) for the
  given time; then the pushes stop being faulted (trading, funding and the periodic
  disconnects go on) for as long again. The census is reported for the faulty phase
  (where a dropped fill is a true ERROR until a resync brings it back) and for the
  snapshots after the kernel caught up, where it must hold the clean run's bar.

The bar: 0 ERROR, no WARN but PENDING_REPORT, every pending check ends OK.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from adapters.sim.config import SimConfig, SimFaults, SimTrader
from adapters.sim.venue import SimVenue
from events.codec import decode_logged
from events.log import EventLog
from kernel import money
from kernel.census import Census
from kernel.daemon import logs
from kernel.daemon.config import Config, load_config
from kernel.daemon.service import Daemon
from kernel.snapshot import project
from kernel.state import GENESIS, fold

ROOT = Path(__file__).resolve().parent.parent


async def census_of(db: Path, cfg: Config, since: int = 0) -> Census:
    census = Census()
    log = await EventLog.open(db, readonly=True)
    try:
        state, snap = GENESIS, None
        async for chunk in log.payloads():
            for seq, payload, key in chunk:
                state = fold(state, decode_logged(payload), seq, key)
                snap = project(state, cfg.reconcile, snap)
                if seq > since:
                    census.add(snap)
    finally:
        await log.close()
    return census


def clean(seconds: float, demo: bool = False) -> tuple[Census, dict[str, int]]:
    """`demo`: as `python3 dev.py run` runs it (config/demo.toml: no scripted trader, the
    grid strategy trading through the API); else as `dev.py run --daemon-only`."""
    with tempfile.TemporaryDirectory() as tmp:
        state, cfg_path = Path(tmp) / "state", Path(tmp) / "kernel.toml"
        demo_keys = "[venue.sim.trader]\nenabled = false\n" if demo else ""
        cfg_path.write_text("[metrics]\nenabled = false\n" + demo_keys)
        exk = [sys.executable, "-m", "kernel.cli.main"]
        env = {**os.environ, "EXKERNEL_API_TOKEN": "steady-state"}
        proc = subprocess.Popen([*exk, "run", "--config", str(cfg_path), "--state-dir",
                                 str(state)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
        strategy = None
        if demo:
            while not (state / "api.sock").exists():
                time.sleep(0.1)
            strategy = subprocess.Popen(
                [sys.executable, "-m", "examples.grid", "--state-dir", str(state),
                 "--rounds", "0"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        sampled: dict[str, int] = {}
        try:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                time.sleep(1.0)
                out = subprocess.run([*exk, "snapshot", "--db", str(state / "events.db"),
                                      "--json"], capture_output=True, text=True, cwd=ROOT)
                if out.returncode == 0:
                    verdict = json.loads(out.stdout)["reconcile"]["verdict"]
                    sampled[verdict] = sampled.get(verdict, 0) + 1
        finally:
            if strategy is not None:
                strategy.send_signal(signal.SIGINT)
                strategy.wait(timeout=30)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        return asyncio.run(census_of(state / "events.db", load_config(cfg_path))), sampled


async def faulty(seconds: float, seed: int) -> tuple[Census, Census]:
    base = load_config(None)
    sim = SimConfig(seed=seed, tick_s=0.05, funding_interval_s=5.0, report_delay_ms=50,
                    trader=SimTrader(every_s=0.2),
                    faults=SimFaults(duplicate=0.1, reorder=0.1, drop=0.1, malformed=0.05,
                                     stale_reports=0.3, disconnect_every_s=10.0))
    cfg = msgspec.structs.replace(
        base, kernel=msgspec.structs.replace(base.kernel, resync_every_s=2.0),
        venue=msgspec.structs.replace(base.venue, sim=sim))
    with tempfile.TemporaryDirectory() as tmp:
        venue = SimVenue(cfg.venue.sim)
        daemon = Daemon(cfg, venue, Path(tmp))
        run = asyncio.create_task(daemon.run())
        await asyncio.sleep(seconds)
        venue.faults.faults = SimFaults()  # pushes arrive whole and in order from now on
        # caught up: two periodic resyncs after the last fault
        await asyncio.sleep(2 * cfg.kernel.resync_every_s)
        assert daemon._writer is not None
        quiet_seq = daemon._writer.state.seq
        await asyncio.sleep(seconds)
        daemon.stop()
        await run
        during = await census_of(Path(tmp) / "events.db", cfg)
        after = await census_of(Path(tmp) / "events.db", cfg, since=quiet_seq)
    return during, after


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=300.0)
    p.add_argument("--only", choices=["clean", "demo", "faults"])
    p.add_argument("--seed", type=int, default=21)
    args = p.parse_args()
    money.install()
    logs.configure("warning")  # the in-process daemon's lines would drown the counts
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    ok = True
    if args.only in (None, "clean"):
        census, sampled = clean(args.seconds)
        print(f"## clean: the default run for {args.seconds:.0f} s")
        print(f"sampled every second: {sampled}")
        print(census.summary())
        ok &= census.errors == 0 and not census.unexplained_warns() \
            and census.unresolved_pending == 0 and "ERROR" not in sampled
    if args.only in (None, "demo"):
        census, sampled = clean(args.seconds, demo=True)
        print(f"## demo: the daemon and examples/grid.py for {args.seconds:.0f} s")
        print(f"sampled every second: {sampled}")
        print(census.summary())
        ok &= census.errors == 0 and not census.unexplained_warns() \
            and census.unresolved_pending == 0 and "ERROR" not in sampled
    if args.only in (None, "faults"):
        during, after = asyncio.run(faulty(args.seconds, args.seed))
        print(f"## faults: {args.seconds:.0f} s with every fault on (seed {args.seed})")
        print(during.summary())
        print("## faults: after the venue went quiet and the kernel caught up")
        print(after.summary())
        ok &= after.errors == 0 and not after.unexplained_warns()
    print("bar met" if ok else "bar NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
