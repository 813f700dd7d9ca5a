"""Intents: what strategies want to exist, and the venue order working each one.

`OrderIntent` is the desired order, as the strategy last declared it (placed, then
amended by revisions, or canceled). `OrderState` is where the venue's real order is:
its client order ids (the current one, and every superseded one), the venue's id and
status, the fills. Both are folded from the log like everything else (`apply`), so a
restart knows every intent and every order it may have sent.

`check` is the pre-trade gate an intent passes before it is logged: schema-valid events
can still be wrong for the account (an unknown symbol, a price off the tick, a halted
kernel). `admit` is what the fold requires of an intent event (an amend of a known,
working intent, at the next revision).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

from events.facts import InstrumentDefined, OrderType, Side, TimeInForce
from events.orders import IntentAmended, IntentCanceled, IntentPlaced
from kernel.money import ZERO

IntentStatus = Literal[
    "PENDING", "SUBMITTING", "ACTIVE", "RECONCILING", "FAILED", "COMPLETED", "CANCELED"
]
#: Statuses after which nothing more happens to an intent.
FINAL: frozenset[str] = frozenset({"FAILED", "COMPLETED", "CANCELED"})


class OrderIntent(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    intent_id: str
    strategy: str
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None
    trigger_price: Decimal | None
    time_in_force: TimeInForce
    reduce_only: bool
    post_only: bool
    oco_group: str | None
    #: 0 as placed; each amendment adds one.
    revision: int = 0
    #: The strategy asked for it to be canceled.
    cancel_requested: bool = False
    created_ts: int = 0
    updated_ts: int = 0


class InFlight(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """The command sent for an intent whose outcome the kernel has not seen yet."""

    command_id: str
    kind: Literal["place", "amend", "cancel"]
    client_order_id: str
    #: The intent revision the command realizes.
    revision: int
    sent_ts: int
    #: The venue did not answer in time: it may or may not have taken effect.
    unknown: bool = False
    #: For a cancel: why (events.orders.CancelPurpose).
    purpose: str = "cancel"
    #: For an amend: what it asks the order to become (None: unchanged).
    qty: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None


class OrderState(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    intent_id: str
    status: IntentStatus = "PENDING"
    in_flight: InFlight | None = None
    #: The intent revision the live venue order realizes (-1: none yet).
    order_revision: int = -1
    #: Queries in a row that found no such order (past `DiffConfig.lost_after` the order
    #: is *lost*: its fills are still booked, and its cancel retried).
    not_found: int = 0
    cancels: int = 0
    amends: int = 0
    #: The venue refused an edit: amend this intent by cancel-then-replace from now on.
    edit_refused: bool = False
    #: The venue cannot find the order the kernel asked to cancel: ask it what happened.
    needs_query: bool = False
    #: The client order id of the venue order working the intent now, once one was sent.
    client_order_id: str | None = None
    #: Earlier client order ids of this intent (legs replaced by an amend): a late report
    #: about one of them never changes the current order.
    superseded: tuple[str, ...] = ()
    venue_order_id: str | None = None
    venue_status: str | None = None
    filled_qty: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    last_sync_ts: int | None = None
    error: str | None = None


class IntentBook(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    intents: dict[str, OrderIntent] = {}
    orders: dict[str, OrderState] = {}
    #: Every client order id the kernel ever sent (current and superseded legs), and the
    #: intent it belongs to: how venue reports find their intent.
    by_client: dict[str, str] = {}
    #: Every command id, and its intent: how outcomes find theirs.
    commands: dict[str, str] = {}


def apply(book: IntentBook, event: IntentPlaced | IntentAmended | IntentCanceled) -> IntentBook:
    """The book after one admitted intent event (`admit` has checked it applies)."""
    intents = dict(book.intents)
    orders = book.orders
    match event:
        case IntentPlaced():
            intents[event.intent_id] = OrderIntent(
                intent_id=event.intent_id, strategy=event.strategy, symbol=event.symbol,
                side=event.side, order_type=event.order_type, qty=event.qty,
                price=event.price, trigger_price=event.trigger_price,
                time_in_force=event.time_in_force, reduce_only=event.reduce_only,
                post_only=event.post_only, oco_group=event.oco_group,
                created_ts=event.venue_ts, updated_ts=event.venue_ts,
            )
            orders = dict(orders)
            orders[event.intent_id] = OrderState(intent_id=event.intent_id)
        case IntentAmended():
            old = intents[event.intent_id]
            intents[event.intent_id] = msgspec.structs.replace(
                old, revision=event.revision, updated_ts=event.venue_ts,
                qty=old.qty if event.qty is None else event.qty,
                price=old.price if event.price is None else event.price,
                trigger_price=(old.trigger_price if event.trigger_price is None
                               else event.trigger_price),
            )
        case IntentCanceled():
            intents[event.intent_id] = msgspec.structs.replace(
                intents[event.intent_id], cancel_requested=True, updated_ts=event.venue_ts)
            order = orders[event.intent_id]
            if order.client_order_id is None and order.status == "PENDING":
                # never sent: nothing to cancel on the venue
                orders = dict(orders)
                orders[event.intent_id] = msgspec.structs.replace(order, status="CANCELED")
    return msgspec.structs.replace(book, intents=intents, orders=orders)


def admit(book: IntentBook, event: IntentPlaced | IntentAmended | IntentCanceled
          ) -> str | None:
    """None if `event` applies to `book`, else why not (the writer quarantines it)."""
    match event:
        case IntentPlaced():
            if event.intent_id in book.intents:
                return f"intent {event.intent_id!r} was placed before"
            return None
        case IntentAmended():
            old = book.intents.get(event.intent_id)
            if old is None:
                return f"amend of unknown intent {event.intent_id!r}"
            if event.revision != old.revision + 1:
                return (f"amend of intent {event.intent_id!r} has revision {event.revision},"
                        f" expected {old.revision + 1}")
            if old.cancel_requested or book.orders[event.intent_id].status in FINAL:
                return f"intent {event.intent_id!r} is no longer working"
            return _spec_problem(old, event)
        case IntentCanceled():
            if event.intent_id not in book.intents:
                return f"cancel of unknown intent {event.intent_id!r}"
            return None


def _spec_problem(old: OrderIntent, event: IntentAmended) -> str | None:
    if event.price is not None and old.price is None:
        return f"intent {old.intent_id!r} is a {old.order_type} order: it has no price to amend"
    if event.trigger_price is not None and old.trigger_price is None:
        return (f"intent {old.intent_id!r} is a {old.order_type} order: it has no trigger"
                " price to amend")
    return None


HALTED = "trading is halted: no new or amended intents until resumed"


def check(
    event: IntentPlaced | IntentAmended,
    instruments: dict[str, InstrumentDefined],
    book: IntentBook,
    halted: bool,
) -> tuple[str, str] | None:
    """The pre-trade gate: None, or (field, reason) for the first rule the intent breaks.
    Reasons are the kernel's own words; the field names where to look."""
    if halted:
        return "kind", HALTED
    if isinstance(event, IntentPlaced):
        symbol, qty, price, trigger = event.symbol, event.qty, event.price, event.trigger_price
    else:
        old = book.intents.get(event.intent_id)
        if old is None:
            return "intent_id", f"no intent {event.intent_id!r} to amend"
        symbol = old.symbol
        qty = event.qty if event.qty is not None else old.qty
        price = event.price if event.price is not None else old.price
        trigger = event.trigger_price if event.trigger_price is not None else old.trigger_price
    inst = instruments.get(symbol)
    if inst is None:
        return "symbol", f"unknown symbol {symbol!r}: the venue has not defined it"
    if qty % inst.lot_size:
        return "qty", f"qty {qty} is not a multiple of the lot size {inst.lot_size}"
    for name, px in (("price", price), ("trigger_price", trigger)):
        if px is not None and px % inst.tick_size:
            return name, f"{name} {px} is not a multiple of the tick size {inst.tick_size}"
    reference = price if price is not None else trigger
    if reference is not None and inst.min_notional:
        notional = qty * reference * inst.contract_size
        if inst.instrument_kind != "inverse" and notional < inst.min_notional:
            return "qty", (f"notional {notional} is below the venue's minimum"
                           f" {inst.min_notional}")
    return None
