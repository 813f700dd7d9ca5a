"""`diff(state, cfg) -> actions`: what the kernel must do so the venue's orders match the
strategies' intents. Pure, deterministic and idempotent: the same state gives the same
actions, and the diff of a converged state is empty. The shell
(kernel/daemon/reconciler.py) logs each action's command before it sends it, so the
next diff, of the state with that command folded in, does not repeat it.

Per intent, in this order (docs/intents.md has the table):

1. A command in flight: wait; if its outcome is unknown (a timeout), `Query` the venue
   by client order id; a place never acknowledged and not found by `not_found_max`
   queries, `place_window_ns` after it was sent, is `Fail`ed. Nothing is re-sent: a
   retried place could be a second order.
2. The venue cannot find an order the kernel asked to cancel: `Query`.
3. A working order that must go (the strategy canceled the intent, another member of its
   OCO group filled, trading is halted): `Cancel`, with that purpose.
4. A working order behind its intent's revision: `Amend` by the venue's edit where the
   adapter has one (and the venue has not refused it for this intent), else `Cancel`
   with purpose "replace"; once that is acknowledged the intent is PENDING again and the
   next leg is placed under a new client order id.
5. A PENDING intent (not halted, not canceled, its OCO group not triggered): `Place`.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal

import msgspec

from events.orders import AmendOrder, CancelOrder, CommandRejected, PlaceOrder
from kernel.intents import FINAL, IntentBook, OrderIntent, OrderState
from kernel.orders import remaining
from kernel.state import AccountState


class DiffConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    #: Client order ids start with this (and `-`): this instance's orders on the venue.
    prefix: str = "ek"
    #: The venue's rules for client order ids (Binance: 1–36 of `.A-Z:/a-z0-9_-`).
    client_id_max: int = 36
    client_id_chars: str = r"[.A-Z:/a-z0-9_-]"
    #: The adapter can edit an order in place (else amends cancel then replace).
    venue_edits: bool = True
    #: A place whose outcome is unknown fails only after this many not-found answers
    #: and this long after it was sent (the venue's own window for new orders).
    not_found_max: int = 5
    place_window_ns: int = 60_000_000_000
    #: A working order not found this many times in a row is *lost*: its fills are still
    #: booked and its cancel retried.
    lost_after: int = 5


class Place(msgspec.Struct, frozen=True, kw_only=True):
    intent_id: str
    command_id: str
    client_order_id: str
    revision: int
    #: What is still to fill: the intent's quantity less what earlier legs filled.
    qty: Decimal


class Amend(msgspec.Struct, frozen=True, kw_only=True):
    intent_id: str
    command_id: str
    client_order_id: str
    revision: int
    qty: Decimal | None
    price: Decimal | None
    trigger_price: Decimal | None


class Cancel(msgspec.Struct, frozen=True, kw_only=True):
    intent_id: str
    command_id: str
    client_order_id: str
    purpose: str


class Query(msgspec.Struct, frozen=True, kw_only=True):
    intent_id: str
    client_order_id: str
    reason: str


class Fail(msgspec.Struct, frozen=True, kw_only=True):
    intent_id: str
    command_id: str
    reason: str


Action = Place | Amend | Cancel | Query | Fail


def client_order_id(cfg: DiffConfig, intent_id: str, revision: int) -> str:
    """Deterministic: `prefix-intent-revision`, or `prefix-<hash of the intent id>-revision`
    where that would break the venue's length or character rules."""
    plain = f"{cfg.prefix}-{intent_id}-{revision}"
    allowed = re.compile(f"{cfg.client_id_chars}+")
    if len(plain) <= cfg.client_id_max and allowed.fullmatch(plain):
        return plain
    digest = hashlib.sha256(intent_id.encode()).hexdigest()
    room = cfg.client_id_max - len(cfg.prefix) - len(str(revision)) - 2
    return f"{cfg.prefix}-{digest[:max(room, 8)]}-{revision}"


def filled_members(book: IntentBook) -> dict[str, set[str]]:
    """Per OCO group, the intents of it that have a fill."""
    out: dict[str, set[str]] = {}
    for intent in book.intents.values():
        if intent.oco_group is not None and book.orders[intent.intent_id].filled_qty > 0:
            out.setdefault(intent.oco_group, set()).add(intent.intent_id)
    return out


def oco_triggered(filled: dict[str, set[str]], intent: OrderIntent) -> bool:
    """Another member of the intent's OCO group has a fill, even a partial one."""
    if intent.oco_group is None:
        return False
    return bool(filled.get(intent.oco_group, set()) - {intent.intent_id})


def diff(state: AccountState, cfg: DiffConfig) -> list[Action]:
    book, now = state.book, state.now
    filled = filled_members(book)
    out: list[Action] = []
    for intent_id in sorted(book.orders):
        order = book.orders[intent_id]
        if order.status in FINAL:
            continue
        action = _one(book, filled, book.intents[intent_id], order, state.halted, now, cfg)
        if action is not None:
            out.append(action)
    return out


def _one(book: IntentBook, filled: dict[str, set[str]], intent: OrderIntent,
         order: OrderState, halted: bool, now: int, cfg: DiffConfig) -> Action | None:
    cid = order.client_order_id
    flight = order.in_flight
    if flight is not None:
        if not flight.unknown:
            return None  # its answer is on the way
        if (flight.kind == "place" and order.not_found >= cfg.not_found_max
                and now - flight.sent_ts >= cfg.place_window_ns):
            return Fail(intent_id=intent.intent_id, command_id=flight.command_id,
                        reason=f"never acknowledged, and not found by {order.not_found}"
                               f" queries over {(now - flight.sent_ts) / 1e9:.0f} s")
        return Query(intent_id=intent.intent_id, client_order_id=flight.client_order_id,
                     reason=f"the outcome of {flight.kind} {flight.command_id} is unknown")
    if order.needs_query and cid is not None:
        return Query(intent_id=intent.intent_id, client_order_id=cid,
                     reason="the venue cannot find the order to cancel")
    purpose = ("cancel" if intent.cancel_requested else "halt" if halted
               else "oco" if oco_triggered(filled, intent) else None)
    if order.status in ("ACTIVE", "RECONCILING") and cid is not None:
        if purpose is not None:
            return Cancel(intent_id=intent.intent_id, client_order_id=cid, purpose=purpose,
                          command_id=f"{cid}:cancel:{order.cancels + 1}")
        if intent.revision > order.order_revision:
            if cfg.venue_edits and not order.edit_refused:
                return Amend(intent_id=intent.intent_id, client_order_id=cid,
                             command_id=f"{cid}:amend:{intent.revision}:{order.amends + 1}",
                             revision=intent.revision, qty=intent.qty, price=intent.price,
                             trigger_price=intent.trigger_price)
            return Cancel(intent_id=intent.intent_id, client_order_id=cid, purpose="replace",
                          command_id=f"{cid}:cancel:{order.cancels + 1}")
        if order.not_found >= cfg.lost_after:
            return Query(intent_id=intent.intent_id, client_order_id=cid,
                         reason=f"lost: the venue did not find it {order.not_found} times"
                                " in a row; its fills are still booked")
        return None
    if order.status == "PENDING" and purpose is None:
        qty = remaining(book, intent.intent_id)
        if qty <= 0:
            return None
        new = client_order_id(cfg, intent.intent_id, intent.revision)
        return Place(intent_id=intent.intent_id, client_order_id=new, revision=intent.revision,
                     command_id=f"{new}:place", qty=qty)
    return None


def command_event(state: AccountState, action: Place | Amend | Cancel | Fail, venue_ts: int
                  ) -> PlaceOrder | AmendOrder | CancelOrder | CommandRejected:
    """The event the shell logs for an action, before it sends anything: the command
    (write-ahead), or, for `Fail`, the kernel's verdict on a place that never took effect."""
    intent = state.book.intents[action.intent_id]
    match action:
        case Place():
            return PlaceOrder(
                venue_ts=venue_ts, command_id=action.command_id, intent_id=intent.intent_id,
                client_order_id=action.client_order_id, revision=action.revision,
                symbol=intent.symbol, side=intent.side, order_type=intent.order_type,
                qty=action.qty, price=intent.price, trigger_price=intent.trigger_price,
                time_in_force=intent.time_in_force, reduce_only=intent.reduce_only,
                post_only=intent.post_only)
        case Amend():
            return AmendOrder(
                venue_ts=venue_ts, command_id=action.command_id, intent_id=intent.intent_id,
                client_order_id=action.client_order_id, symbol=intent.symbol,
                revision=action.revision, qty=action.qty, price=action.price,
                trigger_price=action.trigger_price)
        case Cancel():
            return CancelOrder(
                venue_ts=venue_ts, command_id=action.command_id, intent_id=intent.intent_id,
                client_order_id=action.client_order_id, symbol=intent.symbol,
                purpose=action.purpose)  # type: ignore[arg-type]
        case Fail():
            return CommandRejected(venue_ts=venue_ts, command_id=action.command_id,
                                   reason=action.reason, code="NOT_FOUND")
