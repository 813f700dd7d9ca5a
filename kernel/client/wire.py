"""Frames as the client reads them, and where it connects: one websocket session's bytes.

Every frame the daemon sends decodes into `Frame` once: a reply (`id`, `ok`, `result`
or `error`) or a push (`type`: snapshot, event, bye). Payloads stay `msgspec.Raw` until
someone reads them, so a snapshot conflated away is never decoded.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect, unix_connect
from websockets.exceptions import InvalidHandshake, InvalidURI

from kernel.client.errors import Unreachable
from kernel.protocol import Error, RequestId

#: The largest frame the client accepts: a snapshot of a big account, with room to spare.
MAX_FRAME = 64 * 2**20


class Frame(msgspec.Struct, kw_only=True):
    # replies
    id: RequestId | None = None
    ok: bool | None = None
    result: msgspec.Raw = msgspec.Raw()
    error: Error | None = None
    # pushes
    type: str | None = None
    sub: str | None = None
    seq: int = 0
    skipped: tuple[int, int] | None = None
    snapshot: msgspec.Raw = msgspec.Raw()
    event: msgspec.Raw = msgspec.Raw()
    reason: str | None = None


_frame = msgspec.json.Decoder(Frame)
_encoder = msgspec.json.Encoder(decimal_format="string")


def decode_frame(data: str | bytes) -> Frame:
    return _frame.decode(data)


def encode(message: Any) -> bytes:
    return _encoder.encode(message)


def decode_result(raw: msgspec.Raw, kind: type[Any]) -> Any:
    return msgspec.json.decode(raw if len(raw) else b"{}", type=kind)


# websockets >= 15 reads proxies from the environment by default; a daemon on loopback
# or a unix socket is never behind one.
_NO_PROXY: dict[str, Any] = (
    {"proxy": None} if "proxy" in inspect.signature(connect.__init__).parameters else {})


class Address:
    """Where the daemon listens: its unix socket (`<state_dir>/api.sock`), or a
    ws:// or wss:// URL (TCP, when the daemon's config enables it)."""

    def __init__(self, *, unix_path: str | Path | None = None, url: str | None = None) -> None:
        if (unix_path is None) == (url is None):
            raise ValueError("give exactly one of unix_path and url")
        if url is not None and not url.startswith(("ws://", "wss://")):
            raise ValueError(f"url must start with ws:// or wss://, was {url!r}")
        self.unix_path = None if unix_path is None else Path(unix_path)
        self.url = url

    def __str__(self) -> str:
        return f"unix:{self.unix_path}" if self.unix_path is not None else str(self.url)

    async def open(self, timeout: float | None) -> ClientConnection:
        """A websocket connection, or `Unreachable` saying why not."""
        # close_timeout: closing waits this long at most for the daemon's close frame.
        common: dict[str, Any] = {"open_timeout": timeout, "max_size": MAX_FRAME,
                                  "compression": None, "close_timeout": 2}
        try:
            if self.unix_path is not None:
                return await unix_connect(str(self.unix_path), uri="ws://localhost/", **common)
            assert self.url is not None
            return await connect(self.url, **common, **_NO_PROXY)
        except FileNotFoundError:
            raise Unreachable(f"no daemon API at {self}: the socket does not exist (is the"
                              " daemon running, with this state directory?)") from None
        except ConnectionRefusedError:
            raise Unreachable(f"no daemon API at {self}: connection refused") from None
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as e:
            raise Unreachable(f"no daemon API at {self}: {_why(e)}") from e


def _why(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "no answer in time"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__
