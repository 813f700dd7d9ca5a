"""Admission: may this schema-valid event be folded into this state?

Some faults are only visible against the state: a fill for a symbol the venue never
defined, leverage on a spot instrument, a redefinition that changes the kind of an
instrument with an open position. `admit` names the reason; the writer then logs the
event as `InputQuarantined` instead, so the fold never sees it and the ledger is
unchanged. Pure: same state and event, same answer, on every replay.
"""

from __future__ import annotations

from typing import Protocol

from events.codec import Event
from events.facts import (
    FundingSettled,
    InstrumentDefined,
    LeverageSet,
    MarkPriceObserved,
    OrderFilled,
    PositionsReported,
)
from events.orders import IntentAmended, IntentCanceled, IntentPlaced
from kernel import intents
from kernel.intents import IntentBook


class Admitting(Protocol):
    """What admission reads of a state: an `AccountState`, or a `kernel.state.Draft`
    in the middle of a batch."""

    @property
    def instruments(self) -> dict[str, InstrumentDefined]: ...

    @property
    def book(self) -> IntentBook: ...

    def holds(self, symbol: str) -> bool: ...


def admit(state: Admitting, event: Event) -> str | None:
    """None if `event` may be folded into `state`, else the reason it may not."""
    match event:
        case OrderFilled():
            inst = state.instruments.get(event.symbol)
            if inst is None:
                return f"unknown symbol {event.symbol!r}: no instrument_defined before this fill"
            if inst.instrument_kind == "spot" and event.position_side != "both":
                return f"spot fill for {event.symbol!r} has position_side {event.position_side!r}"
            return None
        case MarkPriceObserved():
            if event.symbol not in state.instruments:
                return f"unknown symbol {event.symbol!r}"
            return None
        case FundingSettled():
            inst = state.instruments.get(event.symbol)
            if inst is None:
                return f"unknown symbol {event.symbol!r}"
            if inst.instrument_kind == "spot":
                return f"funding settled on spot instrument {event.symbol!r}"
            return None
        case LeverageSet():
            inst = state.instruments.get(event.symbol)
            if inst is None:
                return f"unknown symbol {event.symbol!r}"
            if inst.instrument_kind == "spot":
                return f"leverage set on spot instrument {event.symbol!r}"
            return None
        case PositionsReported():
            for p in event.positions:
                inst = state.instruments.get(p.symbol)
                if inst is None:
                    return f"unknown symbol {p.symbol!r} in positions report"
                if inst.instrument_kind == "spot":
                    return f"positions report holds spot instrument {p.symbol!r}"
            return None
        case InstrumentDefined():
            old = state.instruments.get(event.symbol)
            if old is None:
                return None
            changed = (
                old.instrument_kind != event.instrument_kind
                or old.settle != event.settle
                or old.contract_size != event.contract_size
            )
            if changed and state.holds(event.symbol):
                return (
                    f"redefinition of {event.symbol!r} changes kind, settlement or contract"
                    " size while a position is open"
                )
            return None
        case IntentPlaced() | IntentAmended() | IntentCanceled():
            return intents.admit(state.book, event)
        case _:
            return None
