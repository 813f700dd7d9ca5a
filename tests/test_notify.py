"""kernel/daemon/notify.py against real AF_UNIX datagram sockets, as systemd provides them."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from kernel.daemon.notify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket and the NOTIFY_SOCKET value that reaches it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify"
    sock.bind(str(path))
    sock.settimeout(2)
    yield sock, str(path)
    sock.close()


def test_each_message_arrives_as_one_datagram(listener: tuple[socket.socket, str]) -> None:
    sock, address = listener
    n = Notifier({"NOTIFY_SOCKET": address})
    assert n.enabled
    assert n.ready()
    assert sock.recv(4096) == b"READY=1"
    assert n.status("replayed 42 events\nconnecting")
    assert sock.recv(4096) == b"STATUS=replayed 42 events connecting"
    assert n.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert n.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    assert n.notify("READY=1", "STATUS=up")
    assert sock.recv(4096) == b"READY=1\nSTATUS=up"
    n.close()


def test_an_abstract_socket_is_reached_through_an_at_sign() -> None:
    name = f"exkernel-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert n.ready()
        assert sock.recv(4096) == b"READY=1"
        assert n.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_without_notify_socket_every_call_is_a_no_op() -> None:
    n = Notifier({})
    assert not n.enabled
    assert [n.ready(), n.status("x"), n.watchdog(), n.stopping()] == [False] * 4
    assert n.watchdog_interval() is None


def test_a_failed_send_returns_false_and_is_logged(tmp_path: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    with capture_logs() as logs:
        assert n.ready() is False
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["event"] == "sd_notify failed"
    assert "READY=1" in logs[0]["message"]


def test_a_full_receiver_never_blocks_the_sender(listener: tuple[socket.socket, str]) -> None:
    _, address = listener  # never read: its queue fills
    n = Notifier({"NOTIFY_SOCKET": address})
    results: list[bool] = []

    def flood() -> None:
        results.extend(n.status(f"status {i}") for i in range(5000))

    with capture_logs():
        t = threading.Thread(target=flood, daemon=True)
        t.start()
        t.join(timeout=10)
    assert not t.is_alive(), "a send blocked"
    assert results[0] is True
    assert False in results


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "init"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert Notifier(env).watchdog_interval() == expected
