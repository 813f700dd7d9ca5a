"""A real venue with failures on cue, and helpers to drive the daemon in process.

Nothing real makes a REST call time out at the moment a test needs it, so `FaultyVenue`
wraps a real venue (the sim) and, on demand: raises from a query once or every time,
blocks a query forever (a crash mid-resync), drops pushes, pushes extra facts, or goes
silent. Everything else passes through to the real venue untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from adapters.base import Outcome, Venue
from events.codec import Event, decode_logged
from events.facts import (
    AssetDefined,
    BalanceReported,
    FundingSettled,
    InstrumentDefined,
    LeverageSet,
    MarkPriceObserved,
    OrderFilled,
    OrderStatusReported,
    PositionsReported,
    TransferCompleted,
)
from events.log import EventLog
from events.orders import AmendOrder, CancelOrder, PlaceOrder
from kernel.daemon.service import Daemon


class FaultyVenue(Venue):
    def __init__(self, inner: Venue) -> None:
        self.inner = inner
        self.name = inner.name
        #: Errors the next calls of a query raise, one per call.
        self.raises: dict[str, list[BaseException]] = defaultdict(list)
        #: An error every call of a query raises while it is set.
        self.always: dict[str, BaseException] = {}
        #: Queries that never return (until cancelled).
        self.blocked: set[str] = set()
        #: Set when a query is first called.
        self.entered: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.calls: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.order: list[str] = []
        #: Pushes for which this returns True are lost; they are kept in `dropped`.
        self.drop: Callable[[Event], bool] = lambda e: False
        self.dropped: list[Event] = []
        #: While True, the stream delivers nothing (the connection stays up).
        self.silent = False
        self._inject: list[Event] = []

    def push(self, event: Event) -> None:
        """Deliver `event` on the stream before the venue's next push."""
        self._inject.append(event)

    async def _q(self, name: str, *args: Any) -> Any:
        self.calls[name] += 1
        self.order.append(name)
        self.entered[name].set()
        if name in self.blocked:
            await asyncio.Event().wait()
        if self.raises[name]:
            self.failed[name] += 1
            raise self.raises[name].pop(0)
        if name in self.always:
            self.failed[name] += 1
            raise self.always[name]
        return await getattr(self.inner, name)(*args)

    async def connect(self) -> None:
        await self._q("connect")

    async def close(self) -> None:
        await self.inner.close()

    async def facts(self) -> AsyncIterator[Event]:
        async for event in self.inner.facts():
            while self._inject:
                yield self._inject.pop(0)
            if self.silent:
                continue
            if self.drop(event):
                self.dropped.append(event)
                continue
            yield event

    async def place(self, cmd: PlaceOrder) -> Outcome:
        return await self.inner.place(cmd)

    async def amend(self, cmd: AmendOrder) -> Outcome:
        return await self.inner.amend(cmd)

    async def cancel(self, cmd: CancelOrder) -> Outcome:
        return await self.inner.cancel(cmd)

    async def instruments(self) -> list[InstrumentDefined]:
        return await self._q("instruments")  # type: ignore[no-any-return]

    async def assets(self) -> list[AssetDefined]:
        return await self._q("assets")  # type: ignore[no-any-return]

    async def leverage_settings(self) -> list[LeverageSet]:
        return await self._q("leverage_settings")  # type: ignore[no-any-return]

    async def marks(self) -> list[MarkPriceObserved]:
        return await self._q("marks")  # type: ignore[no-any-return]

    async def balances(self) -> BalanceReported:
        return await self._q("balances")  # type: ignore[no-any-return]

    async def positions(self) -> PositionsReported:
        return await self._q("positions")  # type: ignore[no-any-return]

    async def open_orders(self) -> list[OrderStatusReported]:
        return await self._q("open_orders")  # type: ignore[no-any-return]

    async def order(self, symbol: str, client_order_id: str) -> OrderStatusReported | None:
        return await self.inner.order(symbol, client_order_id)

    async def fills_since(self, venue_ts: int) -> list[OrderFilled]:
        return await self._q("fills_since", venue_ts)  # type: ignore[no-any-return]

    async def funding_since(self, venue_ts: int) -> list[FundingSettled]:
        return await self._q("funding_since", venue_ts)  # type: ignore[no-any-return]

    async def transfers_since(self, venue_ts: int) -> list[TransferCompleted]:
        return await self._q("transfers_since", venue_ts)  # type: ignore[no-any-return]


async def eventually(check: Callable[[], object], timeout: float = 10.0,
                     what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} did not hold within {timeout} s"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(daemon: Daemon) -> AsyncIterator[asyncio.Task[int]]:
    """The daemon running in this event loop; stopped (and its exit checked) after."""
    task = asyncio.create_task(daemon.run())
    try:
        yield task
    finally:
        if not task.done():
            daemon.stop()
        assert await asyncio.wait_for(task, 15) == 0


async def logged(db: Path, *kinds: str) -> list[tuple[str, Event]]:
    """(kind, event) of every row of `kinds` in the log at `db`, in log order, read as a
    reader would (the daemon may still be running)."""
    log = await EventLog.open(db, readonly=True)
    try:
        return [(r.kind, decode_logged(r.payload)) async for r in log.rows(kinds=kinds)]
    finally:
        await log.close()
