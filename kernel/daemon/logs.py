"""Logging: structlog, one line per event, secrets masked.

`configure(level)` once at startup. On a terminal the output is structlog's coloured
console format; otherwise (under systemd, journald keeps stdout) it is one JSON object
per line: `timestamp` (ISO 8601, UTC), `level`, `logger`, `event`, and the event's keys,
so `journalctl -u exkernel -o cat | jq` works. Standard-library loggers (websockets,
aiosqlite, asyncio) go to the same stream in the same format, at warning and above
unless the level is lower.

Any key that names a secret (see `is_secret_key`) has its value replaced by
`[REDACTED]`, in nested dicts too: the kernel never writes a credential to its log even
if a caller passes one by mistake.

Get loggers with `structlog.get_logger("exkernel.component")`; the name becomes `logger`.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import msgspec
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}
REDACTED = "[REDACTED]"

_SECRET = re.compile(r"secret|token|passw|passphrase|credential|authorization|cookie"
                     r"|signature|key$|keys$", re.IGNORECASE)
#: Identifiers that end in "key" but are not secrets: the log's own dedup keys.
_NOT_SECRET = frozenset({"dedup_key", "position_key"})


def is_secret_key(name: str) -> bool:
    """True for names like api_key, apiKey, secret, api_token, password, private_keys."""
    return name.lower() not in _NOT_SECRET and _SECRET.search(name) is not None


def redact(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """A structlog processor: mask the value of every secret-named key, at any depth."""
    return _masked(event_dict)


def _masked(d: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for k, v in d.items():
        if isinstance(k, str) and is_secret_key(k):
            d[k] = REDACTED
        elif isinstance(v, dict):
            d[k] = _masked(dict(v))
        elif isinstance(v, list | tuple):
            d[k] = [_masked(dict(i)) if isinstance(i, dict) else i for i in v]
    return d


class _NamedLogger(structlog.WriteLogger):
    """A WriteLogger (writes and flushes one line per call) that knows its name."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedLogger:
        return _NamedLogger(self._file, str(args[0]) if args else "exkernel")


_encoder = msgspec.json.Encoder(enc_hook=str)  # Decimal as a string; Path, enums by str()


def _dumps(obj: Any, **_: Any) -> str:
    return _encoder.encode(obj).decode()


def configure(level: str, json: bool | None = None, *, stream: TextIO | None = None) -> None:
    """Set up structlog and the standard library's root logger to write to `stream`
    (default stdout). `json` None means JSON unless `stream` is a terminal.
    Raises ValueError for a level not in LEVELS."""
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, was {level!r}")
    out = sys.stdout if stream is None else stream
    tty = out.isatty()
    as_json = not tty if json is None else json
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    final: list[Processor] = (
        [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer(_dumps)]
        if as_json else [structlog.dev.ConsoleRenderer(colors=tty)]
    )
    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(), *final],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=_NamedLoggerFactory(out),
        # Caching would pin loggers made before a later configure() (or capture_logs()).
        cache_logger_on_first_use=False,
    )
    _route_stdlib(out, max(LEVELS[level], logging.WARNING), shared, final)


def _route_stdlib(out: TextIO, level: int, shared: list[Processor],
                  final: list[Processor]) -> None:
    handler = logging.StreamHandler(out)
    handler.set_name("exkernel")
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "exkernel"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
