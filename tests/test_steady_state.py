"""The default run, as `python3 dev.py run` starts it, tells the truth in steady state:
no ERROR, and no WARN but a pending report, sampled every second while it runs and
checked on every snapshot of its log afterwards.

This is the CI-sized version (about 20 s of trading); bench/steady_state.py runs the same
for five minutes, with and without the fault campaign's faults, and records the counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from events.codec import decode_logged
from events.log import EventLog
from kernel import money
from kernel.census import Census
from kernel.daemon.config import load_config
from kernel.snapshot import AccountSnapshotV2, project
from kernel.state import GENESIS, fold

ROOT = Path(__file__).resolve().parent.parent
RUN_S = 20.0


def census_of(db: Path, config: Path | None = None) -> Census:
    """Every snapshot of the log, projected with the run's reconcile config."""
    money.install()
    cfg = load_config(config).reconcile

    async def go() -> Census:
        census = Census()
        log = await EventLog.open(db, readonly=True)
        try:
            state, snap = GENESIS, None
            async for chunk in log.payloads():
                for seq, payload, key in chunk:
                    state = fold(state, decode_logged(payload), seq, key)
                    snap = project(state, cfg, snap)
                    census.add(snap)
        finally:
            await log.close()
        return census

    return asyncio.run(go())


def sample(db: Path) -> AccountSnapshotV2 | dict[str, object] | None:
    out = subprocess.run([sys.executable, "-m", "kernel.cli.main", "snapshot", "--db", str(db),
                          "--json"], capture_output=True, text=True, timeout=30, cwd=ROOT)
    if out.returncode != 0:
        return None  # the log does not exist yet
    snap: dict[str, object] = json.loads(out.stdout)
    return snap


def test_the_default_run_has_no_error_and_no_warn_but_pending_reports(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cfg = tmp_path / "kernel.toml"
    # the built-in defaults are config/sim.toml's (tests/test_config.py says so); only the
    # metrics port is moved out of the way of other runs
    cfg.write_text("[metrics]\nenabled = false\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kernel.cli.main", "run", "--config", str(cfg), "--state-dir",
         str(state)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    samples: list[dict[str, object]] = []
    try:
        deadline = time.monotonic() + RUN_S
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            snap = sample(state / "events.db")
            if isinstance(snap, dict):
                samples.append(snap)
            time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert len(samples) >= RUN_S / 3

    def not_ok(snap: dict[str, object]) -> list[str]:
        rec = snap["reconcile"]
        assert isinstance(rec, dict)
        return [f"{c['rule']} {c['verdict']} {c['reason']}"
                for c in rec["checks"] if c["verdict"] != "OK"]

    sampled = [line for s in samples for line in not_ok(s)]
    assert [x for x in sampled if " ERROR " in x] == []
    assert [x for x in sampled if " WARN " in x and not x.endswith("PENDING_REPORT")] == []

    census = census_of(state / "events.db", cfg)
    print(census.summary())
    assert census.snapshots > 100  # it traded
    assert census.errors == 0, census.summary()
    assert census.unexplained_warns() == {}, census.summary()
    assert census.unresolved_pending == 0, census.summary()
    # the last snapshot, after the drain, agrees on every rule that has a venue figure
    assert census.verdicts["OK"] > census.verdicts["WARN"]
