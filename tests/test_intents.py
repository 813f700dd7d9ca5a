"""kernel/intents.py: the intent book folded from intent events, its admission rules and
the pre-trade gate, table by table."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from events.facts import InstrumentDefined
from events.orders import IntentAmended, IntentCanceled, IntentPlaced
from kernel import intents
from kernel.intents import IntentBook

BTC = InstrumentDefined(venue_ts=0, symbol="BTCUSDT", instrument_kind="linear", base="BTC",
                        quote="USDT", settle="USDT", tick_size=D("0.1"), lot_size=D("0.001"),
                        min_notional=D("5"))
INSTRUMENTS = {"BTCUSDT": BTC}


def placed(intent_id: str = "i-1", **kw: Any) -> IntentPlaced:
    fields: dict[str, Any] = {"venue_ts": 10, "intent_id": intent_id, "symbol": "BTCUSDT",
                              "side": "buy", "order_type": "limit", "qty": D("0.010"),
                              "price": D("60000.0")}
    fields.update(kw)
    return IntentPlaced(**fields)


def book_of(*events: IntentPlaced | IntentAmended | IntentCanceled) -> IntentBook:
    book = IntentBook()
    for e in events:
        assert intents.admit(book, e) is None
        book = intents.apply(book, e)
    return book


def test_a_placed_intent_is_pending_with_no_order_sent() -> None:
    book = book_of(placed())
    i, o = book.intents["i-1"], book.orders["i-1"]
    assert (i.qty, i.price, i.revision, i.cancel_requested) == (D("0.010"), D("60000.0"), 0,
                                                                 False)
    assert (o.status, o.client_order_id, o.filled_qty) == ("PENDING", None, D(0))


def test_an_amend_changes_only_what_it_names_and_counts_revisions() -> None:
    book = book_of(placed(), IntentAmended(venue_ts=20, intent_id="i-1", revision=1,
                                           price=D("60010.0")))
    i = book.intents["i-1"]
    assert (i.qty, i.price, i.revision, i.created_ts, i.updated_ts) == (
        D("0.010"), D("60010.0"), 1, 10, 20)


def test_canceling_an_intent_never_sent_ends_it_at_once() -> None:
    book = book_of(placed(), IntentCanceled(venue_ts=20, intent_id="i-1"))
    assert book.intents["i-1"].cancel_requested
    assert book.orders["i-1"].status == "CANCELED"


@pytest.mark.parametrize(
    ("events", "event", "reason"),
    [
        ((placed(),), placed(), "intent 'i-1' was placed before"),
        ((), IntentAmended(venue_ts=1, intent_id="i-9", revision=1, qty=D(1)),
         "amend of unknown intent 'i-9'"),
        ((placed(),), IntentAmended(venue_ts=1, intent_id="i-1", revision=2, qty=D(1)),
         "amend of intent 'i-1' has revision 2, expected 1"),
        ((placed(), IntentCanceled(venue_ts=2, intent_id="i-1")),
         IntentAmended(venue_ts=3, intent_id="i-1", revision=1, qty=D(1)),
         "intent 'i-1' is no longer working"),
        ((placed(order_type="market", price=None),),
         IntentAmended(venue_ts=3, intent_id="i-1", revision=1, price=D(1)),
         "intent 'i-1' is a market order: it has no price to amend"),
        ((), IntentCanceled(venue_ts=1, intent_id="i-9"), "cancel of unknown intent 'i-9'"),
    ],
)
def test_admission_names_why_an_intent_event_does_not_apply(
    events: tuple[Any, ...], event: Any, reason: str
) -> None:
    assert intents.admit(book_of(*events), event) == reason


@pytest.mark.parametrize(
    ("event", "halted", "problem"),
    [
        (placed(), False, None),
        (placed(), True, ("kind", "trading is halted: no new or amended intents until resumed")),
        (placed(symbol="DOGEUSDT"), False,
         ("symbol", "unknown symbol 'DOGEUSDT': the venue has not defined it")),
        (placed(qty=D("0.0105")), False,
         ("qty", "qty 0.0105 is not a multiple of the lot size 0.001")),
        (placed(price=D("60000.05")), False,
         ("price", "price 60000.05 is not a multiple of the tick size 0.1")),
        (placed(order_type="stop", price=None, trigger_price=D("59000.01")), False,
         ("trigger_price", "trigger_price 59000.01 is not a multiple of the tick size 0.1")),
        (placed(qty=D("0.001"), price=D("1000")), False,
         ("qty", "notional 1.000 is below the venue's minimum 5")),
        (placed(order_type="market", price=None), False, None),
    ],
)
def test_the_pre_trade_gate(event: IntentPlaced, halted: bool,
                            problem: tuple[str, str] | None) -> None:
    assert intents.check(event, INSTRUMENTS, IntentBook(), halted) == problem


def test_the_gate_checks_an_amend_against_the_intent_it_changes() -> None:
    book = book_of(placed())
    bad = IntentAmended(venue_ts=2, intent_id="i-1", revision=1, price=D("60000.07"))
    assert intents.check(bad, INSTRUMENTS, book, False) == (
        "price", "price 60000.07 is not a multiple of the tick size 0.1")
    unknown = IntentAmended(venue_ts=2, intent_id="i-2", revision=1, qty=D("1"))
    assert intents.check(unknown, INSTRUMENTS, book, False) == (
        "intent_id", "no intent 'i-2' to amend")
