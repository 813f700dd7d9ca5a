"""A real `exkernel run` (embedded sim venue) with its API, for the client's, the
context's and the CLI's tests: a subprocess on a temporary state directory, two tokens
(one that trades, one that only reads), stopped with SIGTERM."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from websockets.exceptions import WebSocketException
from websockets.sync.client import unix_connect

ROOT = Path(__file__).resolve().parent.parent
TRADE = "trade-token-0123456789"
READ = "read-only-token-9876543210"
TRADE_ENV = "EXK_TEST_TRADE_TOKEN"


def config(tmp: Path, *, extra: str = "", trade_env: str = TRADE_ENV) -> Path:
    """A daemon config: a quick sim with a scripted trader, metrics off, two clients."""
    path = tmp / "kernel.toml"
    path.write_text(f"""
[kernel]
state_dir = "{tmp / 'state'}"
status_every_s = 0.5
resync_every_s = 2.0

[metrics]
enabled = false

[venue.sim]
tick_s = 0.05
{extra}

[venue.sim.trader]
every_s = 0.2

[[api.tokens]]
name = "strategy"
scopes = ["read", "trade"]
token_env = "{trade_env}"

[[api.tokens]]
name = "dashboard"
scopes = ["read"]
token_sha256 = "{hashlib.sha256(READ.encode()).hexdigest()}"
""")
    return path


class Daemon:
    """One daemon process at a time on `tmp/state`; `start()` again after `stop()` is a
    restart on the same log."""

    def __init__(self, tmp: Path, *, extra: str = "") -> None:
        self.tmp = tmp
        self.config = config(tmp, extra=extra)
        self.state = tmp / "state"
        self.socket = self.state / "api.sock"
        self.db = self.state / "events.db"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {**os.environ, TRADE_ENV: TRADE}
        self.env.pop("EXKERNEL_API_TOKEN", None)

    def start(self, timeout: float = 30.0) -> Daemon:
        self.spawn()
        self.wait_api(timeout)
        return self

    def spawn(self) -> None:
        """Start the process, without waiting for its API."""
        # Its log lines go to a file: a pipe nobody reads would fill and stop the daemon.
        self._out = (self.tmp / "daemon.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kernel.cli.main", "run", "--config", str(self.config)],
            cwd=ROOT, env=self.env, stdout=self._out, stderr=subprocess.STDOUT)

    def wait_socket(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            assert time.monotonic() < deadline, self.log_text()[-2000:]
            time.sleep(0.05)

    def wait_api(self, timeout: float) -> None:
        """Until a hello with the trade token is answered ok."""
        deadline = time.monotonic() + timeout
        last = "nothing tried"
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the daemon exited {self.proc.returncode}:"
                                     f" {self.log_text()[-4000:]}")
            if self.socket.exists():
                try:
                    with unix_connect(str(self.socket), uri="ws://localhost/",
                                      open_timeout=2) as ws:
                        ws.send(json.dumps({"id": 1, "op": "hello", "token": TRADE}))
                        reply = json.loads(ws.recv(timeout=2))
                        if reply.get("ok"):
                            return
                        last = str(reply)
                except (OSError, WebSocketException, TimeoutError) as e:
                    last = repr(e)
            time.sleep(0.1)
        raise AssertionError(f"the daemon's API did not answer within {timeout} s: {last}")

    def stop(self) -> int:
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._out.close()
        return proc.returncode

    def log_text(self) -> str:
        """What the daemon (every run of it so far) wrote to stdout and stderr."""
        return (self.tmp / "daemon.log").read_text(errors="replace")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def exk(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 60
        ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "EXKERNEL_API_TOKEN"}
    return subprocess.run([sys.executable, "-m", "kernel.cli.main", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})})
