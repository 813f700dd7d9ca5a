"""The append-only SQLite event log: the only I/O under `events/` (the schema of events
at the package's top is pure). `store` holds the log, `schema` its tables and upgrades."""

from events.log.store import (
    GENESIS_HASH,
    SCHEMA_VERSION,
    Checkpoint,
    CorruptLogError,
    EventLog,
    LogError,
    LogLocked,
    Row,
    chain,
    state_hash,
)

__all__ = ["GENESIS_HASH", "SCHEMA_VERSION", "Checkpoint", "CorruptLogError", "EventLog",
           "LogError", "LogLocked", "Row", "chain", "state_hash"]
