"""What the tests that run the daemon as a subprocess share: starting it, its
NOTIFY_SOCKET (READY=1 and friends), the CLI, and questions to the sim venue server
(`adapters.sim.server`)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent


def start_daemon(cfg: Path, notify: socket.socket, **env: str) -> subprocess.Popen[bytes]:
    full = {**os.environ, "NOTIFY_SOCKET": notify.getsockname(), **env}
    return subprocess.Popen([sys.executable, "-m", "kernel.cli.main", "run", "--config",
                             str(cfg)], cwd=ROOT, env=full, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def wait_ready(notify: socket.socket, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        notify.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if b"READY=1" in notify.recv(4096):
                return
        except TimeoutError:
            break
    raise AssertionError("the daemon did not become ready")


def exk(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kernel.cli.main", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


async def ask(url: str, op: str) -> dict[str, object]:
    """One op of the sim venue server (`quiet`, `truth`), answered."""
    async with connect(url) as ws:
        await ws.send(json.dumps({"id": 1, "op": op, "args": {}}))
        while True:
            reply = json.loads(await ws.recv())
            if reply.get("id") == 1:
                return reply["ok"]  # type: ignore[no-any-return]


class Notifications:
    """READY=1 and friends from a daemon's NOTIFY_SOCKET."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.seen: list[str] = []

    def wait_for(self, line: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while line not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {line!r} within {timeout} s; got {self.seen}"
            self.sock.settimeout(left)
            try:
                self.seen.extend(self.sock.recv(4096).decode().splitlines())
            except TimeoutError:
                continue


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[tuple[Notifications, str]]:
    """A bound NOTIFY_SOCKET for one test, and its path."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        yield Notifications(sock), path
    finally:
        sock.close()
