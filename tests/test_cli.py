"""`exkernel` as an operator runs it: real subprocesses on a real SQLite file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "account.jsonl"


def exk(*args: str | Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kernel.cli.main", *map(str, args)],
        capture_output=True, text=True, input=input, timeout=60, cwd=ROOT,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


def test_every_command_has_help() -> None:
    for command in ("ingest", "snapshot", "tail", "verify", "replay"):
        out = exk(command, "--help")
        assert out.returncode == 0
        assert "--db" in out.stdout and len(out.stdout.splitlines()) > 3


def test_ingest_counts_and_is_idempotent(db: Path) -> None:
    # 21 lines: 17 good events, 1 redelivered fill, 1 conflicting fill, a NaN, an unknown symbol.
    first = exk("ingest", "--db", db, EXAMPLE)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["appended", "20", "duplicate", "1", "conflict", "1",
                                    "quarantined", "2", "last", "seq", "20"]
    again = exk("ingest", "--db", db, EXAMPLE)
    assert again.stdout.split()[:8] == ["appended", "0", "duplicate", "20", "conflict", "1",
                                        "quarantined", "0"]


def test_snapshot_json_holds_the_hand_checked_account(db: Path) -> None:
    exk("ingest", "--db", db, EXAMPLE)
    snap = json.loads(exk("snapshot", "--db", db, "--json").stdout)
    k = snap["k"]
    # 10000 + 75 + 100 realized - 12.02 fees - 0.9225 funding
    assert float(k["wallets"]["USDT"]) == 10162.0575
    assert k["realized_pnl"]["USDT"].rstrip("0").rstrip(".") == "175"
    assert k["fees"]["USDT"] == "12.02"
    assert k["funding"]["USDT"] == "-0.9225"
    assert float(k["used_margin"]["USDT"]) == 1520  # 0.15*62000/10 + 1*2950/5
    assert {key: p["qty"] for key, p in k["positions"].items()} == {
        "BTCUSDT": "0.150", "ETHUSDT": "1.000"}
    assert snap["reconcile"]["verdict"] == "OK"
    assert snap["quarantined"] == 3


def test_snapshot_at_an_earlier_seq_and_out_of_range(db: Path) -> None:
    exk("ingest", "--db", db, EXAMPLE)
    snap = json.loads(exk("snapshot", "--db", db, "--at", "8", "--json").stdout)
    assert snap["seq"] == 8
    assert snap["k"]["positions"]["BTCUSDT"]["avg_open"] == "60500"  # (60000 + 61000) / 2
    assert snap["reconcile"]["verdict"] == "UNKNOWN"  # the venue has reported nothing yet
    out = exk("snapshot", "--db", db, "--at", "99")
    assert out.returncode == 2 and "outside the log" in out.stderr


def test_snapshot_text_summary_names_every_rule(db: Path) -> None:
    exk("ingest", "--db", db, EXAMPLE)
    text = exk("snapshot", "--db", db).stdout
    for rule in ("R1", "R2", "R3", "R4", "R5", "R6"):
        assert f"  {rule} " in text
    assert "verdict OK" in text and "capital 10162.0575" in text


def test_tail_filters_and_json(db: Path) -> None:
    exk("ingest", "--db", db, EXAMPLE)
    lines = exk("tail", "--db", db, "--since", "0", "--kind", "input_quarantined").stdout
    assert len(lines.splitlines()) == 3
    rows = [json.loads(x) for x in exk("tail", "--db", db, "-n", "2", "--json").stdout.split("\n")
            if x]
    assert [r["seq"] for r in rows] == [19, 20]
    assert rows[1]["kind"] == "positions_reported"
    bad = exk("tail", "--db", db, "--kind", "nonsense")
    assert bad.returncode == 2 and "unknown kind" in bad.stderr


def test_tail_follow_prints_new_appends(db: Path) -> None:
    exk("ingest", "--db", db, EXAMPLE)
    proc = subprocess.Popen([sys.executable, "-m", "kernel.cli.main", "tail", "--db", str(db), "-f",
                             "-n", "0"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        time.sleep(1.0)
        line = ('{"kind":"mark_price_observed","venue_ts":1763700099000000000,'
                '"symbol":"BTCUSDT","price":"63000"}\n')
        assert exk("ingest", "--db", db, "-", input=line).returncode == 0
        assert proc.stdout is not None
        got = proc.stdout.readline()
        assert got.split()[0] == "21" and "price=63000" in got
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def test_verify_and_replay_on_a_sound_log(db: Path) -> None:
    exk("ingest", "--db", db, EXAMPLE, "--checkpoint-every", "5")
    out = exk("verify", "--db", db)
    assert out.returncode == 0 and "OK: 20 events" in out.stdout
    assert "1 checkpoints" in out.stdout or "checkpoints agree" in out.stdout
    rep = exk("replay", "--db", db)
    assert rep.returncode == 0 and "replayed 20 events" in rep.stdout and "verdict OK" in rep.stdout


def test_missing_log_is_a_log_error(tmp_path: Path) -> None:
    out = exk("snapshot", "--db", tmp_path / "nope.db")
    assert out.returncode == 3 and "no event log" in out.stderr


def test_default_db_follows_state_directory(tmp_path: Path) -> None:
    env = {**os.environ, "STATE_DIRECTORY": str(tmp_path)}
    env.pop("EXKERNEL_DB", None)
    out = subprocess.run([sys.executable, "-m", "kernel.cli.main", "ingest", str(EXAMPLE)],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "events.db").exists()


def test_ingest_of_undecodable_bytes_quarantines_them(db: Path) -> None:
    raw = b'{"kind":"venue_connected","venue_ts":1,"venue":"\xff"}\n'
    out = subprocess.run([sys.executable, "-m", "kernel.cli.main", "ingest", "--db", str(db), "-"],
                         input=raw, capture_output=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert b"quarantined 1" in out.stdout
    tail = exk("tail", "--db", db, "--json").stdout
    assert "not valid UTF-8" in tail
