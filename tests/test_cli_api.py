"""`exkernel` against a running daemon, as an operator runs it: real subprocesses, the
daemon's real socket, the exit statuses the README documents, and `--json`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from events.codec import decode_logged
from events.log import EventLog
from events.orders import IntentPlaced
from kernel import public
from kernel.cli.api import EXIT_DENIED, EXIT_NO_DAEMON, EXIT_REFUSED
from kernel.client import Client
from tests.client_support import READ, ROOT, TRADE, Daemon, exk

SCHEMA = ROOT / "docs" / "snapshot.schema.json"
AS_TRADER = {"EXKERNEL_API_TOKEN": TRADE}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("cli-api")).start()
    try:
        yield d
    finally:
        assert d.stop() == 0


def api(daemon: Daemon, *args: str, token: str | None = TRADE) -> subprocess.CompletedProcess[str]:
    env = {} if token is None else {"EXKERNEL_API_TOKEN": token}
    return exk(*args, "--state-dir", daemon.state, env=env)


def as_json(out: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def intents_logged(db: Path) -> list[IntentPlaced]:
    async def read() -> list[IntentPlaced]:
        log = await EventLog.open(db, readonly=True)
        try:
            return [e async for r in log.rows(kinds=["intent_placed"])
                    if isinstance(e := decode_logged(r.payload), IntentPlaced)]
        finally:
            await log.close()
    return asyncio.run(read())


PLACE = ("intents", "place", "--symbol", "BTCUSDT", "--side", "buy", "--type", "limit",
         "--qty", "0.010", "--price", "50000.0")


def test_place_prints_its_seq_and_a_repeat_is_a_duplicate(daemon: Daemon) -> None:
    first = api(daemon, *PLACE, "--id", "cli-1", "--json")
    assert first.returncode == 0, first.stderr
    doc = as_json(first)
    assert doc == {"intent_id": "cli-1", "seq": doc["seq"], "duplicate": False}
    [e] = [e for e in intents_logged(daemon.db) if e.intent_id == "cli-1"]
    assert e.strategy == "cli" and e.price == Decimal("50000.0") and e.qty == Decimal("0.010")
    again = api(daemon, *PLACE, "--id", "cli-1", "--json")
    assert again.returncode == 0 and as_json(again) == {**doc, "duplicate": True}
    text = api(daemon, *PLACE, "--id", "cli-1")
    assert text.returncode == 0 and "duplicate" in text.stdout and str(doc["seq"]) in text.stdout


def test_a_conflict_or_a_rejection_exits_4_naming_code_and_field(daemon: Daemon) -> None:
    assert api(daemon, *PLACE, "--id", "cli-2").returncode == 0
    conflict = api(daemon, *PLACE[:-1], "50001.0", "--id", "cli-2", "--json")
    assert conflict.returncode == EXIT_REFUSED
    assert as_json(conflict)["error"]["code"] == "conflict"
    off_tick = api(daemon, *PLACE[:-1], "50000.05", "--id", "cli-3", "--json")
    assert off_tick.returncode == EXIT_REFUSED
    error = as_json(off_tick)["error"]
    assert error["code"] == "rejected" and error["field"].endswith("price")
    assert "rejected" in off_tick.stderr and "0.1" in off_tick.stderr  # the tick, in words
    assert "cli-3" not in {e.intent_id for e in intents_logged(daemon.db)}
    missing = api(daemon, "intents", "cancel", "cli-never", "--json")
    assert missing.returncode == EXIT_REFUSED
    assert as_json(missing)["error"]["code"] == "not_found"


def test_amend_cancel_and_list(daemon: Daemon) -> None:
    assert api(daemon, *PLACE, "--id", "cli-4").returncode == 0
    amended = api(daemon, "intents", "amend", "cli-4", "--price", "50010.0", "--json")
    assert amended.returncode == 0, amended.stderr
    assert as_json(amended)["revision"] == 1  # the current revision + 1, looked up
    listed = as_json(api(daemon, "intents", "list", "--json"))
    [intent] = [i for i in listed["intents"] if i["intent_id"] == "cli-4"]
    assert intent["price"] == "50010.0" and intent["revision"] == 1
    assert listed["seq"] >= as_json(amended)["seq"]
    canceled = api(daemon, "intents", "cancel", "cli-4", "--json")
    assert canceled.returncode == 0 and not as_json(canceled)["duplicate"]
    again = api(daemon, "intents", "cancel", "cli-4", "--json")
    assert again.returncode == 0 and as_json(again)["duplicate"]
    text = api(daemon, "intents", "list")
    assert text.returncode == 0 and "cli-4" in text.stdout and "BTCUSDT buy limit" in text.stdout
    stale = api(daemon, "intents", "amend", "cli-4", "--qty", "0.020", "--revision", "1")
    assert stale.returncode == EXIT_REFUSED


def test_halt_refuses_new_intents_until_resume(daemon: Daemon) -> None:
    halted = api(daemon, "halt", "--reason", "cli test", "--json")
    assert halted.returncode == 0, halted.stderr
    try:
        refused = api(daemon, *PLACE, "--id", "cli-5", "--json")
        assert refused.returncode == EXIT_REFUSED
        assert as_json(refused)["error"]["code"] == "halted"
        status = api(daemon, "status", "--json")
        assert status.returncode == 0 and as_json(status)["halted"] is True
    finally:
        resumed = api(daemon, "resume", "--reason", "cli test over", "--json")
    assert resumed.returncode == 0 and as_json(resumed)["seq"] > as_json(halted)["seq"]
    assert api(daemon, *PLACE, "--id", "cli-5").returncode == 0


def test_tokens_refused_missing_or_without_the_scope(daemon: Daemon, tmp_path: Path) -> None:
    forbidden = api(daemon, "halt", "--reason", "x", "--json", token=READ)
    assert forbidden.returncode == EXIT_DENIED
    assert as_json(forbidden)["error"]["code"] == "forbidden"
    wrong = api(daemon, "intents", "list", token="wrong")
    assert wrong.returncode == EXIT_DENIED and "unauthorized" in wrong.stderr
    none = api(daemon, "intents", "list", token=None)
    assert none.returncode == 78 and "EXKERNEL_API_TOKEN" in none.stderr
    token_file = tmp_path / "token"
    token_file.write_text(READ + "\n")
    listed = exk("intents", "list", "--state-dir", daemon.state, "--token-file", token_file)
    assert listed.returncode == 0, listed.stderr


def test_no_running_daemon_exits_6(tmp_path: Path) -> None:
    out = exk("intents", "list", "--state-dir", tmp_path, "--json", env=AS_TRADER)
    assert out.returncode == EXIT_NO_DAEMON
    assert as_json(out)["error"]["code"] == "unreachable"


def test_status_asks_the_api_and_says_so(daemon: Daemon) -> None:
    live = api(daemon, "status", "--json")
    assert live.returncode == 0, live.stderr
    doc = as_json(live)
    assert doc["source"] == "api" and doc["pid"] == daemon.pid and doc["running"]
    assert "source: the daemon's API" in live.stderr
    text = api(daemon, "status")
    assert text.returncode == 0 and text.stdout.startswith("running (pid")
    from_file = api(daemon, "status", "--json", token=None)
    assert from_file.returncode == 0
    assert as_json(from_file)["source"] == "file" and as_json(from_file)["pid"] == daemon.pid
    assert "source: the status file" in from_file.stderr and "no API token" in from_file.stderr


def test_tail_follows_through_the_api_and_falls_back_to_the_file(daemon: Daemon) -> None:
    def follow(token: str | None) -> tuple[list[dict[str, Any]], str]:
        env = {k: v for k, v in os.environ.items() if k != "EXKERNEL_API_TOKEN"}
        if token is not None:
            env["EXKERNEL_API_TOKEN"] = token
        proc = subprocess.Popen(
            [sys.executable, "-m", "kernel.cli.main", "tail", "-f", "--json", "--since", "0",
             "--state-dir", str(daemon.state)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stderr is not None
        raw = [proc.stdout.readline() for _ in range(40)]
        proc.stdout.close()  # as `| head -40` does: the follower ends quietly
        try:
            status = proc.wait(timeout=20)
        finally:
            proc.kill()
        err = proc.stderr.read()
        assert status == 0 and all(raw), (status, raw[-1:], err)
        return [json.loads(line) for line in raw], err

    via_api, err = follow(READ)
    assert "source: the daemon's API" in err
    assert [x["seq"] for x in via_api] == list(range(1, 41))
    via_file, err = follow(None)
    assert "source: the log file" in err and "no API token" in err
    assert via_file == via_api  # the same lines from either source


def test_snapshot_json_is_the_public_form_the_api_sends(daemon: Daemon) -> None:
    assert api(daemon, *PLACE, "--id", "cli-6").returncode == 0
    out = exk("snapshot", "--db", daemon.db, "--config", daemon.config, "--json")
    assert out.returncode == 0, out.stderr
    snap = public.decode(out.stdout)  # forbid_unknown_fields: exactly the public form
    assert "cli-6" in {i.intent_id for i in snap.intents}
    doc = json.loads(out.stdout)
    assert "journals" not in out.stdout and "wallets" not in doc["k"]
    if SCHEMA.exists():
        import jsonschema
        jsonschema.validate(doc, json.loads(SCHEMA.read_text()))

    async def from_api(seq: int) -> public.PublicSnapshot:
        async with Client.connect(unix_path=daemon.socket, token=READ) as c:
            return await c.get_snapshot(seq=seq)

    at = exk("snapshot", "--db", daemon.db, "--config", daemon.config, "--at", str(snap.seq),
             "--json")
    assert json.loads(at.stdout) == doc  # the file's form at one seq does not change
    assert msgspec.to_builtins(asyncio.run(from_api(snap.seq))) == msgspec.to_builtins(snap)


def test_every_api_command_documents_its_options() -> None:
    for command in (("intents", "place"), ("intents", "amend"), ("intents", "cancel"),
                    ("intents", "list"), ("halt",), ("resume",), ("status",), ("tail",)):
        out = exk(*command, "--help")
        assert out.returncode == 0, command
        for option in ("--state-dir", "--token-file", "--json"):
            assert option in out.stdout, (command, option)


def test_commands_wait_no_longer_than_their_timeout(tmp_path: Path) -> None:
    # A socket that accepts and never answers: a hung daemon.
    import socket
    path = tmp_path / "api.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    try:
        started = time.monotonic()
        out = exk("intents", "list", "--state-dir", tmp_path, "--timeout", "1", env=AS_TRADER)
        assert time.monotonic() - started < 10
        assert out.returncode == EXIT_NO_DAEMON, out.stderr
    finally:
        server.close()
