"""Which API requests about intents get logged: the pure decisions behind place, amend and
cancel.

The server (`kernel/daemon/intake.py`) builds the event from the request (`placed`,
`amended`, `canceled`: a value the event's own checks refuse is `Refused("invalid")`
naming the field), then, inside the one writer, looks the event's dedup key up in the
log and asks `decide(state, event, prior)`, where `prior` is the logged event holding
that key with its seq, if any. The answer is one of:

* `Append(event)`: log it (the writer's own screening will let it through: `decide`
  refuses what admission would quarantine, so nothing is logged for a refusal);
* `Done(seq)`: it was logged before with the same body (ignoring its times): answer
  with the first seq, as a duplicate;
* `Refused(code, message, field)`: answer with a typed error; nothing is logged.
"""

from __future__ import annotations

import re
from typing import TypeAlias

import msgspec

from events.codec import Event
from events.orders import IntentAmended, IntentCanceled, IntentPlaced
from kernel import intents, risk
from kernel.errors import EventValidationError
from kernel.protocol import AmendIntent, CancelIntent, ErrorCode, IntentSpec
from kernel.risk import RiskConfig
from kernel.state import AccountState

Prior: TypeAlias = tuple[int, Event] | None
IntentEvent: TypeAlias = IntentPlaced | IntentAmended | IntentCanceled


class Append(msgspec.Struct, frozen=True):
    event: IntentPlaced | IntentAmended | IntentCanceled


class Done(msgspec.Struct, frozen=True):
    seq: int
    duplicate: bool = True


class Refused(msgspec.Struct, frozen=True):
    code: ErrorCode
    message: str
    field: str | None = None


Decision: TypeAlias = Append | Done | Refused

# EventBase._fail writes "<Type>.<field> <rule>, was <value>".
_FIELD = re.compile(r"^\w+\.(\w+) ")


def _invalid(e: EventValidationError, prefix: str) -> Refused:
    m = _FIELD.match(str(e))
    field = f"{prefix}{m[1]}" if m else None
    return Refused("invalid", str(e), field)


def placed(spec: IntentSpec, now: int) -> IntentPlaced | Refused:
    """The `intent_placed` event a `place_intent` asks for, dated `now`."""
    try:
        return IntentPlaced(
            venue_ts=now, intent_id=spec.intent_id, strategy=spec.strategy,
            symbol=spec.symbol, side=spec.side, order_type=spec.order_type, qty=spec.qty,
            price=spec.price, trigger_price=spec.trigger_price,
            time_in_force=spec.time_in_force, reduce_only=spec.reduce_only,
            post_only=spec.post_only, oco_group=spec.oco_group)
    except EventValidationError as e:
        return _invalid(e, "intent.")


def amended(req: AmendIntent, now: int) -> IntentAmended | Refused:
    try:
        return IntentAmended(venue_ts=now, intent_id=req.intent_id, revision=req.revision,
                             qty=req.qty, price=req.price, trigger_price=req.trigger_price)
    except EventValidationError as e:
        return _invalid(e, "")


def canceled(req: CancelIntent, now: int) -> IntentCanceled | Refused:
    try:
        return IntentCanceled(venue_ts=now, intent_id=req.intent_id)
    except EventValidationError as e:
        return _invalid(e, "")


def difference(a: Event, b: Event) -> str | None:
    """The first field in which two events differ, their times aside; None if none."""
    if type(a) is not type(b):
        return "kind"
    for f in a.__struct_fields__:
        if f not in ("venue_ts", "recv_ts") and getattr(a, f) != getattr(b, f):
            return f
    return None


def decide(state: AccountState, event: IntentEvent, prior: Prior,
           limits: RiskConfig | None = None) -> Decision:
    """Log `event`, answer as before, or refuse; `prior` holds `event`'s dedup key.
    `limits`: the pre-trade limits (kernel.risk), past the venue's own rules."""
    limits = limits or RiskConfig()
    match event:
        case IntentPlaced():
            return _place(state, event, prior, limits)
        case IntentAmended():
            return _amend(state, event, prior, limits)
        case IntentCanceled():
            if prior is not None:
                return Done(prior[0])
            if event.intent_id not in state.book.intents:
                return Refused("not_found", f"no intent {event.intent_id!r}", "intent_id")
            return _admitted(state, event, "intent_id")


def _place(state: AccountState, event: IntentPlaced, prior: Prior, limits: RiskConfig
           ) -> Decision:
    if prior is not None:
        seq, logged = prior
        field = difference(logged, event)
        if field is None:
            return Done(seq)
        return Refused("conflict", f"intent {event.intent_id!r} was placed at seq {seq} with"
                       f" another {field}: an intent id names one intent (amend it, or"
                       " use a new id)", f"intent.{field}")
    found = intents.check(event, state.instruments, state.book, state.halted)
    if found is not None:
        field, reason = found
        if state.halted:
            return Refused("halted", reason)
        return Refused("rejected", reason, f"intent.{field}")
    if (broken := risk.check(state, event, limits)) is not None:
        return Refused("rejected", broken[1], f"intent.{broken[0]}")
    return _admitted(state, event, "intent.intent_id")


def _amend(state: AccountState, event: IntentAmended, prior: Prior, limits: RiskConfig
           ) -> Decision:
    name = event.intent_id
    if prior is not None:
        seq, logged = prior
        field = difference(logged, event)
        if field is None:
            return Done(seq)
        return Refused("conflict", f"revision {event.revision} of intent {name!r} was logged"
                       f" at seq {seq} with another {field}", field)
    old = state.book.intents.get(name)
    if old is None:
        return Refused("not_found", f"no intent {name!r}", "intent_id")
    if event.revision != old.revision + 1:
        return Refused("conflict", f"intent {name!r} is at revision {old.revision}: the next"
                       f" amendment is revision {old.revision + 1}", "revision")
    if state.halted:
        # Before the order's status: a halt cancels working orders, so while halted an
        # order may be CANCELED by the halt itself, and the halt is the reason.
        return Refused("halted", intents.HALTED)
    status = state.book.orders[name].status
    if old.cancel_requested or status in intents.FINAL:
        why = "canceled" if old.cancel_requested else status
        return Refused("rejected", f"intent {name!r} is {why}: it can no longer be amended",
                       "intent_id")
    for field in ("price", "trigger_price"):
        if getattr(event, field) is not None and getattr(old, field) is None:
            return Refused("invalid", f"intent {name!r} is a {old.order_type} order: it has"
                           f" no {field} to amend", field)
    found = intents.check(event, state.instruments, state.book, halted=False)  # see above
    if found is not None:
        field, reason = found
        return Refused("rejected", reason, field)
    if (broken := risk.check(state, event, limits)) is not None:
        return Refused("rejected", broken[1], broken[0])
    return _admitted(state, event, "intent_id")


def _admitted(state: AccountState, event: IntentEvent, field: str) -> Decision:
    # The checks above answer every case admission refuses, with a typed code; this is
    # the guard that nothing the writer would quarantine is appended in the API's name.
    reason = intents.admit(state.book, event)
    return Append(event) if reason is None else Refused("rejected", reason, field)
