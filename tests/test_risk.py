"""kernel/risk.py through kernel/intake.py's decision: each pre-trade limit refuses with
the rule and the numbers, and nothing is rounded into another order."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from events.facts import InstrumentDefined, LeverageSet, MarkPriceObserved, TransferCompleted
from events.orders import IntentAmended, IntentPlaced
from kernel.intake import Append, Refused, decide
from kernel.risk import RiskConfig
from kernel.state import GENESIS, AccountState, fold


def account() -> AccountState:
    s = GENESIS
    for e in (InstrumentDefined(venue_ts=1, recv_ts=1, symbol="BTCUSDT", instrument_kind="linear",
                                base="BTC", quote="USDT", settle="USDT", tick_size=D("0.1"),
                                lot_size=D("0.001"), min_notional=D("5")),
              TransferCompleted(venue_ts=1, recv_ts=1, transfer_id="d", asset="USDT",
                                direction="deposit", amount=D("1000")),
              LeverageSet(venue_ts=1, recv_ts=1, symbol="BTCUSDT", leverage=D("10")),
              MarkPriceObserved(venue_ts=1, recv_ts=1, symbol="BTCUSDT", price=D("60000"))):
        s = fold(s, e, s.seq + 1)
    return s


def intent(intent_id: str = "a", **kw: Any) -> IntentPlaced:
    fields: dict[str, Any] = {"venue_ts": 2, "recv_ts": 2, "intent_id": intent_id,
                              "symbol": "BTCUSDT", "side": "buy", "order_type": "limit",
                              "qty": D("0.010"), "price": D("60000.0")}
    fields.update(kw)
    return IntentPlaced(**fields)


@pytest.mark.parametrize(
    ("limits", "event", "refusal"),
    [
        (RiskConfig(), intent(), None),
        (RiskConfig(max_order_qty={"BTCUSDT": D("0.005")}), intent(),
         "qty 0.010 is above the limit 0.005 for BTCUSDT (risk.max_order_qty)"),
        (RiskConfig(max_order_notional=D("500")), intent(),
         "notional 600 USDT is above the limit 500 (risk.max_order_notional)"),
        (RiskConfig(max_position={"BTCUSDT": D("0.008")}), intent(),
         "the position in BTCUSDT would be 0.01, beyond the limit 0.008 (risk.max_position)"),
        (RiskConfig(max_position={"BTCUSDT": D("0.008")}), intent(reduce_only=True), None),
        # 0.2 · 60000 = 12000 notional: 1200 margin + 6 fee > the 1000 available
        (RiskConfig(), intent(qty=D("0.200")),
         "cannot be funded: it locks 1206 USDT and 1000 is available after the working"
         " intents' locks"),
        (RiskConfig(require_funding=False), intent(qty=D("0.200")), None),
    ],
)
def test_each_limit_refuses_with_its_numbers(limits: RiskConfig, event: IntentPlaced,
                                             refusal: str | None) -> None:
    decision = decide(account(), event, None, limits)
    if refusal is None:
        assert isinstance(decision, Append)
    else:
        assert decision == Refused("rejected", refusal, "intent.qty")


def test_working_intents_count_against_the_open_limit_and_the_funds() -> None:
    s = fold(account(), intent("a", qty=D("0.150")), 5)  # locks 900 + 4.5
    limits = RiskConfig(max_open_intents=1)
    refused = decide(s, intent("b", qty=D("0.001")), None, limits)
    assert refused == Refused("rejected", "1 intents are working: the limit is 1"
                              " (risk.max_open_intents)", "intent.intent_id")
    short = decide(s, intent("b", qty=D("0.020")), None, RiskConfig())
    assert isinstance(short, Refused) and short.message.startswith("cannot be funded")


def test_an_amend_is_checked_for_what_it_adds() -> None:
    s = fold(account(), intent("a", qty=D("0.100")), 5)  # locks 603 of 1000
    up = IntentAmended(venue_ts=3, recv_ts=3, intent_id="a", revision=1, qty=D("0.200"))
    down = IntentAmended(venue_ts=3, recv_ts=3, intent_id="a", revision=1, qty=D("0.050"))
    assert isinstance(decide(s, up, None, RiskConfig()), Refused)  # adds 603 more: too much
    assert isinstance(decide(s, down, None, RiskConfig()), Append)
