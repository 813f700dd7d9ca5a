"""The writer's lock: exactly one process appends to an event log.

`WriterLock.acquire(db)` takes an exclusive, non-blocking `flock` on ``<db>.lock``, a
file beside the database (beside the real file when `db` is a symlink), and writes
the holder's pid into it. A second writer, in this process or another, gets
`LogLocked` at once, naming the log and the holder's pid. Readers never take it.

Why `flock` and not a pid file: the OS drops the lock when its descriptor closes,
which includes the process dying by SIGKILL, so nothing stale can outlive a crash.
The pid in the file is informational only (a crash leaves the last holder's pid
behind; the next holder overwrites it). Why `flock` and not `fcntl`/`lockf` record
locks: those belong to the process, so a second open in the same process would
silently share them; `flock` belongs to the open file, so it refuses that too.
The descriptor is close-on-exec: a child process never inherits the lock.

The lock file needs a local filesystem (`flock` on NFS is advisory at best) and is
never deleted: removing it while another process waits to open it would let two
writers lock two different files of one name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from kernel.errors import LogError, LogLocked

_MAX_PID_BYTES = 32


def lock_path(db: str | Path) -> Path:
    """The lock file of the log at `db`: ``events.db`` -> ``events.db.lock``."""
    real = Path(os.path.realpath(db))
    return real.with_name(real.name + ".lock")


class WriterLock:
    """A held writer lock. Release it with `release()` (or let the process end)."""

    def __init__(self, fd: int, path: Path, db: Path) -> None:
        self._fd: int | None = fd
        self.path = path
        self.db = db

    @classmethod
    def acquire(cls, db: str | Path) -> WriterLock:
        """Take the writer lock of the log at `db` or raise `LogLocked` without waiting.
        Raises `LogError` if the lock file cannot be opened at all."""
        db = Path(db)
        path = lock_path(db)
        try:
            # No O_TRUNC: until the lock is ours, the file holds the holder's pid.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise LogError(f"cannot open the writer lock {path}: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            holder = f"pid {pid}" if pid is not None else "a process whose pid is unknown"
            raise LogLocked(
                f"the event log {db} has another writer ({holder} holds {path});"
                " stop it first (readers such as snapshot, tail and verify need no lock)",
                path=str(db), pid=pid,
            ) from None
        except OSError as e:
            os.close(fd)
            raise LogError(f"cannot lock {path}: {e.strerror}") from e
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid is informational; the lock is held either way
        return cls(fd, path, db)

    @classmethod
    def check(cls, db: str | Path) -> None:
        """Raise `LogLocked` if a writer holds the log at `db` now, without keeping the
        lock: for refusing early, before work a second writer must not do (binding a
        port). Only `acquire` makes a writer; a writer that starts between this check
        and its own `acquire` is still refused there. The check holds the lock for
        the instant it takes, so a writer starting at that very instant is refused:
        of two writers starting together one is refused either way."""
        cls.acquire(db).release()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the lock up. Idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # still ours: no newer holder's pid to wipe
        os.close(fd)  # closing the descriptor releases the flock


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, _MAX_PID_BYTES, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
