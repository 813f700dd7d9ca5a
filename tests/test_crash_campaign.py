"""`kill -9` the daemon at random moments during heavy trading, restart it, many times.

The simulated venue runs in its own process (`adapters.sim.server`), so its account
outlives every crash, as a real venue's does. After each kill, `exkernel verify` passes.
At the end the venue goes quiet, the daemon runs once more and stops cleanly, and K is
the venue's books to the last digit, every rule is OK, and nothing was quarantined as a
conflict: nothing was double-counted or lost across the crashes.

EXKERNEL_CRASH_ROUNDS (default 8) and EXKERNEL_CRASH_SEED (default 1) replay a campaign;
EXKERNEL_CRASH_HEDGE=1 runs the venue in hedge mode.

The venue keeps money at 8 places and rounds each fill's realized PnL before booking it;
K books the exact figure, so K's wallet plus the venue's own tally of that rounding
(`truth.rounding`) is the venue's wallet, to the last digit.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.campaign_support import ROOT, ask, exk, start_daemon, wait_ready

ROUNDS = int(os.environ.get("EXKERNEL_CRASH_ROUNDS", "8"))
SEED = int(os.environ.get("EXKERNEL_CRASH_SEED", "1"))
HEDGE = os.environ.get("EXKERNEL_CRASH_HEDGE", "") == "1"

CONFIG = """
[kernel]
state_dir = "{state}"
resync_every_s = 0.5
status_every_s = 0.5
checkpoint_every = 200

[metrics]
enabled = false

[venue]
kind = "sim-remote"
url = "{url}"

[venue.sim]
seed = {seed}
hedge_mode = {hedge}
tick_s = 0.05
funding_interval_s = 1.0

[venue.sim.trader]
every_s = 0.05
"""


def config(tmp_path: Path, url: str) -> str:
    return CONFIG.format(state=tmp_path / "state", url=url, seed=SEED,
                         hedge="true" if HEDGE else "false")


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    cfg = tmp_path / "kernel.toml"
    cfg.write_text(config(tmp_path, "ws://127.0.0.1:1"))
    server = subprocess.Popen(
        [sys.executable, "-m", "adapters.sim.server", "--config", str(cfg)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("listening "), line
        url = f"ws://127.0.0.1:{line.split()[1]}"
        cfg.write_text(config(tmp_path, url))
        yield cfg, url
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)










def test_kill_9_during_heavy_trading_loses_and_doubles_nothing(
    venue: tuple[Path, str], tmp_path: Path
) -> None:
    cfg, url = venue
    db = tmp_path / "state" / "events.db"
    rng = random.Random(SEED)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    seqs = []
    for round_ in range(ROUNDS):
        daemon = start_daemon(cfg, notify)
        wait_ready(notify, timeout=30)
        time.sleep(rng.uniform(0.05, 1.5))
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
        check = exk("verify", "--db", db)
        assert check.returncode == 0, f"round {round_} (seed {SEED}): {check.stdout}"
        seqs.append(int(check.stdout.split()[1]))
    assert seqs == sorted(seqs) and seqs[-1] > seqs[0], seqs

    asyncio.run(ask(url, "quiet"))
    daemon = start_daemon(cfg, notify)
    wait_ready(notify, timeout=30)
    time.sleep(2.5)  # several resyncs after the venue went quiet
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=15) == 0
    notify.close()

    assert exk("verify", "--db", db).returncode == 0
    snap = json.loads(exk("snapshot", "--db", db, "--json").stdout)
    truth = asyncio.run(ask(url, "truth"))
    k = snap["k"]
    wallets = {a: Decimal(v) for a, v in truth["wallets"].items()}  # type: ignore[attr-defined]
    rounding = {a: Decimal(v) for a, v in truth["rounding"].items()}  # type: ignore[attr-defined]
    assert {a: Decimal(v["capital"]) + rounding.get(a, Decimal(0))
            for a, v in k["assets"].items()} == wallets
    assert {s: [Decimal(p["qty"]), Decimal(p["avg_open"])] for s, p in k["positions"].items()} \
        == {s: [Decimal(q), Decimal(a)] for s, (q, a) in truth["positions"].items()}  # type: ignore[attr-defined]
    assert truth["fills"] > 50  # type: ignore[operator]
    bad = [c for c in snap["reconcile"]["checks"] if c["verdict"] != "OK"]
    assert not bad, bad
    assert snap["quarantined"] == 0, "a crash made the kernel see a conflict"


def test_a_rejected_api_key_exits_77_and_a_good_one_connects(tmp_path: Path) -> None:
    cfg = tmp_path / "kernel.toml"
    cfg.write_text(config(tmp_path, "ws://127.0.0.1:1"))
    server = subprocess.Popen(
        [sys.executable, "-m", "adapters.sim.server", "--config", str(cfg),
         "--api-key-env", "SIM_EXPECTS"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "SIM_EXPECTS": "the-right-key"},
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().split()[1]
        cfg.write_text(config(tmp_path, f"ws://127.0.0.1:{port}"))
        run = [sys.executable, "-m", "kernel.cli.main", "run", "--config", str(cfg)]
        wrong = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60,
                               env={**os.environ, "EXKERNEL_API_KEY": "a-wrong-key"})
        assert wrong.returncode == 77, wrong.stdout[-2000:] + wrong.stderr[-2000:]
        assert "credentials rejected" in wrong.stdout + wrong.stderr
        assert "a-wrong-key" not in wrong.stdout + wrong.stderr  # secrets never logged
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(tmp_path / "notify.sock"))
        env = {**os.environ, "EXKERNEL_API_KEY": "the-right-key",
               "NOTIFY_SOCKET": notify.getsockname()}
        good = subprocess.Popen(run, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_ready(notify, timeout=30)
        finally:
            good.send_signal(signal.SIGTERM)
            assert good.wait(timeout=15) == 0
            notify.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
