"""The venue's clock: wall time unless a test holds it.

Binance checks a signed request's `timestamp` against its own server time, and stamps every
event (`E`, `T`, trade `time`, income `time`) with it. Holding the clock makes those stamps
deterministic; it also means the timing-security check runs against the held time, exactly as
a venue whose clock drifted would: hold it for longer than the client's `recvWindow` and signed
requests fail with -1021. Use `skew_ms` to put the venue ahead of or behind the client instead.
"""

from __future__ import annotations

import time


class VenueClock:
    """Milliseconds since the epoch, as the venue sees them."""

    def __init__(self) -> None:
        self._held: int | None = None
        self.skew_ms = 0

    def now_ms(self) -> int:
        if self._held is not None:
            return self._held
        return int(time.time() * 1000) + self.skew_ms

    @property
    def held(self) -> bool:
        return self._held is not None

    def hold(self, at_ms: int | None = None) -> int:
        """Freeze the clock (at `at_ms`, or now) and return the frozen time."""
        self._held = self.now_ms() if at_ms is None else at_ms
        return self._held

    def advance(self, ms: int) -> int:
        """Move a held clock forward; on a running clock, add to the skew."""
        if ms < 0:
            raise ValueError(f"the venue clock only moves forward, was asked to move {ms} ms")
        if self._held is not None:
            self._held += ms
            return self._held
        self.skew_ms += ms
        return self.now_ms()

    def release(self) -> None:
        """Let the clock run again (from wall time plus the skew)."""
        self._held = None
