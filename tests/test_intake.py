"""kernel.intake: which intent request is logged, answered as before, or refused (pure)."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from events.control import TradingHalted
from events.facts import InstrumentDefined, TransferCompleted
from events.orders import IntentAmended, IntentCanceled, IntentPlaced
from kernel import intake
from kernel.intake import Append, Done, Refused, decide
from kernel.protocol import AmendIntent, IntentSpec
from kernel.state import GENESIS, AccountState, fold

T = 1_700_000_000_000_000_000
BTC = InstrumentDefined(venue_ts=T, symbol="BTCUSDT", instrument_kind="linear", base="BTC",
                        quote="USDT", settle="USDT", tick_size=Decimal("0.1"),
                        lot_size=Decimal("0.001"), min_notional=Decimal(5))
SPEC = IntentSpec(intent_id="g1", symbol="BTCUSDT", side="buy", order_type="limit",
                  qty=Decimal("0.010"), price=Decimal("60000.0"))
PLACED = intake.placed(SPEC, T + 1)
assert isinstance(PLACED, IntentPlaced)


#: Money enough that the funding check (kernel.risk) never decides these tables.
FUNDS = TransferCompleted(venue_ts=T, transfer_id="seed", asset="USDT", direction="deposit",
                          amount=Decimal("1000000"))


def state(*events: object) -> AccountState:
    s = GENESIS
    for e in (BTC, FUNDS, *events):
        s = fold(s, e, s.seq + 1)  # type: ignore[arg-type]
    return s


def amend(revision: int = 1, **kw: object) -> IntentAmended:
    return IntentAmended(venue_ts=T + 5, intent_id="g1", revision=revision, **kw)  # type: ignore[arg-type]


HALT = TradingHalted(venue_ts=T + 3, reason="test")
CANCEL = IntentCanceled(venue_ts=T + 4, intent_id="g1")


def test_a_new_valid_intent_is_appended() -> None:
    assert decide(state(), PLACED, None) == Append(PLACED)


def test_the_same_body_logged_before_is_a_duplicate_whatever_its_times() -> None:
    earlier = msgspec.structs.replace(PLACED, venue_ts=T - 50, recv_ts=T - 40)
    assert decide(state(PLACED), PLACED, (7, earlier)) == Done(7)


def test_another_body_under_a_logged_id_is_a_conflict_naming_the_field() -> None:
    other = msgspec.structs.replace(PLACED, qty=Decimal("0.02"))
    d = decide(state(PLACED), other, (7, PLACED))
    assert isinstance(d, Refused) and (d.code, d.field) == ("conflict", "intent.qty")
    assert "placed at seq 7 with another qty" in d.message


@pytest.mark.parametrize(("change", "code", "field"), [
    ({"symbol": "ETHUSDT"}, "rejected", "intent.symbol"),
    ({"price": Decimal("60000.05")}, "rejected", "intent.price"),
    ({"qty": Decimal("0.0001")}, "rejected", "intent.qty"),
])
def test_the_pre_trade_gate_refuses_with_its_field(change: dict[str, object], code: str,
                                                    field: str) -> None:
    d = decide(state(), msgspec.structs.replace(PLACED, **change), None)
    assert isinstance(d, Refused) and (d.code, d.field) == (code, field)


def test_halted_refuses_placements_and_amendments_not_cancels() -> None:
    s = state(PLACED, HALT)
    assert decide(s, msgspec.structs.replace(PLACED, intent_id="g2"), None) == Refused(
        "halted", "trading is halted: no new or amended intents until resumed")
    assert isinstance(d := decide(s, amend(qty=Decimal("0.02")), None), Refused)
    assert d.code == "halted"
    assert decide(s, CANCEL, None) == Append(CANCEL)


def test_while_halted_an_amend_is_refused_as_halted_whatever_became_of_its_order() -> None:
    # The halt cancels working orders: by the time an amend arrives its intent may be
    # CANCELED by the halt itself, and the answer must still be `halted`.
    for s in (state(PLACED, HALT, CANCEL), state(PLACED, CANCEL, HALT)):
        d = decide(s, amend(qty=Decimal("0.02")), None)
        assert d == Refused("halted", "trading is halted: no new or amended intents until"
                            " resumed")


def test_amendments() -> None:
    s = state(PLACED)
    ok = amend(price=Decimal("60010.0"))
    assert decide(s, ok, None) == Append(ok)
    assert decide(state(PLACED, ok), ok, (9, ok)) == Done(9)
    d = decide(state(PLACED, ok), amend(price=Decimal("1.0")), (9, ok))
    assert isinstance(d, Refused) and (d.code, d.field) == ("conflict", "price")
    d = decide(s, amend(2, qty=Decimal("0.02")), None)
    assert isinstance(d, Refused) and (d.code, d.field) == ("conflict", "revision")
    d = decide(s, amend(trigger_price=Decimal("1.0")), None)
    assert isinstance(d, Refused) and (d.code, d.field) == ("invalid", "trigger_price")
    d = decide(state(), amend(qty=Decimal("0.02")), None)
    assert isinstance(d, Refused) and (d.code, d.field) == ("not_found", "intent_id")
    d = decide(state(PLACED, CANCEL), amend(qty=Decimal("0.02")), None)
    assert isinstance(d, Refused) and d.code == "rejected" and "canceled" in d.message


def test_cancels() -> None:
    assert decide(state(PLACED), CANCEL, None) == Append(CANCEL)
    assert decide(state(PLACED, CANCEL), CANCEL, (4, CANCEL)) == Done(4)
    d = decide(state(), CANCEL, None)
    assert isinstance(d, Refused) and d.code == "not_found"


def test_building_the_event_names_the_bad_field() -> None:
    bad = intake.placed(msgspec.structs.replace(SPEC, order_type="market"), T)
    assert isinstance(bad, Refused) and (bad.code, bad.field) == ("invalid", "intent.price")
    assert bad.message == "IntentPlaced.price must be absent for a market order, was" \
                          " Decimal('60000.0')"
    empty = intake.amended(AmendIntent(id=1, intent_id="g1", revision=1), T)
    assert isinstance(empty, Refused) and empty.field == "qty"
