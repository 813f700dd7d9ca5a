"""The kernel's one exception tree.

::

    KernelError
     ├── EventValidationError (also ValueError)  a payload broke the schema: quarantine it
     ├── LogError                                the event log failed (wraps the driver's error)
     │    ├── CorruptLogError                    the log contradicts itself: stop, run `verify`
     │    ├── LogLocked                          another process is the log's writer: refuse
     │    └── KeyLogged                          an append met a dedup key already logged
     ├── InvariantViolation                      the fold met an impossible state: crash, replay
     ├── ConfigError                             a config value is wrong: refuse to start
     └── VenueError                              the venue failed us
          ├── VenueUnavailable                   retryable: reconnect with backoff
          └── CredentialsRejected                fatal: the venue refused our keys

`EventValidationError` subclasses `ValueError` so that msgspec, which wraps
`ValueError` raised in `__post_init__` during decode, reports it as a
`msgspec.ValidationError` with our message intact.
"""

from __future__ import annotations


class KernelError(Exception):
    """Base of every error the kernel raises on purpose."""


class EventValidationError(KernelError, ValueError):
    """A venue or user payload is not a valid event. It is quarantined, never coerced."""


class LogError(KernelError):
    """The event log could not be read or written."""


class CorruptLogError(LogError):
    """The log's stored rows contradict each other (sequence, hash chain, payload, checkpoint)."""

    def __init__(self, message: str, *, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


class LogLocked(LogError):
    """Another process holds the log's writer lock. `pid` is the holder's as it wrote
    it into the lock file (None if it could not be read); the lock, not the pid, is
    the truth."""

    def __init__(self, message: str, *, path: str, pid: int | None) -> None:
        super().__init__(message)
        self.path = path
        self.pid = pid


class KeyLogged(LogError):
    """An append held a dedup key the log already has (its UNIQUE constraint refused it);
    nothing of the batch was appended. The writer, which appends without looking keys
    up while none have been coming twice, screens the batch again with a lookup."""


class InvariantViolation(KernelError):
    """The fold reached a state that admitted events can never produce."""


class ConfigError(KernelError):
    """A configuration value is missing or wrong."""


class VenueError(KernelError):
    """A venue call failed. Adapters map their library's errors onto these in one place."""


class VenueUnavailable(VenueError):
    """The venue cannot be reached or dropped the connection: retry with backoff."""


class CredentialsRejected(VenueError):
    """The venue refused the credentials: restarting will not help."""
