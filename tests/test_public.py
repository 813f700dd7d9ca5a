"""The public snapshot form (kernel/public.py): its JSON Schema in docs/ agrees with the
types, and a real account's snapshot round-trips through it with every figure intact."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import jsonschema

from events.facts import (
    AssetBalance,
    BalanceReported,
    InstrumentDefined,
    MarginReport,
    MarkPriceObserved,
    OrderFilled,
    PositionsReported,
    ReportedPosition,
    TransferCompleted,
)
from kernel.public import decode, encode, public, schema
from kernel.reconcile import ReconcileConfig
from kernel.snapshot import project
from kernel.state import GENESIS, fold

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "docs" / "snapshot.schema.json"
S = 1_000_000_000


def test_the_schema_file_is_generated_from_the_types() -> None:
    """Regenerate with: .venv/bin/python -c "import json; from kernel.public import schema;
    print(json.dumps(schema(), indent=2, sort_keys=True))" > docs/snapshot.schema.json"""
    assert json.loads(SCHEMA.read_text()) == json.loads(json.dumps(schema()))


def account() -> bytes:
    events = [
        InstrumentDefined(venue_ts=S, symbol="BTCUSDT", instrument_kind="linear", base="BTC",
                          quote="USDT", settle="USDT", tick_size=D("0.1"),
                          lot_size=D("0.001"), min_notional=D("5")),
        TransferCompleted(venue_ts=S, transfer_id="d1", asset="USDT", direction="deposit",
                          amount=D("1000")),
        OrderFilled(venue_ts=2 * S, symbol="BTCUSDT", trade_id="1", order_id="o1", side="buy",
                    qty=D("0.010"), price=D("60000.0"), fee=D("0.24"), fee_currency="USDT",
                    venue_realized_pnl=D(0)),
        MarkPriceObserved(venue_ts=3 * S, symbol="BTCUSDT", price=D("60100")),
        BalanceReported(venue_ts=4 * S, balances=(AssetBalance(asset="USDT",
                                                               wallet=D("999.76")),),
                        margin=MarginReport(asset="USDT", used=D("601"))),
        PositionsReported(venue_ts=4 * S, positions=(ReportedPosition(
            symbol="BTCUSDT", qty=D("0.010"), entry_price=D("60000"), mark_price=D("60100"),
            notional=D("601")),)),
    ]
    state = GENESIS
    for seq, e in enumerate(events, 1):
        state = fold(state, e, seq)
    return encode(public(project(state, ReconcileConfig())))


def test_a_snapshot_round_trips_with_every_figure_as_a_string() -> None:
    data = account()
    snap = decode(data)
    assert encode(snap) == data
    doc = json.loads(data)
    usdt = doc["k"]["assets"]["USDT"]
    assert usdt["capital"] == "999.76"  # 1000 − 0.24
    assert D(usdt["unrealized_pnl"]) == 1  # (60100 − 60000)·0.010
    assert doc["k"]["positions"]["BTCUSDT"]["qty"] == "0.010"
    assert doc["e"]["margins"]["USDT"]["used"] == "601"
    assert doc["reconcile"]["verdict"] == "OK"
    assert doc["version"] == 2 and doc["intents"] == [] and doc["orders"] == []


def test_internals_stay_out() -> None:
    doc = json.loads(account())
    text = json.dumps(doc)
    for internal in ("journals", "valuations", "wallet_moved", "fill_mismatches"):
        assert internal not in text


def test_the_snapshot_validates_against_the_schema_file() -> None:
    jsonschema.validate(json.loads(account()), json.loads(SCHEMA.read_text()))
