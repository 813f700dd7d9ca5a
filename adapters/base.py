"""The one interface every venue implements: the embedded simulator and ccxt.pro alike.

A venue adapter does three things, shaped after ccxt.pro (`watch_*` streams,
`create_order` / `edit_order` / `cancel_order`, `fetch_*` queries):

* **Stream** (`facts`): what the venue pushes (fills, order updates, balance and position
  reports, marks, funding), already turned into events by the adapter's pure parser. A
  payload that fails to parse becomes an `InputQuarantined` event, never an exception and
  never a coerced value. The iterator ends by raising `VenueUnavailable` when the
  connection drops; the daemon then reconnects with backoff and resyncs.
* **Execute** (`place`, `amend`, `cancel`): carry one logged command to the venue, keyed by
  the kernel's client order id, and return its outcome as an event. A timeout is
  `CommandOutcomeUnknown`, never a guess; the kernel resolves it with `order`.
* **Resync** (`instruments`, `assets`, `leverage_settings`, `marks`, `balances`, `positions`,
  `open_orders`, `order`, `fills_since`, `funding_since`, `transfers_since`): the kernel
  calls these after every (re)connect and
  periodically as a backstop. Their answers overlap the stream at will: the log's dedup
  absorbs every repeat.

Times are integer ns: `venue_ts` from the venue, `recv_ts` left 0 for the writer to stamp.
Callers must `connect` before anything else and `close` when done. A command or query
made while not connected raises `VenueUnavailable` (nothing was sent); refused keys
raise `CredentialsRejected` from any call.

**Rate limits** (`rate_usage`): what the venue itself says the account has used of each
of its limits, from its latest response (Binance's `X-MBX-USED-WEIGHT-1M` and
`X-MBX-ORDER-COUNT-*` headers), for the reconciler to pace its commands by.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass

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
    CommandOutcomeUnknown,
    CommandRejected,
    PlaceOrder,
)

Outcome = CommandAcknowledged | CommandRejected | CommandOutcomeUnknown


@dataclass(frozen=True)
class RateUsage:
    """One of the venue's rate limits: `used` as the venue counted it in its latest
    response (at `at_ns`, the kernel's clock), against `limit` where the venue documents
    it (None: unknown). `name` is the venue's own (`x-mbx-used-weight-1m`)."""

    name: str
    used: int
    limit: int | None
    at_ns: int


class Venue(abc.ABC):
    """One account on one venue."""

    #: A short name for logs and `VenueConnected` events ("sim", "binanceusdm").
    name: str

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the session. Raises `CredentialsRejected` (fatal) or `VenueUnavailable`."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the session; `facts` iterators end."""

    @abc.abstractmethod
    def facts(self) -> AsyncIterator[Event]:
        """Pushed facts, in arrival order, until the connection drops (`VenueUnavailable`)."""

    @abc.abstractmethod
    async def place(self, cmd: PlaceOrder) -> Outcome: ...

    @abc.abstractmethod
    async def amend(self, cmd: AmendOrder) -> Outcome: ...

    @abc.abstractmethod
    async def cancel(self, cmd: CancelOrder) -> Outcome: ...

    @abc.abstractmethod
    async def instruments(self) -> list[InstrumentDefined]: ...

    def rate_usage(self) -> tuple[RateUsage, ...]:
        """The venue's own count of this account's use of its rate limits; empty for a
        venue that reports none (the simulator)."""
        return ()

    async def assets(self) -> list[AssetDefined]:
        """The venue's documented precision of each asset's amounts, where it documents
        one; a venue that does not leaves reconcile without the rounding explanation."""
        return []

    @abc.abstractmethod
    async def leverage_settings(self) -> list[LeverageSet]: ...

    @abc.abstractmethod
    async def marks(self) -> list[MarkPriceObserved]: ...

    @abc.abstractmethod
    async def balances(self) -> BalanceReported: ...

    @abc.abstractmethod
    async def positions(self) -> PositionsReported: ...

    @abc.abstractmethod
    async def open_orders(self) -> list[OrderStatusReported]: ...

    @abc.abstractmethod
    async def order(self, symbol: str, client_order_id: str) -> OrderStatusReported | None:
        """The venue's view of the order with this client order id, or None if it has none."""

    @abc.abstractmethod
    async def fills_since(self, venue_ts: int) -> list[OrderFilled]:
        """Every fill with venue time >= `venue_ts` (a watermark the kernel keeps)."""

    @abc.abstractmethod
    async def funding_since(self, venue_ts: int) -> list[FundingSettled]: ...

    @abc.abstractmethod
    async def transfers_since(self, venue_ts: int) -> list[TransferCompleted]:
        """Deposits and withdrawals with venue time >= `venue_ts`."""
