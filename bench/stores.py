"""(b), (c), (d): storing the same events three ways, 1,000 per transaction.

* (b) raw SQLite: stdlib `sqlite3`, WAL, `synchronous=NORMAL`, a table with the
  columns of `events.log`'s `events` table, `executemany` of precomputed rows (the
  payloads, dedup keys and chain hashes are computed before the clock starts). The
  ceiling: what SQLite itself costs for these rows.
* (c) the `eventsourcing` library: `SQLiteApplicationRecorder` over `SQLiteDatastore`
  (what an `Application` with `PERSISTENCE_MODULE=eventsourcing.sqlite` uses), one
  `StoredEvent` per kernel event (one originator for the account, version = seq,
  topic = kind, state = the same payload bytes), `insert_events` of 1,000 per call.
  The library leaves `synchronous` at SQLite's default; a second run sets NORMAL on
  its one pooled connection so that the durability matches (b) and (d) NORMAL. A third
  run goes through the library's domain layer: an `Application` (SQLite persistence,
  defaults) saving an `Aggregate` after every 1,000 of its `@event` method calls, one
  call per kernel event with its kind and payload (as text: the library's JSON
  transcoder has no bytes type), so one insert call of 1,000 stored events per save.
* (d) the kernel: `Writer.ingest(batch)` over `EventLog` (dedup lookup, admission,
  fold, snapshot, encode, hash chain, append, commit, a checkpoint every 10,000).

Every run writes a fresh database file in `scratch` (a directory on the same disk as
the real logs; /tmp may be a tmpfs that makes fsync free).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from bench import workload
from bench.measure import Measurement, Stopwatch
from events.codec import Event, encode
from events.log import GENESIS_HASH, EventLog, chain
from kernel.daemon.writer import Writer

BATCH = 1000

RAW_SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    dedup_key TEXT NOT NULL UNIQUE,
    venue_ts INTEGER NOT NULL,
    recv_ts INTEGER NOT NULL,
    payload BLOB NOT NULL,
    hash BLOB NOT NULL
)
"""
RAW_INSERT = (
    "INSERT INTO events (seq, kind, dedup_key, venue_ts, recv_ts, payload, hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)

RawRow = tuple[int, str, str, int, int, bytes, bytes]


@dataclass(frozen=True)
class Corpus:
    """One workload, as Event batches for the writer and as the rows the log would hold."""

    batches: list[list[Event]]
    rows: list[RawRow]

    @property
    def events(self) -> int:
        return len(self.rows)


def corpus(n: int, seed: int) -> Corpus:
    evs = list(workload.events(n, seed))
    rows: list[RawRow] = []
    prev = GENESIS_HASH
    for seq, ev in enumerate(evs, 1):
        payload = encode(ev)
        prev = chain(prev, seq, payload)
        kind = type(ev).__struct_config__.tag
        rows.append((seq, kind, ev.dedup_key, ev.venue_ts, ev.recv_ts, payload, prev))
    batches = [evs[i : i + BATCH] for i in range(0, len(evs), BATCH)]
    return Corpus(batches, rows)


def raw_sqlite(c: Corpus, path: Path) -> Measurement:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(RAW_SCHEMA)
        watch = Stopwatch()
        with watch.running():
            for i in range(0, len(c.rows), BATCH):
                db.execute("BEGIN IMMEDIATE")
                db.executemany(RAW_INSERT, c.rows[i : i + BATCH])
                db.execute("COMMIT")
        (count,) = db.execute("SELECT count(*) FROM events").fetchone()
    finally:
        db.close()
    assert count == c.events, (count, c.events)
    return Measurement("b", "raw sqlite3 executemany, NORMAL", c.events, watch.wall, watch.cpu)


def eventsourcing_recorder(
    c: Corpus, path: Path, synchronous: Literal["default", "NORMAL"]
) -> Measurement:
    # One pooled connection, so that a PRAGMA set on it holds for every insert.
    datastore = SQLiteDatastore(str(path), pool_size=1, max_overflow=0)
    try:
        recorder = SQLiteApplicationRecorder(datastore)
        recorder.create_table()
        if synchronous != "default":
            with datastore.get_connection(commit=True) as conn:
                conn.cursor().execute(f"PRAGMA synchronous={synchronous}")
        level = _synchronous(datastore)
        account = uuid.uuid4()
        stored = [
            StoredEvent(originator_id=account, originator_version=seq, topic=kind, state=payload)
            for seq, kind, _key, _vts, _rts, payload, _hash in c.rows
        ]
        watch = Stopwatch()
        with watch.running():
            for i in range(0, len(stored), BATCH):
                recorder.insert_events(stored[i : i + BATCH])
        last = recorder.max_notification_id()
    finally:
        datastore.close()
    assert last == c.events, (last, c.events)
    label = "eventsourcing SQLiteApplicationRecorder, " + (
        "library default" if synchronous == "default" else synchronous)
    return Measurement("c", label, c.events, watch.wall, watch.cpu, f"synchronous={level}")


def _synchronous(datastore: SQLiteDatastore) -> str:
    with datastore.get_connection(commit=False) as conn:
        cur = conn.cursor()
        cur.execute("PRAGMA synchronous")
        return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[cur.fetchone()[0]]


class LoggedAccount(Aggregate):
    """The eventsourcing library's analogue of the log: one aggregate, one event per fact."""

    def __init__(self) -> None:
        self.recorded = 0

    @event("Recorded")
    def record(self, kind: str, payload: str) -> None:
        self.recorded += 1


def eventsourcing_application(c: Corpus, path: Path) -> Measurement:
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                           "SQLITE_DBNAME": str(path)})
    try:
        account = LoggedAccount()
        app.save(account)
        facts = [(kind, payload.decode()) for _seq, kind, _k, _v, _r, payload, _h in c.rows]
        watch = Stopwatch()
        with watch.running():
            for i in range(0, len(facts), BATCH):
                for kind, text in facts[i : i + BATCH]:
                    account.record(kind, text)
                app.save(account)
        last = app.recorder.max_notification_id()
        level = _synchronous(app.recorder.datastore)  # type: ignore[attr-defined]
    finally:
        app.close()
    assert last == c.events + 1, (last, c.events)  # and the aggregate's creation
    return Measurement("c", "eventsourcing Application + Aggregate, library default", c.events,
                       watch.wall, watch.cpu, f"synchronous={level}")


async def writer_ingest(
    batches: Sequence[Sequence[Event]], path: Path, synchronous: Literal["NORMAL", "FULL"],
    *, pipelined: bool = False,
) -> Measurement:
    """`Writer.ingest` of each batch in turn, or (`pipelined`) `Writer.ingest_all` of
    them all: each batch folds while the one before it commits."""
    log = await EventLog.open(path, synchronous=synchronous)
    try:
        # Workload events carry their recv_ts, so the clock stamps nothing.
        writer = await Writer.open(log, clock=lambda: workload.T0)
        watch = Stopwatch()
        appended = 0
        with watch.running():
            if pipelined:
                appended = (await writer.ingest_all(batches)).appended
            else:
                for batch in batches:
                    appended += (await writer.ingest(batch)).appended
    finally:
        await log.close()
    n = sum(len(b) for b in batches)
    assert appended == n, (appended, n)
    call = "ingest_all" if pipelined else "ingest"
    return Measurement("d", f"kernel Writer.{call}, {synchronous}", n, watch.wall, watch.cpu)
