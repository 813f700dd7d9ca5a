"""`SimVenue`: the embedded simulated venue behind the `Venue` interface.

A thin asyncio shell around the pure `SimEngine`: `connect` starts a clock task that runs
the engine to `clock()` every `pace_s` (default `tick_s`) and pushes its wire messages
through the fault injector into the queue `facts` reads and parses. An injected
disconnect ends `facts` with `VenueUnavailable`; the account lives on in the engine, what
it pushed while disconnected is lost, and the next `connect` resumes.

Resync answers come from the engine's truth, never faulted, through the same parser as
the stream (so a fill read back has the very payload and dedup key it was pushed with).
Besides the `Venue` queries, two resync helpers answer for what the interface has no
query for: `transfers_since` (the opening deposits) and `leverage_settings`; `marks`
gives the current marks. `instruments` returns the definitions only; `assets` the
precision the venue keeps each asset's money at.

`clock` (ns) and `pace_s` are injectable: a test passes a fake clock that steps and
`pace_s=0` to run simulated hours in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import random
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import msgspec

from adapters.base import Outcome, Venue
from adapters.sim import wire
from adapters.sim.config import SimConfig
from adapters.sim.engine import PricePath, SimEngine
from adapters.sim.faults import FaultInjector
from adapters.sim.orders import Accepted
from adapters.sim.parse import order_status, parse
from adapters.sim.wire import Msg
from events.codec import Event
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
from events.orders import (
    AmendOrder,
    CancelOrder,
    CommandAcknowledged,
    CommandRejected,
    PlaceOrder,
)
from kernel.errors import VenueUnavailable

Clock = Callable[[], int]
_DISCONNECT = object()
_CLOSED = object()
_SLOW = object()
#: Pushes waiting for a consumer before the venue drops it as too slow.
MAX_BACKLOG = 50_000
E = TypeVar("E", bound=Event)


def read_price_csv(path: str) -> PricePath:
    """`timestamp_ms,price` rows (a header row is skipped)."""
    rows: list[tuple[int, Decimal]] = []
    with Path(path).open(newline="") as f:
        for row in csv.reader(f):
            if row and row[0].strip().isdigit():
                rows.append((int(row[0]), Decimal(row[1])))
    return rows


class SimVenue(Venue):
    name = "sim"

    def __init__(
        self, config: SimConfig, *, clock: Clock = time.time_ns, pace_s: float | None = None
    ) -> None:
        self.config = config
        paths = {i.symbol: read_price_csv(i.price_csv)
                 for i in config.instruments if i.price_csv is not None}
        self.engine = SimEngine(config, random.Random(config.seed), paths)
        self.faults = FaultInjector(config.faults, random.Random(f"{config.seed}/faults"),
                                    config.report_delay_ms)
        self._disconnects = random.Random(f"{config.seed}/disconnects")
        self._clock = clock
        self._pace = config.tick_s if pace_s is None else pace_s
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self._next_disconnect: int | None = None
        self._last_flood = 0

    async def connect(self) -> None:
        if self._connected:
            return
        now = self._clock()
        self.engine.advance(now)  # what happened while disconnected was never delivered
        self._queue = asyncio.Queue()
        self._connected = True
        every = self.config.faults.disconnect_every_s
        self._next_disconnect = (
            now + round(self._disconnects.expovariate(1 / every) * 1e9) if every else None
        )
        self._last_flood = now
        self._task = asyncio.create_task(self._run(), name="sim-venue-clock")

    async def close(self) -> None:
        self._connected = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._queue.put_nowait(_CLOSED)

    async def facts(self) -> AsyncIterator[Event]:
        queue = self._queue
        while True:
            item = await queue.get()
            if item is _CLOSED:
                return
            if item is _DISCONNECT:
                raise VenueUnavailable("sim: injected disconnect")
            if item is _SLOW:
                raise VenueUnavailable(f"sim: dropped a slow consumer ({MAX_BACKLOG} pushes"
                                       " waiting)")
            assert isinstance(item, bytes)
            for event in parse(item, self._clock()):
                yield event

    async def _run(self) -> None:
        while self._connected:
            now = self._clock()
            self._pump(now)
            if self.config.flood_per_s:
                n = int((now - self._last_flood) * self.config.flood_per_s / 1e9)
                if n:
                    self._last_flood = now
                    self._deliver(self.engine.flood_marks(now, n), now)
            if self._next_disconnect is not None and now >= self._next_disconnect:
                self._connected = False
                self._queue.put_nowait(_DISCONNECT)
                return
            if self._queue.qsize() > MAX_BACKLOG:
                # Like a real venue, drop a consumer that cannot keep up rather than
                # buffer for it without end; its resync recovers what it missed.
                self._connected = False
                self._queue.put_nowait(_SLOW)
                return
            await asyncio.sleep(self._pace)

    def _pump(self, now: int) -> None:
        self._deliver(self.engine.advance(now), now)

    def _deliver(self, msgs: list[Msg], now: int) -> None:
        for raw in self.faults.push(msgs, now):
            self._queue.put_nowait(raw)

    def _now(self) -> int:
        if not self._connected:
            raise VenueUnavailable("sim: not connected")
        now = self._clock()
        self._pump(now)
        return now

    async def place(self, cmd: PlaceOrder) -> Outcome:
        now = self._now()
        result = self.engine.place(cmd, cmd.client_order_id, now)
        self._pump(now)
        return self._outcome(cmd.command_id, result, now)

    async def amend(self, cmd: AmendOrder) -> Outcome:
        now = self._now()
        result = self.engine.amend(cmd.client_order_id, cmd.symbol, now, qty=cmd.qty,
                                   price=cmd.price, trigger_price=cmd.trigger_price)
        self._pump(now)
        return self._outcome(cmd.command_id, result, now)

    async def cancel(self, cmd: CancelOrder) -> Outcome:
        now = self._now()
        result = self.engine.cancel(cmd.client_order_id, cmd.symbol, now)
        self._pump(now)
        return self._outcome(cmd.command_id, result, now)

    @staticmethod
    def _outcome(command_id: str, result: object, now: int) -> Outcome:
        if isinstance(result, Accepted):
            return CommandAcknowledged(venue_ts=now, command_id=command_id,
                                       order_id=result.order_id)
        code, reason = getattr(result, "code"), getattr(result, "reason")  # noqa: B009
        return CommandRejected(venue_ts=now, command_id=command_id, reason=reason, code=code)

    def _read(self, msgs: list[Msg], kind: type[E]) -> list[E]:
        return [e for m in msgs for e in parse(_encode(m), self._clock()) if isinstance(e, kind)]

    async def instruments(self) -> list[InstrumentDefined]:
        self._now()
        return self._read(self.engine.definitions, InstrumentDefined)

    async def assets(self) -> list[AssetDefined]:
        self._now()
        return self._read(self.engine.definitions, AssetDefined)

    async def leverage_settings(self) -> list[LeverageSet]:
        self._now()
        return self._read(self.engine.definitions, LeverageSet)

    async def transfers_since(self, venue_ts: int) -> list[TransferCompleted]:
        self._now()
        return self._read(_since(self.engine.transfer_msgs, venue_ts), TransferCompleted)

    async def marks(self) -> list[MarkPriceObserved]:
        return self._read(self.engine.mark_msgs(self._now()), MarkPriceObserved)

    async def balances(self) -> BalanceReported:
        return self._read([self.engine.snapshot(self._now())], BalanceReported)[0]

    async def positions(self) -> PositionsReported:
        return self._read([self.engine.snapshot(self._now())], PositionsReported)[0]

    async def open_orders(self) -> list[OrderStatusReported]:
        now = self._now()
        return [order_status(wire.order_fields(o), now) for o in self.engine.open_orders()]

    async def order(self, symbol: str, client_order_id: str) -> OrderStatusReported | None:
        now = self._now()
        o = self.engine.order_by_cid(client_order_id)
        if o is None or o.symbol != symbol:
            return None
        return order_status(wire.order_fields(o), now)

    async def fills_since(self, venue_ts: int) -> list[OrderFilled]:
        self._now()
        return self._read(_since(self.engine.fill_msgs, venue_ts), OrderFilled)

    async def funding_since(self, venue_ts: int) -> list[FundingSettled]:
        self._now()
        return self._read(_since(self.engine.funding_msgs, venue_ts), FundingSettled)


_encoder = msgspec.json.Encoder()


def _encode(msg: Msg) -> bytes:
    return _encoder.encode(msg)


def _since(history: list[tuple[int, Msg]], venue_ts: int) -> list[Msg]:
    """The messages whose venue time (the ms the wire carries) is >= `venue_ts`."""
    return [m for t, m in history if wire.ms(t) * wire.NS_PER_MS >= venue_ts]
