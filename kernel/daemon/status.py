"""The daemon's status file, for `exkernel status` and for humans at 3 a.m.

The daemon rewrites `status.json` in its state directory every few seconds, atomically
(write a temporary file, then rename). `read_status` tells whether the daemon that wrote
it is still alive.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

STATUS_FILE = "status.json"


class Status(msgspec.Struct, kw_only=True):
    pid: int
    started_at: int  # ns since the epoch
    updated_at: int
    venue: str
    connected: bool
    ready: bool
    last_seq: int
    verdict: str
    worst: list[str] = []  # the non-OK checks, "R3 BTCUSDT WARN PENDING_REPORT"
    stopping: bool = False


def write_status(state_dir: Path, status: Status) -> None:
    path = state_dir / STATUS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(status))
    os.replace(tmp, path)


def read_status(state_dir: Path) -> tuple[Status | None, bool]:
    """The last status written, and whether its process is alive."""
    try:
        status = msgspec.json.decode((state_dir / STATUS_FILE).read_bytes(), type=Status)
    except (FileNotFoundError, msgspec.DecodeError, msgspec.ValidationError):
        return None, False
    try:
        os.kill(status.pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    except PermissionError:  # alive, owned by another user (systemd's DynamicUser)
        alive = True
    return status, alive
