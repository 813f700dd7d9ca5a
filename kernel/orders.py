"""The venue side of the intent book: commands the kernel logged, their outcomes, and what
the venue says of its orders, folded into each intent's `OrderState`.

Every transition here is caused by one logged event (docs/intents.md draws them):

* `place_order` → SUBMITTING; `amend_order`, `cancel_order` → RECONCILING. Each records the
  command in flight, with the client order id it names.
* `command_acknowledged` → ACTIVE (a cancel's: CANCELED, or PENDING when it clears the
  way for the next leg of a cancel-then-replace). `command_rejected` → FAILED for a place;
  an amend or a cancel leaves the order as it was, with the error.
  `command_outcome_unknown` keeps the command in flight, marked unknown: only the venue
  can say what happened (the reconciler asks it).
* `order_status_reported` for the current client order id moves the order to what the
  venue says (an unknown outcome is resolved by it); for a superseded id it changes
  nothing: a late report about an old leg never touches the current one.
* `order_filled` with one of the intent's client order ids adds to its filled quantity:
  fills come only from the venue's fills, never inferred from an order's filled
  quantity. Enough of them complete the intent.
* `order_not_found` counts a query that found nothing.

Pure: the same events give the same book on every replay.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from events.facts import OrderFilled, OrderNotFound, OrderStatusReported
from events.orders import (
    AmendOrder,
    CancelOrder,
    CommandAcknowledged,
    CommandOutcomeUnknown,
    CommandRejected,
    PlaceOrder,
)
from kernel.intents import FINAL, InFlight, IntentBook, OrderState
from kernel.money import q18

Command = PlaceOrder | AmendOrder | CancelOrder
Outcome = CommandAcknowledged | CommandRejected | CommandOutcomeUnknown
#: Venue codes for "no such order" answering a cancel (Binance -2011 UNKNOWN_ORDER).
UNKNOWN_ORDER_CODES = frozenset({"-2011", "UNKNOWN_ORDER", "NOT_FOUND"})


def _put(book: IntentBook, order: OrderState, **more: dict[str, str]) -> IntentBook:
    orders = dict(book.orders)
    orders[order.intent_id] = order
    return msgspec.structs.replace(book, orders=orders, **more)


def command(book: IntentBook, cmd: Command) -> IntentBook:
    """A command logged before it is sent."""
    order = book.orders.get(cmd.intent_id)
    if order is None or order.status in FINAL:
        return book  # admission refuses these; a replay of an old log may hold one
    by_client, commands = dict(book.by_client), dict(book.commands)
    by_client[cmd.client_order_id] = cmd.intent_id
    commands[cmd.command_id] = cmd.intent_id
    match cmd:
        case PlaceOrder():
            superseded = order.superseded
            if order.client_order_id not in (None, cmd.client_order_id):
                superseded = (*superseded, order.client_order_id)
            order = msgspec.structs.replace(
                order, status="SUBMITTING", client_order_id=cmd.client_order_id,
                superseded=superseded, not_found=0, needs_query=False,
                in_flight=InFlight(command_id=cmd.command_id, kind="place",
                                   client_order_id=cmd.client_order_id,
                                   revision=cmd.revision, sent_ts=cmd.venue_ts))
        case AmendOrder():
            order = msgspec.structs.replace(
                order, status="RECONCILING", amends=order.amends + 1,
                in_flight=InFlight(command_id=cmd.command_id, kind="amend",
                                   client_order_id=cmd.client_order_id,
                                   revision=cmd.revision, sent_ts=cmd.venue_ts,
                                   qty=cmd.qty, price=cmd.price,
                                   trigger_price=cmd.trigger_price))
        case CancelOrder():
            order = msgspec.structs.replace(
                order, status="RECONCILING", cancels=order.cancels + 1, needs_query=False,
                in_flight=InFlight(command_id=cmd.command_id, kind="cancel",
                                   client_order_id=cmd.client_order_id,
                                   revision=order.order_revision, sent_ts=cmd.venue_ts,
                                   purpose=cmd.purpose))
    return _put(book, order, by_client=by_client, commands=commands)


def outcome(book: IntentBook, out: Outcome) -> IntentBook:
    """The venue's answer to a command (or the kernel's timeout waiting for one)."""
    intent_id = book.commands.get(out.command_id)
    order = None if intent_id is None else book.orders.get(intent_id)
    if order is None or order.in_flight is None or order.in_flight.command_id != out.command_id:
        return book  # a late or repeated answer to a command already resolved
    flight = order.in_flight
    intent = book.intents[order.intent_id]
    match out:
        case CommandOutcomeUnknown():
            order = msgspec.structs.replace(
                order, status="RECONCILING",
                in_flight=msgspec.structs.replace(flight, unknown=True))
        case CommandAcknowledged():
            if flight.kind == "cancel":
                order = _canceled(order, intent.cancel_requested, flight.purpose)
            else:
                order = msgspec.structs.replace(
                    order, status="ACTIVE", in_flight=None, order_revision=flight.revision,
                    venue_order_id=out.order_id or order.venue_order_id, error=None)
        case CommandRejected():
            reason = f"{out.reason} ({out.code})" if out.code else out.reason
            if flight.kind == "place":
                order = msgspec.structs.replace(order, status="FAILED", in_flight=None,
                                                error=reason)
            elif flight.kind == "amend":
                order = msgspec.structs.replace(order, status="ACTIVE", in_flight=None,
                                                edit_refused=True, error=reason)
            else:
                order = msgspec.structs.replace(
                    order, status="ACTIVE", in_flight=None, error=reason,
                    needs_query=out.code in UNKNOWN_ORDER_CODES)
    return _put(book, order)


_WHY = {
    "oco": "canceled: another intent of its OCO group filled",
    "halt": "canceled: trading halted",
}


def _canceled(order: OrderState, requested: bool, purpose: str) -> OrderState:
    """The current leg is gone (`purpose`: why the kernel canceled it, or "venue"): the
    intent is CANCELED, unless the cancel cleared the way for the next leg of an amend by
    cancel-then-replace, which is then PENDING."""
    if requested or purpose != "replace":
        if requested:
            error = None
        elif purpose == "venue":
            error = f"canceled by the venue ({order.venue_status})"
        else:
            error = _WHY.get(purpose, order.error)
        return msgspec.structs.replace(order, status="CANCELED", in_flight=None, error=error)
    superseded = order.superseded
    if order.client_order_id is not None:
        superseded = (*superseded, order.client_order_id)
    return msgspec.structs.replace(order, status="PENDING", in_flight=None,
                                   client_order_id=None, superseded=superseded,
                                   venue_order_id=None, venue_status=None)


_STAGE = {"new": 0, "partially_filled": 1, "filled": 2, "canceled": 2, "expired": 2,
          "rejected": 2}


def report(book: IntentBook, rep: OrderStatusReported) -> IntentBook:
    """The venue's view of one order. Only the intent's current client order id moves it."""
    intent_id = None if rep.client_order_id is None else book.by_client.get(rep.client_order_id)
    order = None if intent_id is None else book.orders.get(intent_id)
    if order is None or order.client_order_id != rep.client_order_id:
        return book  # not ours, or a superseded leg: its fills still come as fills
    if order.last_sync_ts is not None and (
            rep.venue_ts < order.last_sync_ts
            or (rep.venue_ts == order.last_sync_ts
                and _STAGE[rep.status] < _STAGE.get(order.venue_status or "new", 0))):
        # An older view arriving late (a reordered push, a slow query). Within one
        # millisecond an order only moves forward: "new", then filled or done.
        return book
    intent = book.intents[order.intent_id]
    flight = order.in_flight
    order = msgspec.structs.replace(
        order, venue_order_id=rep.order_id, venue_status=rep.status,
        last_sync_ts=rep.venue_ts, not_found=0, needs_query=False,
        avg_fill_price=rep.avg_fill_price or order.avg_fill_price)
    if order.status in FINAL:
        return _put(book, order)
    if rep.status in ("new", "partially_filled"):
        if flight is None:
            order = msgspec.structs.replace(order, status="ACTIVE")
        elif flight.kind == "place":
            # the order exists: a place in flight (acknowledged or not) took effect
            order = msgspec.structs.replace(order, status="ACTIVE", in_flight=None,
                                            order_revision=flight.revision)
        elif flight.kind == "amend" and flight.unknown:
            # The venue's answer to the query: the amend took effect, or it did not (the
            # diff then amends again, under a new command id).
            revision = flight.revision if _shows(rep, flight) else order.order_revision
            order = msgspec.structs.replace(order, status="ACTIVE", in_flight=None,
                                            order_revision=revision)
        elif flight.kind == "cancel" and flight.unknown:
            # The venue's answer to the query: the order is still there, so the cancel did
            # not take effect (it never reached the venue: the daemon died between logging
            # and sending it, or the connection dropped). The diff cancels again, under a
            # new command id; should the first arrive after all, the second is refused as
            # an unknown order, and the query that follows finds it canceled.
            order = msgspec.structs.replace(order, status="ACTIVE", in_flight=None)
    elif rep.status == "filled":
        error = order.error
        if flight is not None and flight.kind == "cancel":
            error = "filled before the cancel took effect"
        order = msgspec.structs.replace(order, status="COMPLETED", in_flight=None, error=error)
    elif rep.status in ("canceled", "expired"):
        purpose = flight.purpose if flight is not None and flight.kind == "cancel" else "venue"
        order = _canceled(order, intent.cancel_requested, purpose)
    elif rep.status == "rejected":
        order = msgspec.structs.replace(order, status="FAILED", in_flight=None,
                                        error="rejected by the venue")
    return _put(book, order)


def _shows(rep: OrderStatusReported, amend: InFlight) -> bool:
    """The venue's order is what `amend` asked for."""
    return ((amend.qty is None or rep.qty == amend.qty)
            and (amend.price is None or rep.price == amend.price)
            and (amend.trigger_price is None or rep.trigger_price == amend.trigger_price))


def fill(book: IntentBook, f: OrderFilled) -> IntentBook:
    """One of the intent's fills (any of its legs): the filled quantity, its average
    price, and COMPLETED once the intent's quantity is filled."""
    intent_id = None if f.client_order_id is None else book.by_client.get(f.client_order_id)
    order = None if intent_id is None else book.orders.get(intent_id)
    if order is None:
        return book
    intent = book.intents[order.intent_id]
    filled = order.filled_qty + f.qty
    avg = f.price if order.avg_fill_price is None or not order.filled_qty else q18(
        (order.avg_fill_price * order.filled_qty + f.price * f.qty) / filled)
    order = msgspec.structs.replace(order, filled_qty=filled, avg_fill_price=avg)
    if filled >= intent.qty and order.status not in FINAL:
        error = order.error
        if order.in_flight is not None and order.in_flight.kind == "cancel":
            error = "filled before the cancel took effect"
        order = msgspec.structs.replace(order, status="COMPLETED", in_flight=None, error=error)
    return _put(book, order)


def not_found(book: IntentBook, nf: OrderNotFound) -> IntentBook:
    intent_id = book.by_client.get(nf.client_order_id)
    order = None if intent_id is None else book.orders.get(intent_id)
    if order is None or order.client_order_id != nf.client_order_id or order.status in FINAL:
        return book
    return _put(book, msgspec.structs.replace(order, not_found=order.not_found + 1))


def remaining(book: IntentBook, intent_id: str) -> Decimal:
    """What is still to fill of an intent."""
    return max(book.intents[intent_id].qty - book.orders[intent_id].filled_qty, Decimal(0))
