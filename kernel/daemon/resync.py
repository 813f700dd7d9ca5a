"""Resync: ask the venue for what the stream may have lost, with a watermark per stream.

Order matters. Definitions first (instruments, asset precision, leverage), so that the
facts after them are admitted. Then the dated facts (fills, funding, transfers), each
stream followed by its `ResyncCompleted`. Then the reports that include those facts
(marks, balances, positions, open orders), so that a reconnect after missed fills does
not compare K without the fills against reports with them (R3/R4/R6 ERROR while the
fills are in flight).

Watermarks are per stream and live in the log: `ResyncCompleted(venue_ts=began,
stream=..., since=...)` is queued after that stream's facts, and the writer appends in
queue order, so the marker commits only once every fact before it has. The fold keeps
`state.resync_marks[stream]`; each resync asks from `since_for(mark, now, lookback)`. A
crash before a stream's marker repeats that stream's resync instead of skipping it; a
fact the venue dated in the future moves no watermark, since marks are the kernel's clock.
The log's dedup absorbs every fact asked for twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from adapters.base import Venue
from events.codec import Event
from events.control import ResyncCompleted, ResyncStream

Put = Callable[[Event], Awaitable[None]]
Clock = Callable[[], int]


def since_for(mark: int | None, now: int, lookback_ns: int) -> int:
    """Where a stream's next resync starts: its last completed resync's start, clamped to
    the kernel's clock `now` (a clock stepped back cannot leave the watermark ahead), less
    the lookback (venue clock skew; a fact the venue's history shows late). No mark yet:
    0, everything the venue has."""
    if not mark:
        return 0
    return max(0, min(mark, now) - lookback_ns)


def next_due(last_resync: float, last_push: float, every_s: float, silence_s: float) -> float:
    """When the next periodic resync is due (monotonic seconds): `every_s` after the
    last one, or sooner, `silence_s` after the later of the last push and the last
    resync, while the stream is silent (a silent stream may be a dead one)."""
    return min(last_resync + every_s, max(last_resync, last_push) + silence_s)


class Resync:
    """One venue's resync. `step` names the query in progress (None when idle), so a
    failure can say where it failed; the caller supervises, this class does not catch."""

    def __init__(self, venue: Venue, put: Put, clock: Clock,
                 marks: Callable[[], Mapping[str, int]], lookback_s: float) -> None:
        """`marks` reads the committed watermarks (the writer's `state.resync_marks`)."""
        self.venue = venue
        self.put = put
        self.clock = clock
        self.marks = marks
        self.lookback_ns = int(lookback_s * 1e9)
        self.step: str | None = None

    async def run(self) -> None:
        v = self.venue
        for inst in await self._ask("instruments", v.instruments):
            await self.put(inst)
        for asset in await self._ask("assets", v.assets):
            await self.put(asset)
        for lev in await self._ask("leverage", v.leverage_settings):
            await self.put(lev)
        # The reports are *asked* first and *queued* last. Asked after the fills, a report
        # could include a fill made between the two questions that the stream has not
        # delivered yet: folded first, it would be a report newer than every fact K has,
        # and disagree (a false ERROR, for the few ms until the fill arrives). Asked first,
        # every fill it includes is in the fills asked after it, and queued before it.
        balances = await self._ask("balances", v.balances)
        positions = await self._ask("positions", v.positions)
        await self._dated("fills", v.fills_since)
        await self._dated("funding", v.funding_since)
        await self._dated("transfers", v.transfers_since)
        for mark in await self._ask("marks", v.marks):
            await self.put(mark)
        await self.put(balances)
        await self.put(positions)
        for order in await self._ask("open_orders", v.open_orders):
            await self.put(order)
        self.step = None

    async def _dated(self, stream: ResyncStream,
                     query: Callable[[int], Awaitable[list[Any]]]) -> None:
        began = self.clock()
        since = since_for(self.marks().get(stream), began, self.lookback_ns)
        for fact in await self._ask(stream, query, since):
            await self.put(fact)
        await self.put(ResyncCompleted(venue_ts=began, stream=stream, since=since))

    async def _ask(self, step: str, query: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        self.step = step
        return await query(*args)
