"""Events about the kernel itself: venue connectivity, trading halts, an operator's
manual adjustment, and input that failed validation (kept, never coerced)."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from events.base import EventBase

MAX_RAW_BYTES = 65536


class VenueConnected(EventBase, frozen=True, kw_only=True, tag="venue_connected"):
    venue: str
    session: str = ""

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("venue", self.venue)

    @property
    def dedup_key(self) -> str:
        return f"connected:{self.venue}:{self.venue_ts}"


class VenueDisconnected(EventBase, frozen=True, kw_only=True, tag="venue_disconnected"):
    venue: str
    reason: str = ""

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("venue", self.venue)

    @property
    def dedup_key(self) -> str:
        return f"disconnected:{self.venue}:{self.venue_ts}"


class TradingHalted(EventBase, frozen=True, kw_only=True, tag="trading_halted"):
    reason: str
    by: str = "kernel"

    def __post_init__(self) -> None:
        self._check_times()
        if not self.reason:
            self._fail("reason", self.reason, "must say why")
        self._ident("by", self.by)

    @property
    def dedup_key(self) -> str:
        return f"halted:{self.venue_ts}"


class TradingResumed(EventBase, frozen=True, kw_only=True, tag="trading_resumed"):
    reason: str
    by: str = "operator"

    def __post_init__(self) -> None:
        self._check_times()
        if not self.reason:
            self._fail("reason", self.reason, "must say why")
        self._ident("by", self.by)

    @property
    def dedup_key(self) -> str:
        return f"resumed:{self.venue_ts}"


class ManualAdjustment(EventBase, frozen=True, kw_only=True, tag="manual_adjustment"):
    """An operator's signed correction of one wallet (an opening balance, a rebate the
    venue paid outside any fill). It moves K's wallet like a transfer, and says why."""

    adjustment_id: str
    asset: str
    amount: Decimal
    reason: str

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("adjustment_id", self.adjustment_id)
        self._ident("asset", self.asset)
        self._decimal("amount", self.amount)
        if not self.amount:
            self._fail("amount", self.amount, "must not be zero")
        if not self.reason:
            self._fail("reason", self.reason, "must say why")

    @property
    def dedup_key(self) -> str:
        return f"adjustment:{self.adjustment_id}"


class InputQuarantined(EventBase, frozen=True, kw_only=True, tag="input_quarantined"):
    """A payload that could not be admitted, with where it came from and why.

    `raw` holds the payload text (its first `MAX_RAW_BYTES` bytes; `raw_sha256` and
    `raw_len` describe the whole). The same raw payload quarantined twice is one event.
    """

    source: str
    reason: str
    raw: str
    raw_sha256: str
    raw_len: int

    def __post_init__(self) -> None:
        self._check_times()
        if not self.source:
            self._fail("source", self.source, "must name where the input came from")
        if not self.reason:
            self._fail("reason", self.reason, "must say why")
        if len(self.raw_sha256) != 64:
            self._fail("raw_sha256", self.raw_sha256, "must be a hex sha256")

    @property
    def dedup_key(self) -> str:
        return f"quarantine:{self.raw_sha256}"


def quarantine(
    raw: str | bytes, *, source: str, reason: str, venue_ts: int, recv_ts: int = 0
) -> InputQuarantined:
    """Wrap an inadmissible payload, whatever its size or encoding, as an event."""
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
    text = data[:MAX_RAW_BYTES].decode("utf-8", "replace")
    return InputQuarantined(
        venue_ts=venue_ts,
        recv_ts=recv_ts,
        source=source,
        reason=reason,
        raw=text,
        raw_sha256=hashlib.sha256(data).hexdigest(),
        raw_len=len(data),
    )
