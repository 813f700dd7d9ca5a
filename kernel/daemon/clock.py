"""The event clock: receive times that never go back and do not jump back to a wall
clock stepped backwards.

The writer stamps `recv_ts` on every fact it admits, and the settling deadline of a
pending report is `recv_ts + window` measured against `AccountState.now`, the newest
`recv_ts` folded. Stamped from the wall clock alone, a step forward and back (NTP, an
operator) dates the facts after the back-step an hour before `now`: each is past its
deadline the moment it lands (`PENDING_REPORT_EXPIRED` on a fact 0 s old).

`EventClock` reads::

    stamp = max(wall(), last + (mono() - last_mono))

the wall clock when it is ahead, else the previous stamp (or the floor set by
`not_before`) advanced by the monotonic clock's elapsed time. So it never decreases.
Across a forward step it follows the wall clock (that much event time passes at once);
across a back-step it keeps counting from where it was, ahead of the wall clock by the
step, for as long as the process runs and, through `not_before(state.now)` at the
writer's start, after a restart too. Durations on event time (settling windows) stay
true throughout; only the dates are off by the step, as the wall clock was before it.

Replays stay deterministic: stamps are in the log, and the fold reads nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Source = Callable[[], int]


class EventClock:
    """A callable returning ns since the epoch, never less than any earlier reading.

    `wall` and `mono` are injectable for tests: `wall` is ns since the epoch (it may
    step either way), `mono` ns from any origin (it must never go back)."""

    def __init__(self, wall: Source = time.time_ns, mono: Source = time.monotonic_ns) -> None:
        self._wall = wall
        self._mono = mono
        self._last: int | None = None
        self._last_mono = 0

    def __call__(self) -> int:
        wall, mono = self._wall(), self._mono()
        stamp = wall if self._last is None else max(wall, self._last + (mono - self._last_mono))
        self._last, self._last_mono = stamp, mono
        return stamp

    def not_before(self, ts: int) -> None:
        """Read no earlier than `ts` from now on (the writer passes the log's `now`), and
        advance from there at the monotonic clock's rate."""
        mono = self._mono()
        if self._last is None or self._last + (mono - self._last_mono) < ts:
            self._last, self._last_mono = ts, mono
