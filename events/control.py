"""Events about the kernel itself: venue connectivity, trading halts, an operator's
manual adjustment, and input that failed validation (kept, never coerced)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Literal

from events.base import EventBase, key

MAX_RAW_BYTES = 65536
_HEX = frozenset("0123456789abcdef")


class VenueConnected(EventBase, frozen=True, kw_only=True, tag="venue_connected"):
    venue: str
    session: str = ""

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("venue", self.venue)

    @property
    def dedup_key(self) -> str:
        return key("connected", self.venue, self.venue_ts)


class VenueDisconnected(EventBase, frozen=True, kw_only=True, tag="venue_disconnected"):
    venue: str
    reason: str = ""

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("venue", self.venue)

    @property
    def dedup_key(self) -> str:
        return key("disconnected", self.venue, self.venue_ts)


ResyncStream = Literal["fills", "funding", "transfers"]


class ResyncCompleted(EventBase, frozen=True, kw_only=True, tag="resync_completed"):
    """A resync of one stream of dated facts completed: every such fact with venue time
    >= `since` has been appended. `venue_ts` is the kernel's clock when that resync
    began; the next resync of the stream asks from there (less a lookback), so a crash
    before this event is logged repeats the resync instead of skipping it."""

    stream: ResyncStream
    since: int

    def __post_init__(self) -> None:
        self._check_times()
        if not 0 <= self.since <= self.venue_ts:
            self._fail("since", self.since, f"must be in [0, venue_ts {self.venue_ts}]")

    @property
    def dedup_key(self) -> str:
        return key("resync", self.stream, self.venue_ts)


class TradingHalted(EventBase, frozen=True, kw_only=True, tag="trading_halted"):
    reason: str
    by: str = "kernel"

    def __post_init__(self) -> None:
        self._check_times()
        self._text("reason", self.reason)
        self._ident("by", self.by)

    @property
    def dedup_key(self) -> str:
        return key("halted", self.venue_ts)


class TradingResumed(EventBase, frozen=True, kw_only=True, tag="trading_resumed"):
    reason: str
    by: str = "operator"

    def __post_init__(self) -> None:
        self._check_times()
        self._text("reason", self.reason)
        self._ident("by", self.by)

    @property
    def dedup_key(self) -> str:
        return key("resumed", self.venue_ts)


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
        self._text("reason", self.reason)

    @property
    def dedup_key(self) -> str:
        return key("adjustment", self.adjustment_id)


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
        if not self.source.strip():
            self._fail("source", self.source, "must name where the input came from")
        self._text("reason", self.reason)
        if len(self.raw_sha256) != 64 or not _HEX.issuperset(self.raw_sha256):
            self._fail("raw_sha256", self.raw_sha256, "must be a lowercase hex sha256")
        if self.raw_len < 0:
            self._fail("raw_len", self.raw_len, "must be >= 0")

    @property
    def dedup_key(self) -> str:
        return key("quarantine", self.raw_sha256)


def quarantine(
    raw: str | bytes, *, source: str, reason: str, venue_ts: int, recv_ts: int = 0
) -> InputQuarantined:
    """Wrap an inadmissible payload, whatever its size or encoding, as an event."""
    data = raw if isinstance(raw, bytes) else _to_bytes(raw)
    text = _prefix(data)
    return InputQuarantined(
        venue_ts=venue_ts,
        recv_ts=recv_ts,
        source=source,
        reason=reason,
        raw=text,
        raw_sha256=hashlib.sha256(data).hexdigest(),
        raw_len=len(data),
    )


def _to_bytes(raw: str) -> bytes:
    try:  # round-trips bytes that were decoded with surrogateescape
        return raw.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate from elsewhere (json.loads('"\\ud800"'))
        return raw.encode("utf-8", "surrogatepass")


def _prefix(data: bytes) -> str:
    """The longest prefix of `data` whose text fits in `MAX_RAW_BYTES` of UTF-8, cut on a
    character boundary; bytes that are not UTF-8 appear as `\\xNN` escapes."""
    cut = data[:MAX_RAW_BYTES]
    if len(data) > MAX_RAW_BYTES:
        end = len(cut)
        while end > 0 and data[end] & 0xC0 == 0x80:  # inside a multi-byte sequence
            end -= 1
        cut = data[:end]
    text = cut.decode("utf-8", "backslashreplace")
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_RAW_BYTES:
        text = encoded[:MAX_RAW_BYTES].decode("utf-8", "ignore")
    return text
