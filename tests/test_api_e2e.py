"""The API of a real `exkernel run` subprocess: resume across a restart under load.

A client follows the event stream from seq 0 while the sim venue floods; the daemon is
stopped (SIGTERM: the client is told `bye shutdown`) and started again on the same log;
the client says hello again and resubscribes from the last seq it saw. Every seq the log
holds up to the last one received arrives exactly once, in order. The token comes from
the environment, as `token_env` says; the TCP listener (port 0) is found in the log.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect, unix_connect

from tests.api_support import rows

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "e2e-token-0123456789"


def config(tmp: Path) -> Path:
    path = tmp / "kernel.toml"
    path.write_text(f"""
[kernel]
state_dir = "{tmp / 'state'}"
status_every_s = 0.5

[metrics]
port = 0

[reconciler]
enabled = false   # no intents here; the API's stream is what is tested

[api]
tcp = true
port = 0

[[api.tokens]]
name = "e2e"
scopes = ["read", "trade"]
token_env = "E2E_API_TOKEN"

[venue.sim]
tick_s = 0.05
flood_per_s = 400

[venue.sim.trader]
every_s = 0.2
""")
    return path


class Daemon:
    def __init__(self, cfg: Path, out: Path) -> None:
        self.out = out
        self.start = out.stat().st_size if out.exists() else 0  # this run's lines only
        env = {**os.environ, "E2E_API_TOKEN": TOKEN}
        with out.open("ab") as f:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kernel.cli.main", "run", "--config", str(cfg)],
                cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)

    def lines(self) -> list[dict[str, Any]]:
        text = self.out.read_bytes()[self.start:].decode()
        return [json.loads(x) for x in text.splitlines() if x.startswith("{")]

    async def listening(self, timeout: float = 30) -> str:
        """The TCP URL, once both listeners are up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.out.read_text()[-3000:]
            urls = [x["url"] for x in self.lines() if x["event"] == "api listening"
                    and "url" in x]
            if urls:
                return str(urls[-1])
            await asyncio.sleep(0.05)
        raise AssertionError(f"the API did not listen within {timeout} s")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


async def follow(sock: Path, since: int, seqs: list[int], until: float | None) -> str | None:
    """Events after `since` into `seqs`, until `until` (monotonic) or the server's bye;
    returns the bye's reason."""
    async with unix_connect(str(sock)) as ws:
        await ws.send(json.dumps({"id": 1, "op": "hello", "token": TOKEN}))
        assert json.loads(await ws.recv())["ok"]
        await ws.send(json.dumps({"id": 2, "op": "subscribe_events", "since": since}))
        assert json.loads(await ws.recv())["ok"]
        unsubscribed = False
        while True:
            if not unsubscribed and until is not None and time.monotonic() > until:
                await ws.send(json.dumps({"id": 3, "op": "unsubscribe", "sub": "s1"}))
                unsubscribed = True
            try:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
            except TimeoutError:
                continue
            if msg.get("id") == 3:
                return None  # the pushes before this reply were read: it closes quickly
            if msg["type"] == "bye":
                return str(msg["reason"])
            seqs.append(msg["seq"])


async def test_resume_without_gaps_or_duplicates_across_a_restart_under_load(
    tmp_path: Path,
) -> None:
    cfg, out = config(tmp_path), tmp_path / "daemon.log"
    sock = tmp_path / "state" / "api.sock"
    first = Daemon(cfg, out)
    seqs: list[int] = []
    try:
        await first.listening()
        follower = asyncio.create_task(follow(sock, 0, seqs, None))
        await asyncio.sleep(2.0)
        assert seqs, "events flowed"
        stopped = asyncio.get_running_loop().run_in_executor(None, first.stop)
        assert await asyncio.wait_for(follower, 20) == "shutdown"
        assert await stopped == 0
        seen_first = len(seqs)
        second = Daemon(cfg, out)
        try:
            url = await second.listening()
            await follow(sock, seqs[-1], seqs, time.monotonic() + 2.0)
            async with connect(url) as ws:  # the TCP listener, same protocol
                await ws.send(json.dumps({"id": "a", "op": "hello", "token": TOKEN}))
                hello = json.loads(await ws.recv())
                assert hello["ok"] and hello["result"]["name"] == "e2e"
                await ws.send(json.dumps({"id": "b", "op": "status"}))
                status = json.loads(await ws.recv())["result"]
                assert status["pid"] == second.proc.pid and status["venue"] == "sim"
        finally:
            assert second.stop() == 0
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
    assert len(seqs) > seen_first > 100, (seen_first, len(seqs))
    assert seqs == list(range(1, seqs[-1] + 1))  # no gap, no duplicate, in order
    logged = [s for s, _, _ in await rows(tmp_path / "state" / "events.db")]
    assert logged[: len(seqs)] == seqs
    assert not sock.exists()  # removed on the way out
