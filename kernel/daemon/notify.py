"""systemd's notify protocol (sd_notify(3)) without a dependency.

Under `Type=notify`, systemd passes `$NOTIFY_SOCKET`: a datagram socket path, or an
abstract socket when it starts with '@'. Each message is newline-separated `KEY=VALUE`
lines. The service must send `READY=1` once started, `WATCHDOG=1` at least every
`$WATCHDOG_USEC` (send at half that), `STOPPING=1` when it begins to stop, and may send
`STATUS=...` for `systemctl status`. Outside systemd, every call does nothing.

A failed send never raises: losing a status line must not take the kernel down. It is
logged and the call returns False; a missed watchdog ping is systemd's job to notice.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

_log = structlog.get_logger("exkernel.notify")


class Notifier:
    """Sends to `$NOTIFY_SOCKET` (read once, at construction). Not thread-safe; the
    daemon calls it from its event loop. The socket is non-blocking, so a full
    receive queue drops the message instead of stalling the loop."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None
        if not path:
            self._address = None
        elif path.startswith("@"):
            self._address = b"\0" + path[1:].encode()  # abstract namespace
        else:
            self._address = path
        self._watchdog_usec = env.get("WATCHDOG_USEC", "")
        self._watchdog_pid = env.get("WATCHDOG_PID", "")
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """True under systemd (`$NOTIFY_SOCKET` set)."""
        return self._address is not None

    def ready(self) -> bool:
        return self.notify("READY=1")

    def status(self, text: str) -> bool:
        """One line for `systemctl status`; newlines become spaces."""
        return self.notify("STATUS=" + " ".join(text.splitlines()))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog_interval(self) -> float | None:
        """Seconds within which systemd expects `WATCHDOG=1`, or None when no watchdog
        is armed for this process (`$WATCHDOG_PID`, when set, must be our pid)."""
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        if usec <= 0:
            return None
        if self._watchdog_pid:
            try:
                if int(self._watchdog_pid) != os.getpid():
                    return None
            except ValueError:
                return None
        return usec / 1_000_000

    def notify(self, *lines: str) -> bool:
        """Send `lines` as one datagram. True if sent; False when not under systemd or
        when the send failed (logged)."""
        if self._address is None:
            return False
        message = "\n".join(lines).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX,
                                           socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(message, self._address)
        except OSError as e:
            _log.warning("sd_notify failed", message=message.decode(errors="replace"),
                         socket=repr(self._address), error=str(e))
            self.close()
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
