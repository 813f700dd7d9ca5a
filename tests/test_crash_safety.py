"""Crash safety of the writer and the event log, with real processes and real files.

The campaign SIGKILLs `tests/crash_writer.py` again and again on one log, at random
moments (seeded: `EXKERNEL_CRASH_SEED`; rounds: `EXKERNEL_CRASH_ROUNDS`), and after
every kill holds the log to what the writer promised:

* it verifies (sequence, hash chain, payloads, checkpoints);
* every batch the writer reported COMMITTED is in it;
* no batch is torn: the log is the uninterrupted reference run cut at a batch
  boundary, row for row and hash for hash, each workload event logged once, at the
  seq the reference gives it.

The workload's events carry `recv_ts` already (bench/workload.py) and the writer
stamps only unstamped events (kernel/daemon/writer.py), so payloads, and with them the chain
hashes, are deterministic; the `reference` fixture checks exactly that.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# bench/ is not an installed package; the workload is imported from the checkout.
sys.path.insert(0, str(ROOT))

from bench.workload import events  # noqa: E402
from events.codec import encode  # noqa: E402
from events.log import Checkpoint, EventLog  # noqa: E402
from kernel.daemon.verify import verify  # noqa: E402
from kernel.errors import LogError  # noqa: E402

CRASH_WRITER = ROOT / "tests" / "crash_writer.py"

SEED = 7
N = 20_000
BATCH = 100
ROUNDS = int(os.environ.get("EXKERNEL_CRASH_ROUNDS", "25"))
CAMPAIGN_SEED = int(os.environ.get("EXKERNEL_CRASH_SEED", "20251121"))
#: A middle row: neither the first nor the last, and not a checkpoint (those are at
#: multiples of 500 with this workload and crash_writer's interval).
TAMPERED_SEQ = 1234


@dataclass(frozen=True)
class Committed:
    """One `COMMITTED <last_seq> <first key> <last key>` line of the writer."""

    last_seq: int
    first_key: str
    last_key: str


@dataclass(frozen=True)
class Reference:
    """The uninterrupted run: its log, rows and the seq after each of its batches."""

    path: Path
    keys: list[str]  # index seq - 1
    hashes: list[bytes]  # index seq - 1
    checkpoints: list[Checkpoint]
    boundaries: frozenset[int]


@dataclass(frozen=True)
class Run:
    committed: list[Committed]
    returncode: int
    stderr: str


def writer_argv(db: Path) -> list[str]:
    return [sys.executable, str(CRASH_WRITER), str(db), str(SEED), str(N), str(BATCH)]


def parse(stdout: str) -> list[Committed]:
    committed = []
    # A line cut short by the kill (not that a write this short can be) promised nothing.
    for line in stdout.splitlines(keepends=True):
        if not line.endswith("\n"):
            continue
        word, seq, first, last = line.split()
        assert word == "COMMITTED", line
        committed.append(Committed(int(seq), first, last))
    return committed


def copy_db(src: Path, dst: Path) -> Path:
    for suffix in ("", "-wal"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")
    return dst


def exkernel_verify(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kernel.cli.main", "verify", "--db", str(db)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    path = tmp_path_factory.mktemp("reference") / "reference.db"
    done = subprocess.run(writer_argv(path), capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    committed = parse(done.stdout)
    assert len(committed) == -(-N // BATCH)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT seq, dedup_key, payload, hash FROM events ORDER BY seq").fetchall()
        checkpoints = [Checkpoint(*r) for r in db.execute(
            "SELECT seq, state, hash, state_hash FROM checkpoints ORDER BY seq")]
    db.close()
    # The reference log is the workload itself, byte for byte: every event admitted, in
    # order, with the recv_ts it came with. This is what makes payloads and hashes
    # comparable across runs.
    stream = list(events(N, SEED))
    assert [r[0] for r in rows] == list(range(1, N + 1))
    assert [r[1] for r in rows] == [ev.dedup_key for ev in stream]
    assert [r[2] for r in rows] == [encode(ev) for ev in stream]
    assert len(checkpoints) >= 10, "checkpoints should land mid-run"
    assert all(cp.state_hash == hashlib.sha256(cp.state).digest() for cp in checkpoints)
    assert TAMPERED_SEQ not in {cp.seq for cp in checkpoints}
    return Reference(
        path=path,
        keys=[r[1] for r in rows],
        hashes=[r[3] for r in rows],
        checkpoints=checkpoints,
        boundaries=frozenset([0, *(c.last_seq for c in committed)]),
    )


@pytest.fixture
def sound_copy(reference: Reference, tmp_path: Path) -> Path:
    return copy_db(reference.path, tmp_path / "copy.db")


# --- the kill -9 campaign -------------------------------------------------------------


async def run_writer(db: Path, *, kill_after_lines: int | None = None,
                     kill_after_s: float | None = None) -> Run:
    """Run the writer; SIGKILL it `kill_after_s` seconds after it starts, or after its
    `kill_after_lines`-th line (then `kill_after_s` later, if given), or never."""
    proc = await asyncio.create_subprocess_exec(
        *writer_argv(db), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout, proc.stderr
    out: list[bytes] = []
    reached = asyncio.Event()

    async def read() -> None:
        async for line in stdout:
            out.append(line)
            if len(out) == kill_after_lines:
                reached.set()
        reached.set()  # EOF: the writer finished (or died) before the line came

    reader = asyncio.create_task(read())
    err = asyncio.create_task(stderr.read())
    if kill_after_lines is not None:
        await reached.wait()
    if kill_after_lines is not None or kill_after_s is not None:
        await asyncio.sleep(kill_after_s or 0)
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
    returncode = await asyncio.wait_for(proc.wait(), timeout=120)
    await reader
    return Run(parse(b"".join(out).decode()), returncode, (await err).decode())


async def check_log(db: Path, ref: Reference, committed: list[Committed], where: str) -> int:
    """Hold the log at `db` to the crash-safety promises; return its last seq."""
    if not db.exists():
        assert not committed, f"{where}: batches reported committed, but there is no log"
        return 0
    try:
        log = await EventLog.open(db, readonly=True)
    except LogError:
        # Killed inside its very first open, the writer can leave part of the schema
        # (each CREATE commits on its own; it completes them on restart). Until a batch
        # is reported committed there is nothing to hold that file to.
        if committed:
            raise
        return 0
    try:
        report = await verify(log)
        assert report.fault is None, f"{where}: {report.fault}"
        assert report.events == log.last_seq
        last = log.last_seq

        # Durability: what was reported committed is there.
        assert all(c.last_seq <= last for c in committed), (
            f"{where}: a batch reported committed up to seq"
            f" {max(c.last_seq for c in committed)}, but the log ends at {last}")
        reported = {k for c in committed for k in (c.first_key, c.last_key)}
        found = await log.lookup(reported)
        assert reported <= found.keys(), (
            f"{where}: reported committed, missing: {sorted(reported - found.keys())[:5]}")

        # Atomicity: the log ends where some batch of the reference run ended.
        assert last in ref.boundaries, f"{where}: torn batch, log ends at seq {last}"
        # Each workload event is in the log at most once, and at its reference seq.
        found = await log.lookup(ref.keys)
        assert len(found) == last, f"{where}: {len(found)} workload events in {last} rows"
        assert all(found[k][0] == i + 1 for i, k in enumerate(ref.keys[:last])), where
        # Row for row the reference run's prefix, so every chain hash is the reference's.
        rows = [(r.seq, r.dedup_key, r.hash) async for r in log.rows()]
        expected = [(i + 1, ref.keys[i], ref.hashes[i]) for i in range(last)]
        assert rows == expected, f"{where}: the log is not a prefix of the reference run"
        assert await log.checkpoints() == [cp for cp in ref.checkpoints if cp.seq <= last], (
            f"{where}: checkpoints differ from the reference run's")
        return last
    finally:
        await log.close()


async def test_kill_9_mid_batch_many_times(tmp_path: Path, reference: Reference) -> None:
    db = tmp_path / "crash.db"
    rng = random.Random(CAMPAIGN_SEED)
    committed: list[Committed] = []
    last = 0
    kills = 0
    for round_ in range(ROUNDS):
        if rng.random() < 0.5:
            # Anywhere: interpreter start-up, Writer.open's replay, the pass over batches
            # already logged, or appending.
            delay = rng.uniform(0.005, 0.300)
            plan = f"kill {delay * 1000:.0f} ms after start"
            run = await run_writer(db, kill_after_s=delay)
        else:
            # Inside the k-th batch past those already logged (on restart the writer
            # reports every batch again, the logged ones as duplicates).
            logged = sum(1 for b in reference.boundaries if 0 < b <= last)
            k = logged + rng.randint(1, 6)
            delay = rng.uniform(0, 0.020)
            plan = f"kill {delay * 1000:.1f} ms after line {k}"
            run = await run_writer(db, kill_after_lines=k, kill_after_s=delay)
        where = f"round {round_} ({plan}, EXKERNEL_CRASH_SEED={CAMPAIGN_SEED})"
        assert run.returncode in (-signal.SIGKILL, 0), f"{where}: {run.stderr}"
        kills += run.returncode == -signal.SIGKILL
        committed += run.committed
        last = await check_log(db, reference, committed, where)
        print(f"{where}: exit {run.returncode}, {len(run.committed)} lines, log at {last}")
    assert kills >= ROUNDS // 2, f"only {kills} of {ROUNDS} rounds ended in a kill"
    assert last < N, "the campaign ran the whole workload: it should kill earlier"

    # Recovery: the writer, restarted, finishes the job as if nothing had happened.
    run = await run_writer(db)
    assert run.returncode == 0, run.stderr
    assert len(run.committed) == len(reference.boundaries) - 1
    committed += run.committed
    assert await check_log(db, reference, committed, "after the campaign") == N
    log = await EventLog.open(db, readonly=True)
    try:
        assert (log.last_seq, log.last_hash) == (N, reference.hashes[-1])
    finally:
        await log.close()
    done = exkernel_verify(db)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"OK: {N} events, hash chain intact"), done.stdout


# --- append-only triggers -------------------------------------------------------------


def dump(db: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT * FROM events ORDER BY seq").fetchall()
        cps = conn.execute("SELECT * FROM checkpoints ORDER BY seq").fetchall()
    conn.close()
    return rows, cps


FIRST_CP = "(SELECT min(seq) FROM checkpoints)"
LAST_EVENT = "(SELECT max(seq) FROM events)"


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("UPDATE events SET payload = payload WHERE seq = 1", id="update-events-noop"),
        pytest.param(f"UPDATE events SET recv_ts = recv_ts + 1 WHERE seq = {TAMPERED_SEQ}",
                     id="update-events"),
        pytest.param(f"DELETE FROM events WHERE seq = {LAST_EVENT}", id="delete-last-event"),
        pytest.param("DELETE FROM events", id="delete-all-events"),
        pytest.param(f"UPDATE checkpoints SET state = x'00' WHERE seq = {FIRST_CP}",
                     id="update-checkpoints"),
        pytest.param("DELETE FROM checkpoints", id="delete-checkpoints"),
        pytest.param(
            "INSERT INTO events SELECT * FROM events WHERE seq = 1"
            " ON CONFLICT (seq) DO UPDATE SET payload = x'00'", id="upsert-events"),
        pytest.param(
            f"INSERT OR REPLACE INTO events SELECT seq, kind, dedup_key, venue_ts, recv_ts,"
            f" payload || x'20', hash FROM events WHERE seq = {TAMPERED_SEQ}",
            id="replace-events"),
        pytest.param(
            f"REPLACE INTO checkpoints SELECT seq, x'00', hash, state_hash FROM checkpoints"
            f" WHERE seq = {FIRST_CP}",
            id="replace-checkpoints"),
    ],
)
def test_append_only_triggers(sound_copy: Path, sql: str) -> None:
    before = dump(sound_copy)
    conn = sqlite3.connect(sound_copy, isolation_level=None)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
    finally:
        conn.close()
    assert dump(sound_copy) == before


# --- verify against tampering ---------------------------------------------------------


def tamper(db: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        triggers = [r[0] for r in conn.execute("SELECT name FROM sqlite_master"
                                               " WHERE type = 'trigger'")]
        assert len(triggers) == 6, triggers
        for name in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        for sql, params in statements:
            assert conn.execute(sql, params).rowcount == 1, sql
    finally:
        conn.close()


def row(db: Path, seq: int) -> tuple[bytes, bytes]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        payload, hash_ = conn.execute("SELECT payload, hash FROM events WHERE seq = ?",
                                      (seq,)).fetchone()
    conn.close()
    return payload, hash_


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def edit_payload(db: Path) -> int:
    payload, _ = row(db, TAMPERED_SEQ)
    # A digit of the venue_ts near the start: still JSON, another event.
    tamper(db, ("UPDATE events SET payload = ? WHERE seq = ?",
                (flip(payload, payload.index(b'"venue_ts":') + 12), TAMPERED_SEQ)))
    return TAMPERED_SEQ


def edit_hash(db: Path) -> int:
    _, hash_ = row(db, TAMPERED_SEQ)
    tamper(db, ("UPDATE events SET hash = ? WHERE seq = ?", (flip(hash_, 31), TAMPERED_SEQ)))
    return TAMPERED_SEQ


def delete_row(db: Path) -> int:
    tamper(db, ("DELETE FROM events WHERE seq = ?", (TAMPERED_SEQ,)))
    return TAMPERED_SEQ


def edit_checkpoint(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        seq, state = conn.execute("SELECT seq, state FROM checkpoints ORDER BY seq"
                                  " LIMIT 1 OFFSET 3").fetchone()
    conn.close()
    tamper(db, ("UPDATE checkpoints SET state = ? WHERE seq = ?", (flip(state, len(state) - 1),
                                                                  seq)))
    return int(seq)


def edit_payload_stored_as_text(db: Path) -> int:
    payload, _ = row(db, TAMPERED_SEQ)
    text = flip(payload, payload.index(b'"venue_ts":') + 12).decode()
    tamper(db, ("UPDATE events SET payload = ? WHERE seq = ?", (text, TAMPERED_SEQ)))
    return TAMPERED_SEQ


@pytest.mark.parametrize(
    "damage",
    [
        edit_payload,
        edit_hash,
        delete_row,
        edit_checkpoint,
        edit_payload_stored_as_text,
    ],
)
def test_verify_detects_tampering(sound_copy: Path, damage: Callable[[Path], int]) -> None:
    seq = damage(sound_copy)
    done = exkernel_verify(sound_copy)
    assert done.returncode == 1, done.stdout + done.stderr
    first = done.stdout.splitlines()[0] if done.stdout else ""
    assert first.startswith(f"FAULT at seq {seq}:"), done.stdout


def test_verify_reports_a_fault_without_a_traceback(sound_copy: Path) -> None:
    seq = edit_hash(sound_copy)
    done = exkernel_verify(sound_copy)
    assert done.stdout.startswith(f"FAULT at seq {seq}:"), done.stdout
    assert done.stderr == ""


def test_verify_names_a_checkpoint_whose_state_hash_does_not_match(sound_copy: Path) -> None:
    seq = edit_checkpoint(sound_copy)
    done = exkernel_verify(sound_copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith(f"FAULT at seq {seq}: checkpoint state hash mismatch"), (
        done.stdout)

