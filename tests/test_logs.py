"""kernel/daemon/logs.py: what reaches stdout, in JSON and on a terminal, with secrets masked."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from kernel.daemon.logs import REDACTED, configure, is_secret_key


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def json_lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_json_lines_carry_timestamp_level_logger_and_event() -> None:
    buf = io.StringIO()
    configure("info", json=True, stream=buf)
    structlog.get_logger("exkernel.writer").info("committed", seq=42, qty=Decimal("1.50"),
                                                 db=Path("/var/lib/exkernel/events.db"))
    [line] = json_lines(buf)
    assert line["event"] == "committed"
    assert line["level"] == "info"
    assert line["logger"] == "exkernel.writer"
    assert (line["seq"], line["qty"], line["db"]) == (42, "1.50", "/var/lib/exkernel/events.db")
    stamp = datetime.fromisoformat(line["timestamp"])
    assert stamp.utcoffset() == timedelta(0)


def test_a_stream_that_is_not_a_terminal_gets_json() -> None:
    buf = io.StringIO()
    configure("info", stream=buf)
    structlog.get_logger("exkernel").warning("venue disconnected", error="reset")
    assert json_lines(buf)[0]["level"] == "warning"


def test_a_terminal_gets_the_colour_console_format() -> None:
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as tty:
        configure("info", stream=tty)
        structlog.get_logger("exkernel").info("ready", venue="sim")
        out = os.read(master, 65536).decode()
    os.close(master)
    assert "\x1b[" in out  # ANSI colour
    assert "ready" in out and "venue" in out and "sim" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out.splitlines()[0])


def test_console_format_can_be_forced_on_a_pipe_without_colour() -> None:
    buf = io.StringIO()
    configure("info", json=False, stream=buf)
    structlog.get_logger("exkernel").info("ready", api_key="AKIA-leak")
    out = buf.getvalue()
    assert "ready" in out and "\x1b[" not in out
    assert "AKIA-leak" not in out and REDACTED in out


def test_secret_values_are_masked_at_any_depth() -> None:
    buf = io.StringIO()
    configure("debug", json=True, stream=buf)
    structlog.get_logger("exkernel").info(
        "connecting", api_key="AKIA-leak", apiSecret="s3cr3t-leak", token="tok-leak",
        password="pw-leak", dedup_key="fill:BTCUSDT:1", venue="binanceusdm",
        options={"headers": {"Authorization": "Bearer bearer-leak"}, "timeout": 10},
        accounts=[{"name": "main", "private_key": "pk-leak"}],
    )
    raw = buf.getvalue()
    for leak in ("AKIA", "s3cr3t", "tok-leak", "pw-leak", "bearer-leak", "pk-leak"):
        assert leak not in raw
    [line] = json_lines(buf)
    assert line["api_key"] == line["apiSecret"] == line["token"] == REDACTED
    assert line["options"] == {"headers": {"Authorization": REDACTED}, "timeout": 10}
    assert line["accounts"] == [{"name": "main", "private_key": REDACTED}]
    assert line["dedup_key"] == "fill:BTCUSDT:1"
    assert line["venue"] == "binanceusdm"


@pytest.mark.parametrize(
    ("name", "secret"),
    [("api_key", True), ("apiKey", True), ("API_SECRET", True), ("secret", True),
     ("token", True), ("api_token", True), ("password", True), ("db_passwd", True),
     ("private_key", True), ("key", True), ("signing_keys", True), ("Authorization", True),
     ("dedup_key", False), ("position_key", False), ("kind", False), ("seq", False),
     ("keyboard", False), ("venue", False)],
)
def test_is_secret_key(name: str, secret: bool) -> None:
    assert is_secret_key(name) is secret


def test_the_level_filters_what_is_logged() -> None:
    configure("warning", json=True, stream=io.StringIO())
    log = structlog.get_logger("exkernel")
    with capture_logs() as logs:
        log.debug("d")
        log.info("i")
        log.warning("w")
        log.error("e")
    assert [e["event"] for e in logs] == ["w", "e"]
    configure("debug", json=True, stream=io.StringIO())
    with capture_logs() as logs:
        structlog.get_logger("exkernel").debug("d")
    assert [e["event"] for e in logs] == ["d"]


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log level must be one of debug, info"):
        configure("verbose")


def test_exceptions_become_structured_tracebacks() -> None:
    buf = io.StringIO()
    configure("info", json=True, stream=buf)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        structlog.get_logger("exkernel").exception("writer died")
    [line] = json_lines(buf)
    assert line["level"] == "error"
    assert line["exception"][0]["exc_type"] == "RuntimeError"
    assert line["exception"][0]["exc_value"] == "boom"


def test_standard_library_loggers_share_the_stream_and_format() -> None:
    buf = io.StringIO()
    configure("info", json=True, stream=buf)
    configure("info", json=True, stream=buf)  # twice: still one handler
    logging.getLogger("websockets.client").warning("connection lost %s", "1006")
    logging.getLogger("aiosqlite").info("chatty detail")  # below warning: dropped
    [line] = json_lines(buf)
    assert line["event"] == "connection lost 1006"
    assert line["logger"] == "websockets.client"
    assert line["level"] == "warning"
    assert "timestamp" in line
