"""The event log's SQLite schema, and its upgrades from older versions.

Version 1: ``meta``, ``events``, ``checkpoints(seq, state, hash)`` and the append-only
triggers. Version 2 adds ``checkpoints.state_hash`` (sha256 of the state bytes). A
writer brings any older version to `SCHEMA_VERSION` in one transaction; a reader
opens any of `READABLE_VERSIONS` as it is. A new version adds a step to `_UPGRADES`.
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from kernel.errors import LogError

SCHEMA_VERSION = "2"
#: Versions a reader opens as they are; a writer upgrades any of them to SCHEMA_VERSION.
READABLE_VERSIONS = frozenset({"1", "2"})

# One statement each: they run inside the writer's one schema transaction
# (executescript would commit whatever transaction is open before it runs).
_CREATE = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    dedup_key TEXT NOT NULL UNIQUE,
    venue_ts INTEGER NOT NULL,
    recv_ts INTEGER NOT NULL,
    payload BLOB NOT NULL,
    hash BLOB NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY,
    state BLOB NOT NULL,
    hash BLOB NOT NULL,
    state_hash BLOB
)""",
    """CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END""",
    # INSERT OR REPLACE deletes the row it collides with without firing DELETE triggers:
    # refuse any insert that does not follow the last row, or reuses a dedup key.
    """CREATE TRIGGER IF NOT EXISTS events_append_only BEFORE INSERT ON events
WHEN NEW.seq <= (SELECT coalesce(max(seq), 0) FROM events)
  OR EXISTS (SELECT 1 FROM events WHERE dedup_key = NEW.dedup_key)
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS checkpoints_append_only BEFORE INSERT ON checkpoints
WHEN EXISTS (SELECT 1 FROM checkpoints WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END""",
)
#: Each step takes a log from the version it is keyed by to the next one.
_UPGRADES = {
    "1": ("ALTER TABLE checkpoints ADD COLUMN state_hash BLOB",),
}


async def schema_version(db: aiosqlite.Connection, path: Path) -> str | None:
    """The file's schema version; None for an empty file. Raises `LogError` for a
    database that is not an event log."""
    async with db.execute("SELECT name FROM sqlite_master WHERE type = 'table'") as cur:
        tables = {r[0] for r in await cur.fetchall()}
    if not tables:
        return None
    if "meta" not in tables:
        raise LogError(f"{path} is not an exchange-kernel event log (it has no meta table)")
    async with db.execute("SELECT value FROM meta WHERE key = 'schema_version'") as cur:
        row = await cur.fetchone()
    return None if row is None else str(row[0])


async def create_or_upgrade(db: aiosqlite.Connection, path: Path) -> None:
    """Create the schema in an empty file, or bring an older one to SCHEMA_VERSION, in
    one transaction: a kill leaves all of it or none. Only the lock holder calls this."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        version = await schema_version(db, path)
        if version is not None and version not in READABLE_VERSIONS:
            raise LogError(f"{path}: schema version {version}, expected one of"
                           f" {', '.join(sorted(READABLE_VERSIONS))}")
        for statement in _CREATE:
            await db.execute(statement)
        if version is None:
            await db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES"
                             " ('schema_version', ?)", (SCHEMA_VERSION,))
        else:
            while version != SCHEMA_VERSION:
                for statement in _UPGRADES[version]:
                    await db.execute(statement)
                version = str(int(version) + 1)
            await db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                             (SCHEMA_VERSION,))
        await db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            await db.execute("ROLLBACK")
        raise
