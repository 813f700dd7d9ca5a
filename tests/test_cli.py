"""`exkernel` as an operator runs it: real subprocesses on a real SQLite file."""

from __future__ import annotations

import json
import os
import select
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
        assert ("--config" in out.stdout) == (command in ("snapshot", "replay", "tail"))


def test_ingest_counts_and_is_idempotent(db: Path) -> None:
    # 21 lines: 17 good events, 1 redelivered fill, 1 conflicting fill, a NaN, an unknown symbol.
    first = exk("ingest", "--db", db, EXAMPLE)
    assert first.returncode == 0, first.stderr
    words = first.stdout.split()
    assert words[:11] == ["appended", "20", "duplicate", "1", "conflict", "1",
                          "quarantined", "2", "last", "seq", "20"]
    assert words[11] == "in" and words[13] == "s" and words[-1] == "lines/s)"
    again = exk("ingest", "--db", db, EXAMPLE)
    assert again.stdout.split()[:8] == ["appended", "0", "duplicate", "20", "conflict", "1",
                                        "quarantined", "0"]


def test_snapshot_json_holds_the_hand_checked_account(db: Path) -> None:
    exk("ingest", "--db", db, EXAMPLE)
    snap = json.loads(exk("snapshot", "--db", db, "--json").stdout)
    k, usdt = snap["k"], snap["k"]["assets"]["USDT"]  # the public form (docs/snapshot.md)
    # 10000 + 75 + 100 realized - 12.02 fees - 0.9225 funding
    assert float(usdt["capital"]) == 10162.0575
    assert usdt["realized_pnl"].rstrip("0").rstrip(".") == "175"
    assert usdt["fees"] == "12.02"
    assert usdt["funding"] == "-0.9225"
    assert float(usdt["used_margin"]) == 1520  # 0.15*62000/10 + 1*2950/5
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


class Lines:
    """Lines from a subprocess's stdout pipe, each awaited with a deadline of its own."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.buffer = b""

    def next(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            assert left > 0, f"no line within {timeout} s (so far: {self.buffer!r})"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 65536)
                assert chunk, f"stdout closed before a line (so far: {self.buffer!r})"
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()


def tail_f(db: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "kernel.cli.main", "tail", "--db", str(db),
                             "-f", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT)


NEW_MARK = ('{"kind":"mark_price_observed","venue_ts":1763700099000000000,'
            '"symbol":"BTCUSDT","price":"63000"}\n')


def test_tail_follow_prints_new_appends(db: Path) -> None:
    exk("ingest", "--db", db, EXAMPLE)
    proc = tail_f(db, "--since", "19")
    try:
        lines = Lines(proc)
        # Seq 20 printed: the follower has read the log once and now waits for appends
        # (no sleep to guess when it has started: under load that guess was the flake).
        assert lines.next().split()[0] == "20"
        assert exk("ingest", "--db", db, "-", input=NEW_MARK).returncode == 0
        got = lines.next()
        assert got.split()[0] == "21" and "price=63000" in got
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def quiet(stderr: bytes) -> bool:
    """Nothing on stderr but the line naming the source `tail -f` follows."""
    return all(line.startswith("exkernel: source: ") for line in stderr.decode().splitlines())


def test_tail_follow_into_a_closed_pipe_exits_quietly(db: Path) -> None:
    """`exkernel tail -f | head -1`, the reader gone before the next append is written."""
    exk("ingest", "--db", db, EXAMPLE)
    proc = tail_f(db, "--since", "19")
    try:
        assert Lines(proc).next().split()[0] == "20"
        assert proc.stdout is not None
        proc.stdout.close()  # `head` has its line and exits
        assert exk("ingest", "--db", db, "-", input=NEW_MARK).returncode == 0
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None and quiet(proc.stderr.read())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_tail_follow_notices_a_closed_pipe_with_nothing_new_to_write(db: Path) -> None:
    exk("ingest", "--db", db, EXAMPLE)
    proc = tail_f(db, "--since", "19")
    try:
        assert Lines(proc).next().split()[0] == "20"
        assert proc.stdout is not None
        proc.stdout.close()
        assert proc.wait(timeout=30) == 0  # no append will come to fail on
        assert proc.stderr is not None and quiet(proc.stderr.read())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


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
    bad_utf8 = b'{"kind":"venue_connected","venue_ts":1,"venue":"\xff"}\n'
    not_json = b'{"kind":"venue_connected",\n'
    out = subprocess.run([sys.executable, "-m", "kernel.cli.main", "ingest", "--db", str(db), "-"],
                         input=bad_utf8 + not_json, capture_output=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert b"quarantined 2" in out.stdout
    rows = [json.loads(x) for x in exk("tail", "--db", db, "--json").stdout.splitlines()]
    at = bad_utf8.index(b"\xff") + 1
    assert rows[0]["source"] == "ingest:-:1"
    assert rows[0]["reason"] == f"line 1 is not valid UTF-8 at byte {at}"
    assert rows[1]["source"] == "ingest:-:2"
    assert rows[1]["reason"].startswith("line 2 is not valid JSON")
    assert rows[1]["raw_len"] == len(not_json) - 1


# --- the daemon's reconcile bounds in the reader commands --------------------------------

T = 1763700000000000000
S = 1_000_000_000


def stamped(kind: str, at: int, **fields: object) -> str:
    """One JSON line whose receive time is its venue time: a log that is the same
    whenever the test runs."""
    return json.dumps({"kind": kind, "venue_ts": at, "recv_ts": at, **fields})


LATE_REPORT = "\n".join([
    stamped("instrument_defined", T, symbol="BTCUSDT", instrument_kind="linear", base="BTC",
            quote="USDT", settle="USDT", tick_size="0.1", lot_size="0.001", min_notional="5"),
    stamped("transfer_completed", T + S, transfer_id="t-1", asset="USDT",
            direction="deposit", amount="1000"),
    stamped("balance_reported", T + 2 * S, balances=[{"asset": "USDT", "wallet": "1000"}]),
    # A fill after the venue's report moves K: pending until 3 s + the settling window.
    stamped("order_filled", T + 3 * S, symbol="BTCUSDT", trade_id="1", order_id="o",
            side="buy", qty="0.010", price="60000", fee="0.24", fee_currency="USDT"),
    stamped("mark_price_observed", T + 20 * S, symbol="BTCUSDT", price="60000"),
]) + "\n"


def test_snapshot_and_replay_use_the_configured_settling_window(
    db: Path, tmp_path: Path
) -> None:
    assert exk("ingest", "--db", db, "-", input=LATE_REPORT).returncode == 0
    cfg = tmp_path / "kernel.toml"
    cfg.write_text("[reconcile]\nsettle_window_ns = 60000000000\n")

    def r1(*args: str | Path) -> tuple[str, str]:
        out = exk("snapshot", "--db", db, "--json", *args)
        assert out.returncode == 0, out.stderr
        snap = json.loads(out.stdout)
        [check] = [c for c in snap["reconcile"]["checks"]
                   if c["rule"] == "R1" and c["subject"] == "USDT"]
        return snap["reconcile"]["verdict"], check["reason"]

    # The 17 s since the fill are past the default 5 s window, within the configured 60 s.
    assert r1() == ("ERROR", "PENDING_REPORT_EXPIRED")
    assert r1("--config", cfg) == ("WARN", "PENDING_REPORT")
    text = exk("snapshot", "--db", db, "--config", cfg).stdout
    assert "verdict WARN" in text
    assert "verdict ERROR" in exk("replay", "--db", db).stdout
    assert "verdict WARN" in exk("replay", "--db", db, "--config", cfg).stdout


def test_snapshot_with_a_bad_config_exits_78_naming_the_key(db: Path, tmp_path: Path) -> None:
    exk("ingest", "--db", db, EXAMPLE)
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[reconcile]\nsettle_window_ns = -1\n")
    out = exk("snapshot", "--db", db, "--config", cfg)
    assert out.returncode == 78
    assert str(cfg) in out.stderr and "reconcile.settle_window_ns" in out.stderr
