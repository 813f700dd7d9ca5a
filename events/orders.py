"""Strategy intents, the kernel's commands to the venue, and the commands' outcomes.

Intents are facts about what a strategy declared (`IntentPlaced`, ...). Commands are
imperative (`PlaceOrder`, ...) and are logged *before* they are sent, with the client
order id, so after a crash the kernel knows what it may have done. An outcome names
its command; `CommandOutcomeUnknown` (a timeout) is resolved by asking the venue.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from events.base import EventBase, key
from events.facts import OrderType, Side, TimeInForce

_NEEDS_PRICE = frozenset({"limit", "stop_limit", "take_profit_limit"})
_NEEDS_TRIGGER = frozenset({"stop", "take_profit", "stop_limit", "take_profit_limit"})


class _OrderSpec(EventBase, frozen=True, kw_only=True):
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    time_in_force: TimeInForce = "GTC"
    reduce_only: bool = False
    post_only: bool = False

    def _check_spec(self) -> None:
        self._ident("symbol", self.symbol)
        self._decimal("qty", self.qty, positive=True)
        self._opt_decimal("price", self.price, positive=True)
        self._opt_decimal("trigger_price", self.trigger_price, positive=True)
        if (self.price is not None) != (self.order_type in _NEEDS_PRICE):
            rule = "is required" if self.order_type in _NEEDS_PRICE else "must be absent"
            self._fail("price", self.price, f"{rule} for a {self.order_type} order")
        if (self.trigger_price is not None) != (self.order_type in _NEEDS_TRIGGER):
            rule = "is required" if self.order_type in _NEEDS_TRIGGER else "must be absent"
            self._fail("trigger_price", self.trigger_price, f"{rule} for a {self.order_type} order")
        if self.post_only and self.order_type != "limit":
            self._fail("post_only", self.post_only, "applies only to limit orders")


class IntentPlaced(_OrderSpec, frozen=True, kw_only=True, tag="intent_placed"):
    """A strategy wants this order to exist. Intents in one `oco_group` cancel each other."""

    intent_id: str
    strategy: str = "default"
    oco_group: str | None = None

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("intent_id", self.intent_id)
        self._ident("strategy", self.strategy)
        self._opt_ident("oco_group", self.oco_group)
        self._check_spec()

    @property
    def dedup_key(self) -> str:
        return key("intent", self.intent_id, "placed")


class IntentAmended(EventBase, frozen=True, kw_only=True, tag="intent_amended"):
    """A strategy changed a working intent; `revision` counts amendments from 1."""

    intent_id: str
    revision: int
    qty: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("intent_id", self.intent_id)
        if self.revision < 1:
            self._fail("revision", self.revision, "must be >= 1")
        self._opt_decimal("qty", self.qty, positive=True)
        self._opt_decimal("price", self.price, positive=True)
        self._opt_decimal("trigger_price", self.trigger_price, positive=True)
        if self.qty is None and self.price is None and self.trigger_price is None:
            self._fail("qty", None, "or price or trigger_price must change")

    @property
    def dedup_key(self) -> str:
        return key("intent", self.intent_id, "amended", self.revision)


class IntentCanceled(EventBase, frozen=True, kw_only=True, tag="intent_canceled"):
    intent_id: str

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("intent_id", self.intent_id)

    @property
    def dedup_key(self) -> str:
        return key("intent", self.intent_id, "canceled")


class PlaceOrder(_OrderSpec, frozen=True, kw_only=True, tag="place_order"):
    command_id: str
    intent_id: str
    client_order_id: str
    #: The intent revision this order realizes (its client order id carries it too).
    revision: int = 0

    def __post_init__(self) -> None:
        self._check_times()
        for f in ("command_id", "intent_id", "client_order_id"):
            self._ident(f, getattr(self, f))
        if self.revision < 0:
            self._fail("revision", self.revision, "must be >= 0")
        self._check_spec()

    @property
    def dedup_key(self) -> str:
        return key("command", self.command_id)


class AmendOrder(EventBase, frozen=True, kw_only=True, tag="amend_order"):
    command_id: str
    intent_id: str
    client_order_id: str
    symbol: str
    qty: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    #: The intent revision the amended order realizes.
    revision: int = 0

    def __post_init__(self) -> None:
        self._check_times()
        for f in ("command_id", "intent_id", "client_order_id", "symbol"):
            self._ident(f, getattr(self, f))
        if self.revision < 0:
            self._fail("revision", self.revision, "must be >= 0")
        self._opt_decimal("qty", self.qty, positive=True)
        self._opt_decimal("price", self.price, positive=True)
        self._opt_decimal("trigger_price", self.trigger_price, positive=True)
        if self.qty is None and self.price is None and self.trigger_price is None:
            self._fail("qty", None, "or price or trigger_price must change")

    @property
    def dedup_key(self) -> str:
        return key("command", self.command_id)


CancelPurpose = Literal["cancel", "replace", "oco", "halt"]


class CancelOrder(EventBase, frozen=True, kw_only=True, tag="cancel_order"):
    """`purpose`: the strategy canceled the intent; the leg is being replaced (an amend
    by cancel-then-replace); another intent of its OCO group filled; trading halted."""

    command_id: str
    intent_id: str
    client_order_id: str
    symbol: str
    purpose: CancelPurpose = "cancel"

    def __post_init__(self) -> None:
        self._check_times()
        for f in ("command_id", "intent_id", "client_order_id", "symbol"):
            self._ident(f, getattr(self, f))

    @property
    def dedup_key(self) -> str:
        return key("command", self.command_id)


class CommandAcknowledged(EventBase, frozen=True, kw_only=True, tag="command_acknowledged"):
    command_id: str
    order_id: str | None = None

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("command_id", self.command_id)
        self._opt_ident("order_id", self.order_id)

    @property
    def dedup_key(self) -> str:
        return key("outcome", self.command_id, "acknowledged")


class CommandRejected(EventBase, frozen=True, kw_only=True, tag="command_rejected"):
    command_id: str
    reason: str
    code: str | None = None

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("command_id", self.command_id)
        self._text("reason", self.reason)

    @property
    def dedup_key(self) -> str:
        return key("outcome", self.command_id, "rejected")


class CommandOutcomeUnknown(EventBase, frozen=True, kw_only=True, tag="command_outcome_unknown"):
    """The venue did not answer in time: the command may or may not have taken effect."""

    command_id: str
    reason: str

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("command_id", self.command_id)
        self._text("reason", self.reason)

    @property
    def dedup_key(self) -> str:
        return key("outcome", self.command_id, "unknown")
