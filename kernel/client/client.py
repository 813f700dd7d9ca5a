"""The asyncio client of the daemon's API (docs/api.md, protocol version 1).

::

    client = await Client.connect(unix_path="var/sim-run/api.sock", token=token)
    logged = await client.place_intent(intent_id="grid-1", symbol="BTCUSDT", side="buy",
                                       order_type="limit", qty="0.010", price="60000.0")
    async for snap in client.snapshots():        # kernel.public.PublicSnapshot
        ...

Every request returns once the daemon has answered: a change (`place_intent`, ...) once
the kernel has *logged* it, with its `seq` (`Logged`). An error reply raises the
`ApiError` subclass for its code (kernel/client/errors.py).

The connection is kept up: when it drops (a daemon restart, a `bye`), the client
reconnects with backoff (`kernel.backoff.backoff`), says `hello` again, subscribes each
open stream again from the last seq it received, and resends what may be resent:
reads, `place_intent` and `cancel_intent` (the kernel answers a repeat as a duplicate).
An `amend_intent`, `halt` or `resume` caught in flight raises `OutcomeUnknown`. After
`unauthorized` or `version` it never reconnects: every call and stream raises that.

The caller's obligations: one event loop; `close()` (or `async with`) when done.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

from kernel.client.connection import Link
from kernel.client.results import DaemonStatus, IntentList, Logged, Session, SnapshotResult
from kernel.client.streams import EventStream, SnapshotStream
from kernel.client.wire import Address
from kernel.public import PublicSnapshot

Number = Decimal | int | str


class Client:
    """The daemon's API as calls. Build it with `Client.connect`; options are `Link`'s
    (kernel/client/connection.py): `reconnect=True`, `request_timeout=30.0` seconds (a
    reconnect's wait included), `backoff_initial=0.2`, `backoff_max=5.0`, `rng`,
    `client_name`, `max_request_bytes=65536`, `versions`."""

    def __init__(self, link: Link) -> None:
        self._link = link

    @classmethod
    def connect(cls, *, unix_path: str | Path | None = None, url: str | None = None,
                token: str, **options: Any) -> _Connecting:
        """Connect and say hello: `client = await Client.connect(...)`, or
        `async with Client.connect(...) as client:`. Raises `Unreachable` if no daemon
        answers, `Unauthorized` for a wrong token, `VersionMismatch`."""
        return _Connecting(cls(Link(Address(unix_path=unix_path, url=url), token, **options)))

    async def _start(self) -> Client:
        await self._link.start()
        return self

    @property
    def address(self) -> Address:
        return self._link.address

    @property
    def session(self) -> Session | None:
        """The `hello` result of the current (or last) session."""
        return self._link.session

    @property
    def reconnects(self) -> int:
        """Successful reconnects so far."""
        return self._link.reconnects

    @property
    def last_bye(self) -> str | None:
        """The reason of the last `bye` the daemon sent."""
        return self._link.last_bye

    async def close(self) -> None:
        """Close the connection. Calls in flight raise `Closed`; streams end."""
        await self._link.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- the ops -----------------------------------------------------------------------

    async def get_snapshot(self, seq: int | None = None) -> PublicSnapshot:
        """The current snapshot, or the one after event `seq` (`NotFound` past the log)."""
        result = await self._link.call({"op": "get_snapshot", "seq": seq}, SnapshotResult)
        return result.snapshot

    def snapshots(self, from_seq: int | None = None, *, book: bool = True) -> SnapshotStream:
        """Snapshots after `from_seq` (None: the current one first), then live; with
        `book=False` their `intents` and `orders` are empty (follow the book with
        `list_intents()` or the event stream): much smaller frames for a large book."""
        stream = SnapshotStream(from_seq, self._link.resubscribe, self._link.forget, book)
        self._link.add(stream)
        return stream

    def events(self, kinds: Iterable[str] = (), since: int | None = None, *,
               max_buffer: int = 10_000) -> EventStream:
        """`(seq, event)` for every event after `since` (None: from now), of `kinds`."""
        stream = EventStream(tuple(kinds), since, self._link.resubscribe,
                             self._link.forget, max_buffer)
        self._link.add(stream)
        return stream

    async def place_intent(
        self, *, intent_id: str, symbol: str, side: str, order_type: str, qty: Number,
        price: Number | None = None, trigger_price: Number | None = None,
        time_in_force: str = "GTC", reduce_only: bool = False, post_only: bool = False,
        oco_group: str | None = None, strategy: str = "default",
    ) -> Logged:
        """Log an intent. The same id and body again answers `duplicate=True` with the
        first seq; the same id with another body raises `Conflict`."""
        intent = {
            "intent_id": intent_id, "strategy": strategy, "symbol": symbol, "side": side,
            "order_type": order_type, "qty": decimal("qty", qty),
            "price": _opt_decimal("price", price),
            "trigger_price": _opt_decimal("trigger_price", trigger_price),
            "time_in_force": time_in_force, "reduce_only": reduce_only,
            "post_only": post_only, "oco_group": oco_group,
        }
        return await self._link.call({"op": "place_intent", "intent": intent}, Logged, resend=True)

    async def amend_intent(self, intent_id: str, revision: int, *, qty: Number | None = None,
                           price: Number | None = None,
                           trigger_price: Number | None = None) -> Logged:
        """Change a working intent; `revision` is one more than its current one."""
        frame = {"op": "amend_intent", "intent_id": intent_id, "revision": revision}
        for name, value in (("qty", qty), ("price", price), ("trigger_price", trigger_price)):
            if value is not None:
                frame[name] = decimal(name, value)
        return await self._link.call(frame, Logged)

    async def cancel_intent(self, intent_id: str) -> Logged:
        """Cancel an intent (`duplicate=True` if it was canceled before)."""
        return await self._link.call({"op": "cancel_intent", "intent_id": intent_id}, Logged,
                                resend=True)

    async def list_intents(self, status: Iterable[str] = ()) -> IntentList:
        return await self._link.call({"op": "list_intents", "status": list(status)}, IntentList)

    async def halt(self, reason: str) -> Logged:
        return await self._link.call({"op": "halt", "reason": reason}, Logged, resend=False)

    async def resume(self, reason: str) -> Logged:
        return await self._link.call({"op": "resume", "reason": reason}, Logged, resend=False)

    async def status(self) -> DaemonStatus:
        return await self._link.call({"op": "status"}, DaemonStatus)


class _Connecting:
    """`await Client.connect(...)` or `async with Client.connect(...) as client`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __await__(self) -> Generator[Any, None, Client]:
        return self._client._start().__await__()

    async def __aenter__(self) -> Client:
        return await self._client._start()

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._client.close()


def decimal(name: str, value: Number) -> str:
    """`value` as the protocol's decimal string. A float is refused: 0.1 in binary is
    not 0.1, and the kernel would book the digits the float happens to have."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(f"{name} must be a Decimal, an int or a decimal string, was"
                        f" {type(value).__name__} {value!r}")
    try:
        d = Decimal(value)
    except ArithmeticError:
        raise ValueError(f"{name} must be a decimal number, was {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"{name} must be finite, was {value!r}")
    # A string goes as written (the daemon judges its grammar): nothing is reformatted.
    return value if isinstance(value, str) else f"{d:f}"


def _opt_decimal(name: str, value: Number | None) -> str | None:
    return None if value is None else decimal(name, value)
