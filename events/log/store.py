"""The append-only event log: one SQLite file, written by one connection of one process.

Tables (schema version 2):

* ``events(seq, kind, dedup_key UNIQUE, venue_ts, recv_ts, payload, hash)``: ``seq``
  counts from 1 with no gaps; ``payload`` is the event's JSON; ``hash`` is
  ``sha256(previous hash || seq as 8 big-endian bytes || payload)``, the first row's
  previous hash being 32 zero bytes, so any edit of a stored row breaks the chain.
* ``checkpoints(seq, state, hash, state_hash)``: the fold state after ``seq`` (msgpack),
  the chain hash at that row, and ``sha256(state)``, written in the same transaction as
  the batch it follows. Start-up trusts a checkpoint only if its state still hashes
  to ``state_hash`` (kernel/daemon/replay.py).
* ``meta(key, value)``: ``schema_version``.

Schema history (events/log/schema.py): version 2 added ``checkpoints.state_hash``. A
writer opening a version-1 log upgrades it in one transaction (the column is added; the
old rows keep NULL, "never hashed", and are not trusted at start-up); readers open
either version unchanged.

One writer: a non-readonly open takes the writer lock (events/log/lock.py) before it
touches the file, and `close()` gives it back; a second writer gets `LogLocked` naming
the holder's pid. Readonly opens take no lock.

Triggers refuse UPDATE and DELETE on ``events`` and ``checkpoints``. The UNIQUE
``dedup_key`` is the guard against double ingestion: an insert of a key already logged
fails (`KeyLogged`) and the whole batch with it. The writer relies on it: while no key
has been coming twice, it appends without looking the batch's keys up first, and screens
a refused batch again with a lookup (kernel/daemon/writer.py).

Durability (`synchronous`), in WAL mode:

* ``FULL``: a batch reported committed survives a power loss or OS crash (fsync on
  every commit).
* ``NORMAL``: a batch reported committed survives the process being killed; the last
  few batches may be lost on a power loss or OS crash (the log stays consistent, never
  torn). Faster; the venue is asked again on restart, and dedup absorbs the redelivery.

WAL checkpoints (copying the WAL back into the database file, with its fsyncs) do not
run inside a commit, as SQLite's automatic checkpoint would, stalling the append that
crosses its threshold: the writer's connection has ``wal_autocheckpoint=0`` and, once
``CHECKPOINT_BYTES`` of payload were appended since the last one, a PASSIVE checkpoint
copies the WAL on a connection of its own while the writer goes on; the next append
after it finished copies, on the writer's connection, just the frames appended
meanwhile, so the transaction after that starts the WAL file over. One runs at a time;
if one fails, the next append raises its `LogError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal, cast

import aiosqlite
import msgspec

from events.codec import TAGS, Event, encode
from events.log.lock import WriterLock
from events.log.schema import READABLE_VERSIONS, SCHEMA_VERSION, create_or_upgrade, schema_version
from kernel.errors import CorruptLogError, KeyLogged, LogError, LogLocked

GENESIS_HASH = bytes(32)
Synchronous = Literal["NORMAL", "FULL"]

_INSERT = (
    "INSERT INTO events (seq, kind, dedup_key, venue_ts, recv_ts, payload, hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_Row = tuple[int, str, str, int, int, bytes, bytes]
#: A batch's rows in one statement: SQLite reads them from one JSON array (per row: seq,
#: kind, dedup key, venue_ts, recv_ts, and its payload's offset and length) and two
#: concatenated blobs (the payloads; the 32-byte hashes, in row order). `executemany`
#: binds each row holding the GIL; this is one step with the GIL released, so the writer
#: folds its next batch while SQLite inserts this one (`Writer.ingest_all`). The rows
#: come out of `json_each` in array order; the append-only trigger refuses any other.
#: `json_extract`, not `->>`, for SQLite before 3.38; a SQLite without JSON functions
#: gets `executemany`.
_INSERT_PACKED = (
    "INSERT INTO events (seq, kind, dedup_key, venue_ts, recv_ts, payload, hash)"
    " SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
    " json_extract(value, '$[2]'), json_extract(value, '$[3]'),"
    " json_extract(value, '$[4]'), substr(?2, json_extract(value, '$[5]'),"
    " json_extract(value, '$[6]')), substr(?3, key * 32 + 1, 32) FROM json_each(?1)"
)
#: `_INSERT_PACKED`'s parameters: the rows' JSON, their payloads, their hashes.
_Packed = tuple[bytes, bytes, bytes]
_packer = msgspec.json.Encoder()
_INSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (seq, state, hash, state_hash) VALUES (?, ?, ?, ?)"
)
_LOOKUP_CHUNK = 900
#: Payload bytes appended between two WAL checkpoints (SQLite's automatic default is
#: 1,000 pages of WAL, about 4 MB: a row takes roughly twice its payload).
CHECKPOINT_BYTES = 2_000_000


class Row(msgspec.Struct, frozen=True, array_like=True):
    seq: int
    kind: str
    dedup_key: str
    venue_ts: int
    recv_ts: int
    payload: bytes
    hash: bytes


class Checkpoint(msgspec.Struct, frozen=True, array_like=True):
    seq: int
    state: bytes
    #: The chain hash of the event row at `seq`.
    hash: bytes
    #: sha256 of `state` as written; None for a checkpoint of a version-1 log.
    state_hash: bytes | None = None


def _transact(db: sqlite3.Connection, rows: list[_Row] | _Packed,
              checkpoint: tuple[int, bytes, bytes, bytes] | None,
              handed: threading.Event | None) -> None:
    """One append's transaction, run whole in aiosqlite's thread (`EventLog.append`).
    Packed rows without a checkpoint are one statement, which is its own transaction.
    `handed` is set once this thread holds the rows (see `EventLog.append`)."""
    if handed is not None:
        handed.set()
    packed = isinstance(rows, tuple)
    if not packed or checkpoint is not None:
        db.execute("BEGIN IMMEDIATE")
    try:
        if packed:
            db.execute(_INSERT_PACKED, rows)
        else:
            db.executemany(_INSERT, rows)
        if checkpoint is not None:
            db.execute(_INSERT_CHECKPOINT, checkpoint)
        if db.in_transaction:
            db.execute("COMMIT")
    except BaseException:
        # SQLite may have rolled back already (a full disk does); keep its error.
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


async def _has_json(db: aiosqlite.Connection) -> bool:
    """Whether this SQLite has the JSON functions `_INSERT_PACKED` needs (built in since
    3.38, and in most builds before it)."""
    try:
        await db.execute_fetchall("SELECT json_extract(value, '$[0]') FROM json_each('[[1]]')")
    except sqlite3.OperationalError:
        return False
    return True


def chain(prev: bytes, seq: int, payload: bytes) -> bytes:
    return hashlib.sha256(prev + seq.to_bytes(8, "big") + payload).digest()


def state_hash(state: bytes) -> bytes:
    """The hash stored beside a checkpoint's state bytes."""
    return hashlib.sha256(state).digest()


class EventLog:
    """The log. Open it with `EventLog.open`; one writer appends, any number may read."""

    def __init__(self, db: aiosqlite.Connection, path: Path, readonly: bool,
                 lock: WriterLock | None = None) -> None:
        self._db = db
        #: A writer's third connection, for WAL checkpoints off the append's path.
        self._checkpointer: aiosqlite.Connection | None = None
        #: A writer's read-only connection for `lookup_old`.
        self._old_reader: aiosqlite.Connection | None = None
        self._wal_checkpoint: asyncio.Task[None] | None = None
        self._since_checkpoint = 0
        #: Why this object may no longer append (an append canceled mid-commit).
        self._torn: str | None = None
        #: Whether appends insert a batch in one statement (`_INSERT_PACKED`): SQLite
        #: has JSON functions (a writer checks at open).
        self.packed = False
        self._lock = lock
        self.path = path
        self.readonly = readonly
        self.version = SCHEMA_VERSION
        self.last_seq = 0
        self.last_hash = GENESIS_HASH

    @classmethod
    async def open(
        cls, path: str | Path, *, synchronous: Synchronous = "NORMAL", readonly: bool = False
    ) -> EventLog:
        """Open the log at `path`. A writer (not `readonly`) first takes the writer lock,
        and raises `LogLocked` if another process (or another open here) holds it; it
        creates the file if need be, and upgrades an older schema. A reader never
        writes and needs no lock. Either raises `LogError` if the file is not a log."""
        path = Path(path)
        if readonly and not path.exists():
            raise LogError(f"no event log at {path}")
        lock = None
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = WriterLock.acquire(path)  # before replay, before any write
        try:
            try:
                if readonly:
                    db = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True,
                                                 isolation_level=None)
                else:
                    db = await aiosqlite.connect(path, isolation_level=None)
            except sqlite3.Error as e:
                raise LogError(f"cannot open event log {path}: {e}") from e
            try:
                return await cls._prepare(db, path, readonly, synchronous, lock)
            except BaseException:
                await db.close()
                raise
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    @classmethod
    async def _prepare(
        cls, db: aiosqlite.Connection, path: Path, readonly: bool, synchronous: Synchronous,
        lock: WriterLock | None,
    ) -> EventLog:
        try:
            await db.execute("PRAGMA busy_timeout=5000")
            if not readonly:
                await db.execute("PRAGMA journal_mode=WAL")
                await db.execute(f"PRAGMA synchronous={synchronous}")
                await db.execute("PRAGMA wal_autocheckpoint=0")  # see the module's doc
                await create_or_upgrade(db, path)
            log = cls(db, path, readonly, lock)
            await log._check_schema()
            if not readonly:
                log.packed = await _has_json(db)
            async with db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1") as cur:
                last = await cur.fetchone()
        except sqlite3.Error as e:
            raise LogError(f"cannot open event log {path}: {e}") from e
        if last is not None:
            log.last_seq, log.last_hash = last[0], last[1]
        return log

    async def _check_schema(self) -> None:
        found = await schema_version(self._db, self.path)
        if found not in READABLE_VERSIONS:
            raise LogError(f"{self.path}: schema version {found}, expected one of"
                           f" {', '.join(sorted(READABLE_VERSIONS))}")
        self.version = found

    async def close(self) -> None:
        """Close the connection, then give the writer lock back (a writer's)."""
        try:
            if self._wal_checkpoint is not None:
                # Its failure is moot now: the last connection's close checkpoints.
                await asyncio.gather(self._wal_checkpoint, return_exceptions=True)
            if self._checkpointer is not None:
                await self._checkpointer.close()
            if self._old_reader is not None:
                await self._old_reader.close()
            await self._db.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    async def lookup(self, keys: Iterable[str]) -> dict[str, tuple[int, bytes]]:
        """The logged (seq, payload) of each of `keys` that is already in the log."""
        return await self._lookup(self._db, keys)

    async def lookup_old(self, keys: Iterable[str]) -> dict[str, tuple[int, bytes]]:
        """As `lookup`, for keys that no row this kernel appends can hold (a funding
        payment's legacy key: only older versions wrote one). A connection of its own
        answers, so the lookup does not wait behind an append in flight (which it
        cannot see, and need not)."""
        if self.readonly:
            return await self.lookup(keys)
        if self._old_reader is None:
            try:
                self._old_reader = await aiosqlite.connect(
                    f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
                await self._old_reader.execute("PRAGMA busy_timeout=5000")
            except sqlite3.Error as e:
                raise LogError(f"dedup lookup failed: {e}") from e
        return await self._lookup(self._old_reader, keys)

    @staticmethod
    async def _lookup(db: aiosqlite.Connection, keys: Iterable[str],
                      ) -> dict[str, tuple[int, bytes]]:
        found: dict[str, tuple[int, bytes]] = {}
        wanted = list(dict.fromkeys(keys))
        try:
            for i in range(0, len(wanted), _LOOKUP_CHUNK):
                chunk = wanted[i : i + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT dedup_key, seq, payload FROM events WHERE dedup_key IN ({marks})"
                # One round trip to aiosqlite's thread.
                for key, seq, payload in await db.execute_fetchall(sql, chunk):
                    found[key] = (seq, payload)
        except sqlite3.Error as e:
            raise LogError(f"dedup lookup failed: {e}") from e
        return found

    async def append(
        self,
        events: Sequence[Event],
        checkpoint: tuple[int, bytes] | None = None,
        keys: Sequence[str] | None = None,
        handed: threading.Event | None = None,
    ) -> int:
        """Append `events` (already deduplicated and admitted) in one transaction, with an
        optional checkpoint `(seq, state)` of the fold after one of them. All or nothing.
        `keys` are the events' dedup keys, when the caller has them at hand already.
        Returns the last seq. Raises `LogError` (`KeyLogged` for a dedup key already
        logged); the log is then as before the call.
        `handed` is set when SQLite's thread has taken the rows: a caller with work to do
        meanwhile (`Writer.ingest_all`) waits for it, releasing the GIL, which that
        thread needs to start; else it waits for the interpreter's switch interval.
        Canceled while SQLite commits, it may still commit: this object then refuses
        to append again (`LogError`), and a reopened log knows its last seq."""
        if self._torn is not None:
            raise LogError(self._torn)
        await self._checkpoint_outcome()
        seq, prev = self.last_seq, self.last_hash
        # Per row: seq, kind, dedup key, venue_ts, recv_ts, and where its payload is in
        # the payloads joined (`_INSERT_PACKED`'s JSON array).
        meta: list[tuple[int, str, str, int, int, int, int]] = []
        payloads: list[bytes] = []
        hashes: list[bytes] = []
        offset = 1  # SQLite's substr counts from 1
        cp_hash = None
        if keys is None:
            keys = [ev.dedup_key for ev in events]
        for ev, key in zip(events, keys, strict=True):
            seq += 1
            payload = encode(ev)
            prev = chain(prev, seq, payload)
            meta.append((seq, TAGS[type(ev)], key, ev.venue_ts, ev.recv_ts, offset,
                         len(payload)))
            offset += len(payload)
            payloads.append(payload)
            hashes.append(prev)
            if checkpoint is not None and checkpoint[0] == seq:
                cp_hash = prev
        if checkpoint is not None and cp_hash is None:
            raise LogError(f"checkpoint seq {checkpoint[0]} is not in this batch")
        cp_row = None if checkpoint is None else (
            checkpoint[0], checkpoint[1], cp_hash, state_hash(checkpoint[1]))
        batch: list[_Row] | _Packed = (
            (_packer.encode(meta), b"".join(payloads), b"".join(hashes)) if self.packed
            else [(*m[:5], p, h) for m, p, h in zip(meta, payloads, hashes, strict=True)])
        try:
            # One trip to aiosqlite's thread, not one per statement: BEGIN, the rows and
            # COMMIT in one call. aiosqlite has no public call for it (its maintainer on
            # running statements back to back in its thread: omnilib/aiosqlite#19).
            in_thread = cast(Callable[..., Awaitable[None]], self._db._execute)
            await in_thread(_transact, self._db._conn, batch, cp_row, handed)
        except sqlite3.IntegrityError as e:
            # The append-only trigger refuses a reused key (and a seq out of order: then
            # no key of the batch is logged). Which one, the log says, not the message.
            logged = await self.lookup(keys)
            if logged:
                raise KeyLogged(f"append of {len(meta)} events refused: dedup key"
                                f" {next(iter(logged))!r} is logged already") from e
            raise LogError(f"append of {len(meta)} events failed: {e}") from e
        except sqlite3.Error as e:
            raise LogError(f"append of {len(meta)} events failed: {e}") from e
        except asyncio.CancelledError:
            # SQLite's thread finishes the transaction regardless: whether it committed
            # is unknown here, so this object's last seq and hash may be behind the file.
            self._torn = ("an append was canceled before its commit was known: reopen"
                          f" the log ({self.path}) to append again")
            raise
        self.last_seq, self.last_hash = seq, prev
        self._since_checkpoint += offset - 1
        if self._since_checkpoint >= CHECKPOINT_BYTES and self._wal_checkpoint is None:
            self._since_checkpoint = 0
            self._wal_checkpoint = asyncio.create_task(self._checkpoint_wal())
        return seq

    async def _checkpoint_wal(self) -> None:
        """The bulk of a checkpoint, beside the writer: every frame committed when it
        starts."""
        try:
            if self._checkpointer is None:
                self._checkpointer = await aiosqlite.connect(self.path, isolation_level=None)
                await self._checkpointer.execute("PRAGMA busy_timeout=5000")
            await self._checkpointer.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as e:
            raise LogError(f"WAL checkpoint of {self.path} failed: {e}") from e

    async def _checkpoint_outcome(self) -> None:
        """After a checkpoint beside the writer finished: raise its `LogError` if it
        failed; else copy, on the writer's own connection, the few frames appended while
        it ran. The WAL is then wholly in the database, and the transaction that follows
        starts the WAL file over (it only can when no frame is left behind: without this
        step a busy writer always appends during the checkpoint, and the WAL grows
        without end)."""
        task = self._wal_checkpoint
        if task is None or not task.done():
            return
        self._wal_checkpoint = None
        task.result()
        try:
            await self._db.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as e:
            raise LogError(f"WAL checkpoint of {self.path} failed: {e}") from e

    async def checkpoint(self, seq: int, state: bytes) -> None:
        """Checkpoint the fold state after the last event (`seq` must be `last_seq`)."""
        if self._torn is not None:
            raise LogError(self._torn)
        if seq != self.last_seq or seq == 0:
            raise LogError(f"checkpoint seq {seq} is not the last event {self.last_seq}")
        try:
            await self._db.execute(_INSERT_CHECKPOINT,
                                   (seq, state, self.last_hash, state_hash(state)))
        except sqlite3.Error as e:
            raise LogError(f"checkpoint at seq {seq} failed: {e}") from e

    async def refresh(self) -> int:
        """Re-read the last seq (for a reader following a log another process appends to)."""
        sql = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
        async with self._db.execute(sql) as cur:
            last = await cur.fetchone()
        if last is not None:
            self.last_seq, self.last_hash = last[0], last[1]
        return self.last_seq

    async def rows(
        self,
        since: int = 0,
        until: int | None = None,
        kinds: Sequence[str] = (),
        chunk: int = 20000,
    ) -> AsyncGenerator[Row, None]:
        """Rows with `since < seq <= until`, in order, optionally only of `kinds`."""
        where = ["seq > ?"]
        params: list[object] = [since]
        if until is not None:
            where.append("seq <= ?")
            params.append(until)
        if kinds:
            where.append(f"kind IN ({','.join('?' * len(kinds))})")
            params.extend(kinds)
        sql = (
            "SELECT seq, kind, dedup_key, venue_ts, recv_ts, payload, hash FROM events"
            f" WHERE {' AND '.join(where)} ORDER BY seq"
        )
        try:
            async with self._db.execute(sql, params) as cur:
                while batch := await cur.fetchmany(chunk):
                    for r in batch:
                        yield Row(*r)
        except sqlite3.Error as e:
            raise LogError(f"read failed: {e}") from e

    async def payloads(self, since: int = 0, until: int | None = None, chunk: int = 20000
                       ) -> AsyncIterator[list[tuple[int, bytes, str]]]:
        """(seq, payload, dedup key) rows in chunks: the fast path for replay."""
        sql = ("SELECT seq, payload, dedup_key FROM events WHERE seq > ? AND seq <= ?"
               " ORDER BY seq")
        hi = until if until is not None else 2**63 - 1
        try:
            async with self._db.execute(sql, (since, hi)) as cur:
                while batch := await cur.fetchmany(chunk):
                    yield cast("list[tuple[int, bytes, str]]", batch)
        except sqlite3.Error as e:
            raise LogError(f"read failed: {e}") from e

    def _checkpoint_columns(self) -> str:
        # A version-1 log (open read-only, never upgraded) has no state_hash column.
        return "seq, state, hash, " + ("NULL" if self.version == "1" else "state_hash")

    async def latest_checkpoint(self, at_most: int | None = None) -> Checkpoint | None:
        """The newest checkpoint with `seq <= at_most` (default: of all)."""
        hi = at_most if at_most is not None else 2**63 - 1
        sql = (f"SELECT {self._checkpoint_columns()} FROM checkpoints WHERE seq <= ?"
               " ORDER BY seq DESC LIMIT 1")
        async with self._db.execute(sql, (hi,)) as cur:
            row = await cur.fetchone()
        return None if row is None else Checkpoint(*row)

    async def last_checkpoint_seq(self) -> int:
        """The seq of the newest checkpoint stored, sound or not (0: none)."""
        async with self._db.execute("SELECT coalesce(max(seq), 0) FROM checkpoints") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def checkpoints(self) -> list[Checkpoint]:
        sql = f"SELECT {self._checkpoint_columns()} FROM checkpoints ORDER BY seq"
        async with self._db.execute(sql) as cur:
            return [Checkpoint(*r) for r in await cur.fetchall()]

    async def count(self) -> int:
        async with self._db.execute("SELECT count(*) FROM events") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0


__all__ = ["SCHEMA_VERSION", "Checkpoint", "CorruptLogError", "EventLog", "LogError", "LogLocked",
           "Row", "chain", "state_hash"]
