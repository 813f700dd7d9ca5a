"""One writer per event log: the OS lock beside the database, as real processes meet it.

In-process tests hold `EventLog.open` to the lock's contract; the rest start a real
`exkernel run` (embedded sim) and try a second writer against its log while it runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from events.codec import decode
from events.log import EventLog
from events.log.lock import WriterLock, lock_path
from kernel.daemon.config import EXIT_LOCKED
from kernel.errors import LogError, LogLocked
from tests.campaign_support import Notifications

ROOT = Path(__file__).resolve().parent.parent
MARK = ('{"kind":"mark_price_observed","venue_ts":1700000000123456789,'
        '"symbol":"BTCUSDT","price":"1"}\n')


# --- in one process ---------------------------------------------------------------------


async def test_a_second_writer_is_refused_naming_the_log_and_the_holders_pid(
    tmp_path: Path,
) -> None:
    db = tmp_path / "events.db"
    first = await EventLog.open(db)
    try:
        with pytest.raises(LogLocked) as refused:
            await EventLog.open(db)  # flock is per open file: even this process is refused
        assert refused.value.pid == os.getpid()
        assert refused.value.path == str(db)
        assert str(db) in str(refused.value) and f"pid {os.getpid()}" in str(refused.value)
        assert lock_path(db).read_text().strip() == str(os.getpid())
        reader = await EventLog.open(db, readonly=True)  # readers take no lock
        await reader.close()
    finally:
        await first.close()
    second = await EventLog.open(db)  # close() gave the lock back
    await second.close()


async def test_the_lock_is_beside_the_real_file_when_the_path_is_a_symlink(
    tmp_path: Path,
) -> None:
    db = tmp_path / "events.db"
    link = tmp_path / "alias.db"
    first = await EventLog.open(db)
    link.symlink_to(db)
    try:
        with pytest.raises(LogLocked):
            await EventLog.open(link)
    finally:
        await first.close()
    assert lock_path(link) == lock_path(db) == db.with_name("events.db.lock")


def test_release_is_idempotent_and_a_stale_pid_does_not_block(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    lock_path(db).write_text("999999999\n")  # a crashed holder's pid: only the lock counts
    lock = WriterLock.acquire(db)
    assert lock.held and lock_path(db).read_text() == f"{os.getpid()}\n"
    lock.release()
    lock.release()
    assert not lock.held and lock_path(db).read_text() == ""
    WriterLock.check(db)  # free: no error, and not kept
    WriterLock.acquire(db).release()


def test_a_lock_file_that_cannot_be_created_is_a_log_error(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="cannot open the writer lock"):
        WriterLock.acquire(tmp_path / "no-such-dir" / "events.db")


# --- real processes ---------------------------------------------------------------------




def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(tmp: Path, metrics_port: int) -> Path:
    path = tmp / "kernel.toml"
    path.write_text(f"""
[kernel]
state_dir = "{tmp / 'state'}"
status_every_s = 0.5

[metrics]
port = {metrics_port}

[venue.sim]
tick_s = 0.05

[venue.sim.trader]
every_s = 0.2
""")
    return path


def start(cfg: Path, notify_path: str, out: Path) -> subprocess.Popen[bytes]:
    # Stdout to a file: a pipe nobody reads would fill and stall the daemon's writer.
    with out.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "kernel.cli.main", "run", "--config", str(cfg)],
            cwd=ROOT, env={**os.environ, "NOTIFY_SOCKET": notify_path},
            stdout=sink, stderr=subprocess.STDOUT,
        )


def exk(*args: str | Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kernel.cli.main", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, input=input, timeout=60)


async def last_seq(db: Path) -> int:
    log = await EventLog.open(db, readonly=True)
    try:
        return log.last_seq
    finally:
        await log.close()


async def wait_for_growth(db: Path, beyond: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while (seq := await last_seq(db)) <= beyond:
        assert time.monotonic() < deadline, f"the log stayed at seq {seq} for {timeout} s"
        await asyncio.sleep(0.1)
    return seq


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


async def test_a_second_writer_process_is_refused_and_the_first_runs_on(
    tmp_path: Path, notify: tuple[Notifications, str]
) -> None:
    notes, notify_path = notify
    # One fixed metrics port for both: the operator's slip of starting the same config
    # twice must read "another writer", not "port in use".
    cfg = config(tmp_path, free_port())
    db = tmp_path / "state" / "events.db"
    first = start(cfg, notify_path, tmp_path / "first.out")
    try:
        notes.wait_for("READY=1", timeout=60)
        before = await wait_for_growth(db, 0)

        second = exk("run", "--config", cfg)
        assert second.returncode == EXIT_LOCKED, second.stdout + second.stderr
        assert str(db) in second.stderr and f"pid {first.pid}" in second.stderr, second.stderr
        assert "another writer" in second.stderr
        assert '"event":"metrics"' not in second.stdout  # refused before binding a port

        ingest = exk("ingest", "--db", db, "-", input=MARK)
        assert ingest.returncode == EXIT_LOCKED, ingest.stdout + ingest.stderr
        assert str(db) in ingest.stderr and f"pid {first.pid}" in ingest.stderr

        # The first daemon is unharmed: alive, appending, its log sound.
        assert first.poll() is None
        await wait_for_growth(db, before)
        log = await EventLog.open(db, readonly=True)
        try:
            assert await log.lookup([decode(MARK).dedup_key]) == {}  # nothing was ingested
        finally:
            await log.close()

        # Readers need no lock.
        snap = exk("snapshot", "--db", db, "--json")
        assert snap.returncode == 0 and json.loads(snap.stdout)["seq"] > 0, snap.stderr
        tail = exk("tail", "--db", db, "-n", "3")
        assert tail.returncode == 0 and len(tail.stdout.splitlines()) == 3, tail.stderr
        verify = exk("verify", "--db", db)
        assert verify.returncode == 0 and verify.stdout.startswith("OK:"), verify.stdout
        replay = exk("replay", "--db", db)
        assert replay.returncode == 0 and "replayed" in replay.stdout, replay.stderr
        status = exk("status", "--state-dir", tmp_path / "state")
        assert status.returncode == 0 and f"pid {first.pid}" in status.stdout, status.stdout
    finally:
        stop(first)
    out = (tmp_path / "first.out").read_text()
    assert "append-only" not in out and "Traceback" not in out, out[-2000:]


async def test_kill_9_releases_the_lock_and_the_next_start_succeeds(
    tmp_path: Path, notify: tuple[Notifications, str]
) -> None:
    notes, notify_path = notify
    cfg = config(tmp_path, 0)
    db = tmp_path / "state" / "events.db"
    first = start(cfg, notify_path, tmp_path / "first.out")
    try:
        notes.wait_for("READY=1", timeout=60)
        seq = await wait_for_growth(db, 0)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
    finally:
        stop(first)
    assert lock_path(db).read_text().strip() == str(first.pid)  # stale, and harmless

    notes.seen.clear()
    again = start(cfg, notify_path, tmp_path / "again.out")
    try:
        notes.wait_for("READY=1", timeout=60)
        assert lock_path(db).read_text().strip() == str(again.pid)
        await wait_for_growth(db, seq)
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=15) == 0
    finally:
        stop(again)
    verify = exk("verify", "--db", db)
    assert verify.returncode == 0, verify.stdout
