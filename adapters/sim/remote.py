"""`RemoteSimVenue`: the `Venue` interface over a websocket to `adapters.sim.server`.

Every call is one request frame and one reply; pushed facts arrive on the same socket.
A dropped socket ends `facts` with `VenueUnavailable` and fails the calls in flight; a
command that gets no reply in time is `CommandOutcomeUnknown`, not a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from adapters.base import Outcome, Venue
from events.codec import Event, decode_logged, encode
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
from events.orders import AmendOrder, CancelOrder, CommandOutcomeUnknown, PlaceOrder
from kernel.errors import CredentialsRejected, VenueUnavailable

_CLOSED = object()


class _Reply(msgspec.Struct, frozen=True):
    id: int = 0
    ok: msgspec.Raw = msgspec.Raw(b"null")
    error: str | None = None
    push: msgspec.Raw = msgspec.Raw(b"")


class RemoteSimVenue(Venue):
    name = "sim"

    def __init__(self, url: str, *, api_key: str | None = None, timeout_s: float = 5.0) -> None:
        self.url = url
        self._api_key = api_key
        self.timeout_s = timeout_s
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[msgspec.Raw]] = {}
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._closing = False
        self._next_id = 0

    async def connect(self) -> None:
        try:
            self._ws = await connect(self.url, max_size=None)
        except (OSError, WebSocketException, TimeoutError) as e:
            raise VenueUnavailable(f"cannot reach the sim venue at {self.url}: {e}") from e
        self._queue = asyncio.Queue()
        self._closing = False
        self._reader = asyncio.create_task(self._read(self._ws))
        try:
            await self._call("connect", api_key=self._api_key)
        except VenueUnavailable as e:
            if str(e).startswith("CredentialsRejected"):
                await self.close()
                raise CredentialsRejected(f"the sim venue at {self.url} refused the API key")\
                    from e
            raise

    async def close(self) -> None:
        self._closing = True  # our own close ends `facts`; a dropped socket raises
        self._queue.put_nowait(_CLOSED)
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
        self._ws = self._reader = None

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                reply = msgspec.json.decode(frame, type=_Reply)
                if len(reply.push):
                    self._queue.put_nowait(decode_logged(reply.push))
                    continue
                future = self._pending.pop(reply.id, None)
                if future is None or future.done():
                    continue
                if reply.error is not None:
                    future.set_exception(VenueUnavailable(reply.error))
                else:
                    future.set_result(reply.ok)
        except ConnectionClosed:
            pass
        finally:
            self._queue.put_nowait(_CLOSED)
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(VenueUnavailable("the sim venue closed the connection"))
            self._pending.clear()

    async def _call(self, op: str, **args: Any) -> msgspec.Raw:
        if self._ws is None:
            raise VenueUnavailable("not connected")
        self._next_id += 1
        future: asyncio.Future[msgspec.Raw] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        frame = msgspec.json.encode({"id": self._next_id, "op": op, "args": args})
        try:
            await self._ws.send(frame.decode())
        except ConnectionClosed as e:
            raise VenueUnavailable(f"the sim venue closed the connection: {e}") from e
        # asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a cancel that lands
        # as the answer arrives, and the daemon's stop would wait on this task forever.
        async with asyncio.timeout(self.timeout_s):
            return await future

    async def facts(self) -> AsyncIterator[Event]:
        while True:
            item = await self._queue.get()
            if item is _CLOSED:
                if self._closing:
                    return
                raise VenueUnavailable("the sim venue closed the connection")
            yield cast(Event, item)

    async def _command(self, cmd: PlaceOrder | AmendOrder | CancelOrder, op: str) -> Outcome:
        try:
            raw = await self._call(op, command=msgspec.Raw(encode(cmd)))
        except TimeoutError:
            return CommandOutcomeUnknown(venue_ts=time.time_ns(), command_id=cmd.command_id,
                                         reason=f"no answer within {self.timeout_s} s")
        return cast(Outcome, decode_logged(raw))

    async def place(self, cmd: PlaceOrder) -> Outcome:
        return await self._command(cmd, "place")

    async def amend(self, cmd: AmendOrder) -> Outcome:
        return await self._command(cmd, "amend")

    async def cancel(self, cmd: CancelOrder) -> Outcome:
        return await self._command(cmd, "cancel")

    async def _events(self, op: str, **args: Any) -> list[Any]:
        raw = await self._call(op, **args)
        items = msgspec.json.decode(raw, type=list[msgspec.Raw])
        return [decode_logged(item) for item in items]

    async def _one(self, op: str, **args: Any) -> Any:
        raw = await self._call(op, **args)
        return None if bytes(raw) == b"null" else decode_logged(raw)

    async def instruments(self) -> list[InstrumentDefined]:
        return await self._events("instruments")

    async def assets(self) -> list[AssetDefined]:
        return await self._events("assets")

    async def leverage_settings(self) -> list[LeverageSet]:
        return await self._events("leverage_settings")

    async def marks(self) -> list[MarkPriceObserved]:
        return await self._events("marks")

    async def balances(self) -> BalanceReported:
        return cast(BalanceReported, await self._one("balances"))

    async def positions(self) -> PositionsReported:
        return cast(PositionsReported, await self._one("positions"))

    async def open_orders(self) -> list[OrderStatusReported]:
        return await self._events("open_orders")

    async def order(self, symbol: str, client_order_id: str) -> OrderStatusReported | None:
        return cast("OrderStatusReported | None",
                    await self._one("order", symbol=symbol, client_order_id=client_order_id))

    async def fills_since(self, venue_ts: int) -> list[OrderFilled]:
        return await self._events("fills_since", venue_ts=venue_ts)

    async def funding_since(self, venue_ts: int) -> list[FundingSettled]:
        return await self._events("funding_since", venue_ts=venue_ts)

    async def transfers_since(self, venue_ts: int) -> list[TransferCompleted]:
        return await self._events("transfers_since", venue_ts=venue_ts)
