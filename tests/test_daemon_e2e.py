"""`exkernel run` as systemd runs it: a real subprocess, a real NOTIFY_SOCKET, real signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.campaign_support import Notifications

ROOT = Path(__file__).resolve().parent.parent


def config(tmp: Path, extra: str = "") -> Path:
    path = tmp / "kernel.toml"
    path.write_text(f"""
[kernel]
state_dir = "{tmp / 'state'}"
status_every_s = 0.5
resync_every_s = 2.0

[metrics]
port = 0

[venue.sim]
tick_s = 0.05

[venue.sim.trader]
every_s = 0.2
{extra}
""")
    return path




def start(cfg: Path, notify_path: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "1000000"}
    return subprocess.Popen(
        [sys.executable, "-m", "kernel.cli.main", "run", "--config", str(cfg)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def exk(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kernel.cli.main", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_ready_watchdog_then_sigterm_exits_0_with_a_sound_log(
    tmp_path: Path, notify: tuple[Notifications, str]
) -> None:
    notes, path = notify
    proc = start(config(tmp_path), path)
    try:
        notes.wait_for("READY=1", timeout=30)
        notes.wait_for("WATCHDOG=1", timeout=5)
        time.sleep(2.5)  # let the scripted trader fill a few orders
        status = exk("status", "--state-dir", tmp_path / "state")
        assert status.returncode == 0 and "running" in status.stdout, status.stdout
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        notes.wait_for("STOPPING=1", timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = proc.stdout.read().decode() if proc.stdout else ""
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    events = {x["event"] for x in lines}
    assert {"replayed", "venue connected", "ready", "stopping", "checkpointed"} <= events, events
    fills = [x for x in lines if x.get("kind") == "order_filled" and "seq" in x]
    assert fills
    # The journal reads without a second tool: the fill's content, exact and summarized.
    f = fills[0]
    assert {"symbol", "side", "qty", "price", "fee", "fee_currency"} <= f.keys(), f
    assert f["summary"].startswith(f"{f['symbol']} {f['side']} ") and " @ " in f["summary"]
    assert f" {f['fee_currency']}" in f["summary"].partition(" fee ")[2]
    status_lines = [x for x in lines if x["event"] == "status"]
    assert status_lines and all(  # money at the asset's precision, no division tails
        len(v.partition(".")[2]) <= 8 for x in status_lines for v in x["capital"].values())
    db = tmp_path / "state" / "events.db"
    verify = exk("verify", "--db", db)
    assert verify.returncode == 0 and verify.stdout.startswith("OK:"), verify.stdout
    snap = json.loads(exk("snapshot", "--db", db, "--json").stdout)
    assert snap["k"]["assets"], "the sim's deposit reached the ledger"
    stopped = exk("status", "--state-dir", tmp_path / "state")
    assert stopped.returncode == 1 and stopped.stdout.startswith("stopped")


def test_metrics_endpoint_serves_kernel_metrics(
    tmp_path: Path, notify: tuple[Notifications, str]
) -> None:
    notes, path = notify
    proc = start(config(tmp_path), path)
    try:
        notes.wait_for("READY=1", timeout=30)
        time.sleep(1.0)
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 10
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline().decode()
            if '"event":"metrics"' in line:
                url = json.loads(line)["url"]
        assert url is not None
        body = urllib.request.urlopen(url, timeout=5).read().decode()
        assert "exkernel_events_total" in body and "exkernel_venue_connected 1.0" in body
        values = {line.split()[0]: float(line.split()[1]) for line in body.splitlines()
                  if line and not line.startswith("#")}
        assert values["exkernel_fold_seconds_count"] > 0
        assert values["exkernel_commit_seconds_count"] > 0
        age = values["exkernel_last_venue_report_age_seconds"]
        assert 0 <= age < 5, age  # reports came, and the gauge ages between them
        resynced = values["exkernel_last_resync_success_age_seconds"]
        assert 0 <= resynced < 5, resynced  # resync_every_s is 2
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("[kernel]\nqueue_size = 0\n", "kernel.queue_size"),
        ("[kernal]\n", "kernal"),
        ("[venue.sim.faults]\ndrop = 2.0\n", "venue.sim.faults.drop"),
        ("[kernel\n", "line 1"),
        ('[venue]\nkind = "ccxtpro"\n', "venue.ccxtpro.exchange"),
        ("[kernel]\nresync_every_s = 120\n", "kernel.resync_lookback_s"),
    ],
    ids=["out_of_range", "unknown_table", "probability", "syntax", "ccxtpro_without_exchange",
         "resync_interval_beyond_lookback"],
)
def test_a_bad_config_exits_78_naming_file_and_key(tmp_path: Path, body: str, named: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(body)
    out = exk("run", "--config", cfg)
    assert out.returncode == 78, out.stdout + out.stderr
    assert str(cfg) in out.stderr and named in out.stderr, out.stderr
    check = exk("config", "check", cfg)
    assert check.returncode == 78 and named in check.stderr


def test_the_example_configs_check_ok() -> None:
    for name in ("sim.toml", "binance-usdm.toml"):
        out = exk("config", "check", ROOT / "config" / name)
        assert out.returncode == 0 and out.stdout.startswith("OK:"), out.stderr


def test_a_taken_metrics_port_is_a_clear_config_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cfg = config(tmp_path).read_text().replace("port = 0", f"port = {port}")
        path = tmp_path / "taken.toml"
        path.write_text(cfg)
        out = exk("run", "--config", path)
    assert out.returncode == 78 and f"metrics.port {port}" in out.stderr
