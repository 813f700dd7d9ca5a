"""The sim parser on Binance-shaped payloads: the position side `ps` of fills, positions
and funding, funding ids, the venue's notional, and asset precisions.

The payloads follow Binance USD-M's user data stream (ORDER_TRADE_UPDATE, ACCOUNT_UPDATE;
the hedge-mode report is the shape of the examples in https://dev.binance.vision/t/838,
one symbol with a LONG and a SHORT entry), with the sim's extensions (wire.py)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from sim_support import T0, D

from adapters.sim.parse import parse
from events.control import InputQuarantined
from events.facts import (
    AssetDefined,
    BalanceReported,
    FundingSettled,
    InstrumentDefined,
    OrderFilled,
    PositionsReported,
)
from kernel.admit import admit
from kernel.state import GENESIS, AccountState, fold

E = 1_700_000_000_000  # ms


def trade(ps: str) -> dict[str, Any]:
    return {"e": "ORDER_TRADE_UPDATE", "E": E, "T": E, "o": {
        "s": "BTCUSDT", "c": "c1", "S": "SELL", "o": "MARKET", "ot": "MARKET", "f": "GTC",
        "q": "0.010", "p": "0", "ap": "60000.0", "sp": "0", "x": "TRADE", "X": "FILLED",
        "i": 8886774, "l": "0.010", "z": "0.010", "L": "60000.0", "N": "USDT",
        "n": "0.24000000", "T": E, "t": 1234, "m": False, "R": False, "ps": ps,
        "rp": "0.50000000"}}


def report(*positions: dict[str, Any]) -> dict[str, Any]:
    return {"e": "ACCOUNT_UPDATE", "E": E, "T": E, "a": {
        "m": "ORDER",
        "B": [{"a": "USDT", "wb": "94.91018561", "cw": "93.70831461", "bc": "0"}],
        "P": list(positions),
        "M": {"a": "USDT", "im": "1.20187100", "ab": "93.70831461"}}}


def position(ps: str, pa: str, **extra: str) -> dict[str, Any]:
    return {"s": "BTCUSDT", "pa": pa, "ep": "11445.71000", "cr": "-23.20024001",
            "up": "0.17770", "mt": "cross", "iw": "0", "ps": ps, "mp": "11463.48",
            "l": "10", **extra}


def funding(ps: str, **extra: Any) -> dict[str, Any]:
    return {"e": "ACCOUNT_UPDATE", "E": E, "T": E, "a": {
        "m": "FUNDING_FEE", "r": "0.0001",
        "B": [{"a": "USDT", "wb": "94.89888561", "cw": "94.89888561", "bc": "-0.01130000"}],
        "P": [{"s": "BTCUSDT", "pa": "0.010", "ps": ps}], **extra}}


def parsed(msg: dict[str, Any]) -> list[Any]:
    return parse(msgspec.json.encode(msg), T0)


SIDES = [("BOTH", "both"), ("LONG", "long"), ("SHORT", "short")]


@pytest.mark.parametrize(("ps", "side"), SIDES)
def test_a_fills_position_side_comes_from_ps(ps: str, side: str) -> None:
    fill, _ = parsed(trade(ps))
    assert isinstance(fill, OrderFilled)
    assert (fill.position_side, fill.venue_realized_pnl, fill.fee) == (
        side, D("0.5"), D("0.24"))


@pytest.mark.parametrize(("ps", "side"), SIDES)
def test_a_reported_positions_side_comes_from_ps(ps: str, side: str) -> None:
    pa = "-0.010" if ps == "SHORT" else "0.010"
    _, positions = parsed(report(position(ps, pa)))
    assert isinstance(positions, PositionsReported)
    (p,) = positions.positions
    key = "BTCUSDT" if side == "both" else f"BTCUSDT|{side}"
    assert (p.position_side, p.key, p.qty) == (side, key, D(pa))


@pytest.mark.parametrize(("ps", "side"), SIDES)
def test_a_funding_payments_side_and_id_are_kept(ps: str, side: str) -> None:
    (f,) = parsed(funding(ps, tid=9689322392))
    assert isinstance(f, FundingSettled)
    assert (f.position_side, f.funding_id, f.amount) == (side, "9689322392", D("-0.0113"))
    assert f.dedup_key == "funding:BTCUSDT:id:9689322392"


def test_a_funding_push_without_an_id_is_keyed_by_its_side_and_asset() -> None:
    # Binance's own FUNDING_FEE push carries no id (its income record does).
    (f,) = parsed(funding("SHORT"))
    assert isinstance(f, FundingSettled) and f.funding_id is None
    assert f.dedup_key == f"funding:BTCUSDT:{E * 1_000_000}:short:USDT"


def test_a_hedge_report_with_a_long_and_a_short_is_admitted_whole() -> None:
    evs = parsed(report(position("LONG", "0.010"), position("SHORT", "-0.010"),
                        position("BOTH", "0")))
    assert not any(isinstance(e, InputQuarantined) for e in evs), evs
    balances, positions = evs
    assert isinstance(balances, BalanceReported) and isinstance(positions, PositionsReported)
    state: AccountState = fold(GENESIS, InstrumentDefined(
        venue_ts=T0, symbol="BTCUSDT", instrument_kind="linear", base="BTC", quote="USDT",
        settle="USDT", tick_size=D("0.1"), lot_size=D("0.001"), min_notional=D(5)), 1)
    for ev in evs:
        assert admit(state, ev) is None
        state = fold(state, ev, state.seq + 1)
    assert state.e.balances is not None and state.e.balances["USDT"].wallet == D("94.91018561")
    assert state.e.positions is not None
    assert {k: p.qty for k, p in state.e.positions.items()} == {
        "BTCUSDT|long": D("0.010"), "BTCUSDT|short": D("-0.010")}


def test_the_venues_notional_is_kept_when_reported() -> None:
    _, with_it = parsed(report(position("SHORT", "-0.010", notional="-114.63480")))
    _, without = parsed(report(position("SHORT", "-0.010")))
    assert with_it.positions[0].notional == D("-114.6348")
    assert without.positions[0].notional is None


@pytest.mark.parametrize(("msg", "reason"), [
    (trade("HEDGE"), "o.ps has unknown value 'HEDGE'"),
    ({**trade("LONG"), "o": {k: v for k, v in trade("LONG")["o"].items() if k != "ps"}},
     "o.ps is missing"),
    (report(position("LONG", "0.010"), position("LONG", "0.020")), "must not repeat"),
    (report(position("SHORT", "0.010")), "wrong sign for BTCUSDT|short"),
    (funding("LONG", tid="9689322392"), "a.tid must be a non-negative integer"),
    (funding("long"), "P[0].ps has unknown value 'long'"),
    (report(position("LONG", "0.010", notional="NaN")), "P[].notional must be finite"),
])
def test_a_bad_position_side_or_id_is_quarantined_with_the_reason(
    msg: dict[str, Any], reason: str
) -> None:
    (q,) = parsed(msg)
    assert isinstance(q, InputQuarantined) and reason in q.reason, q.reason


def test_asset_precisions_parse_into_asset_defined() -> None:
    msg = {"e": "EXCHANGE_INFO", "E": E, "symbols": [], "assets": [
        {"asset": "USDT", "precision": 8, "rounding": "HALF_EVEN"},
        {"asset": "BTC", "precision": 8, "rounding": "DOWN"}]}
    assert parsed(msg) == [
        AssetDefined(venue_ts=E * 1_000_000, asset="USDT", precision=8, rounding="half_even"),
        AssetDefined(venue_ts=E * 1_000_000, asset="BTC", precision=8, rounding="down")]
    bad = {**msg, "assets": [{"asset": "USDT", "precision": 19, "rounding": "HALF_EVEN"}]}
    (q,) = parsed(bad)
    assert isinstance(q, InputQuarantined) and "precision" in q.reason
    odd = {**msg, "assets": [{"asset": "USDT", "precision": 8, "rounding": "BANKERS"}]}
    (q,) = parsed(odd)
    assert isinstance(q, InputQuarantined) and "assets[].rounding" in q.reason
