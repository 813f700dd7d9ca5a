"""What the parsers know of a venue beyond one payload. Pure values.

`Book` is built by the adapter from ccxt's `load_markets` (and the account's position
mode) and handed to every parser, so a parser stays a function of its inputs.
`guard` turns any parse failure into one `InputQuarantined` holding the payload.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from adapters.fields import ParseError
from events.codec import Event
from events.control import InputQuarantined, quarantine
from kernel.errors import EventValidationError

T = TypeVar("T")


@dataclass(frozen=True)
class Book:
    """`exchange` is the ccxt id; `symbols` maps the venue's market id (`BTCUSDT`) to
    ccxt's unified symbol (`BTC/USDT:USDT`), the kernel's symbol; `settle` gives each
    unified symbol's settlement asset (a fee Binance leaves out is paid in it)."""

    exchange: str
    symbols: Mapping[str, str] = field(default_factory=dict)
    settle: Mapping[str, str] = field(default_factory=dict)
    hedge_mode: bool = False

    @property
    def source(self) -> str:
        """The quarantine `source` of this venue's payloads."""
        return f"ccxtpro:{self.exchange}"

    def symbol(self, venue_id: str, path: str) -> str:
        if venue_id not in self.symbols:
            raise ParseError(f"{path} {venue_id!r} is not a market of {self.exchange}")
        return self.symbols[venue_id]


_encoder = msgspec.json.Encoder(enc_hook=str)


def raw_bytes(payload: Any) -> bytes:
    """The payload as JSON bytes, for quarantine (ccxt structures are plain data)."""
    if isinstance(payload, bytes):
        return payload
    try:
        return _encoder.encode(payload)
    except (TypeError, ValueError, OverflowError):
        return repr(payload).encode("utf-8", "backslashreplace")


def quarantined(book: Book, payload: Any, reason: str, ts: int) -> InputQuarantined:
    return quarantine(raw_bytes(payload), source=book.source, reason=reason, venue_ts=ts)


def guard(book: Book, what: str, payload: Any, ts: int,
          parse: Callable[..., T], *args: Any) -> T | InputQuarantined:
    """`parse(*args)`, or the payload quarantined with what failed (`what: reason`)."""
    try:
        return parse(*args)
    except (ParseError, EventValidationError) as e:
        return quarantined(book, payload, f"{what}: {e}", ts)


def keep(out: list[Event], result: Event | None) -> None:
    if result is not None:
        out.append(result)
