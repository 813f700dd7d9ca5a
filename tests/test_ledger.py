"""K, the kernel's ledger, driven through `fold` with hand-checked numbers.

Every expected figure is a literal worked out by hand; the arithmetic is in the
comment next to it. docs/ledger.md walks through the same numbers.
"""

from __future__ import annotations

import decimal
import itertools
from decimal import Decimal as D

import msgspec
import pytest

from events.codec import Event
from events.control import ManualAdjustment
from events.facts import (
    FundingSettled,
    InstrumentDefined,
    LeverageSet,
    MarkPriceObserved,
    OrderFilled,
    TransferCompleted,
)
from kernel.state import GENESIS, AccountState, fold

_ids = itertools.count(1)


# --- builders -------------------------------------------------------------------------


def linear(symbol: str = "BTCUSDT", cs: str = "1") -> InstrumentDefined:
    return InstrumentDefined(
        venue_ts=0, symbol=symbol, instrument_kind="linear", base=symbol[:-4], quote="USDT",
        settle="USDT", tick_size=D("0.1"), lot_size=D("0.001"), min_notional=D("5"),
        contract_size=D(cs),
    )


def inverse(symbol: str = "BTCUSD", cs: str = "100") -> InstrumentDefined:
    return InstrumentDefined(
        venue_ts=0, symbol=symbol, instrument_kind="inverse", base="BTC", quote="USD",
        settle="BTC", tick_size=D("0.5"), lot_size=D("1"), min_notional=D("0"),
        contract_size=D(cs),
    )


def spot(symbol: str = "BTCUSDT") -> InstrumentDefined:
    return InstrumentDefined(
        venue_ts=0, symbol=symbol, instrument_kind="spot", base="BTC", quote="USDT",
        settle="USDT", tick_size=D("0.01"), lot_size=D("0.0001"), min_notional=D("5"),
    )


def buy(qty: str, px: str, **kw: object) -> OrderFilled:
    return _fill("buy", qty, px, **kw)


def sell(qty: str, px: str, **kw: object) -> OrderFilled:
    return _fill("sell", qty, px, **kw)


def _fill(
    side: str, qty: str, px: str, *, symbol: str = "BTCUSDT", fee: str = "0",
    fee_ccy: str = "USDT", ps: str = "both",
) -> OrderFilled:
    n = next(_ids)
    return OrderFilled(
        venue_ts=0, symbol=symbol, trade_id=f"t{n}", order_id=f"o{n}", side=side,  # type: ignore[arg-type]
        qty=D(qty), price=D(px), fee=D(fee), fee_currency=fee_ccy,
        position_side=ps,  # type: ignore[arg-type]
    )


def deposit(amount: str, asset: str = "USDT") -> TransferCompleted:
    return TransferCompleted(venue_ts=0, transfer_id=f"x{next(_ids)}", asset=asset,
                             direction="deposit", amount=D(amount))


def withdraw(amount: str, asset: str = "USDT") -> TransferCompleted:
    return TransferCompleted(venue_ts=0, transfer_id=f"x{next(_ids)}", asset=asset,
                             direction="withdrawal", amount=D(amount))


def funding(amount: str, symbol: str = "BTCUSDT", asset: str = "USDT") -> FundingSettled:
    return FundingSettled(venue_ts=0, symbol=symbol, asset=asset, amount=D(amount))


def adjust(amount: str, asset: str = "USDT") -> ManualAdjustment:
    return ManualAdjustment(venue_ts=0, adjustment_id=f"a{next(_ids)}", asset=asset,
                            amount=D(amount), reason="opening balance")


def mark(px: str, symbol: str = "BTCUSDT") -> MarkPriceObserved:
    return MarkPriceObserved(venue_ts=0, symbol=symbol, price=D(px))


def leverage(lev: str, symbol: str = "BTCUSDT") -> LeverageSet:
    return LeverageSet(venue_ts=0, symbol=symbol, leverage=D(lev))


def replay(*events: Event) -> AccountState:
    """Fold `events` from genesis at seq 1, 2, …; each is stamped with its seq as time."""
    s = GENESIS
    for seq, e in enumerate(events, 1):
        e = msgspec.structs.replace(e, venue_ts=seq * 1000, recv_ts=seq * 1000)
        s = fold(s, e, seq)
    return s


# --- one position, table-driven -------------------------------------------------------

# (id, fills after a linear BTCUSDT definition, qty, avg_open, cumulative realized)
POSITION_CASES = [
    ("open long", [buy("2", "30000")], "2", "30000", "0"),
    # (30000·1 + 31000·3) / 4 = 123000 / 4 = 30750
    ("scale in long", [buy("1", "30000"), buy("3", "31000")], "4", "30750", "0"),
    # (31750 − 30750)·1 = 1000; avg_open unchanged
    ("partial close 1", [buy("1", "30000"), buy("3", "31000"), sell("1", "31750")],
     "3", "30750", "1000"),
    # 1000 + (30500 − 30750)·2 = 1000 − 500 = 500
    ("partial close 2",
     [buy("1", "30000"), buy("3", "31000"), sell("1", "31750"), sell("2", "30500")],
     "1", "30750", "500"),
    # short: (30000 − 29000)·0.5 = 500
    ("short partial cover", [sell("2", "30000"), buy("0.5", "29000")], "-1.5", "30000", "500"),
    # short scale-in: (30000·1.5 + 31000·0.5) / 2 = (45000 + 15500) / 2 = 30250
    ("short scale in", [sell("2", "30000"), buy("0.5", "29000"), sell("0.5", "31000")],
     "-2", "30250", "500"),
    # flip: closes 1 long: (110 − 100)·1 = 10; the remaining 2 open short at 110
    ("flip long to short", [buy("1", "100"), sell("3", "110")], "-2", "110", "10"),
    # flip: closes 1 short: (100 − 90)·1 = 10; the remaining 1 opens long at 90
    ("flip short to long", [sell("1", "100"), buy("2", "90")], "1", "90", "10"),
]


@pytest.mark.parametrize(
    ("fills", "qty", "avg", "realized"),
    [pytest.param(f, q, a, r, id=i) for i, f, q, a, r in POSITION_CASES],
)
def test_single_position(fills: list[OrderFilled], qty: str, avg: str, realized: str) -> None:
    s = replay(linear(), *fills)
    pos = s.k.positions["BTCUSDT"]
    assert pos.qty == D(qty)
    assert pos.avg_open == D(avg)
    assert pos.realized_pnl == D(realized)
    assert s.k.realized_pnl == {"USDT": D(realized)}
    assert s.k.open_positions == 1


def test_open_long_charges_the_fee_and_realizes_nothing() -> None:
    s = replay(linear(), deposit("10000"), buy("2", "30000", fee="12"))
    assert s.k.wallets == {"USDT": D("9988")}  # 10000 − 12
    assert s.k.fees == {"USDT": D("12")}
    assert s.k.realized_pnl == {"USDT": D("0")}
    assert s.last_fill is not None and s.last_fill.kernel == D("0")


def test_full_close_removes_the_position_and_reopen_starts_a_fresh_average() -> None:
    fills = [buy("1", "30000"), buy("3", "31000"), sell("1", "31750"), sell("2", "30500")]
    # last lot: (32000 − 30750)·1 = 1250; cumulative 500 + 1250 = 1750
    closed = replay(linear(), *fills, sell("1", "32000"))
    assert closed.k.positions == {}
    assert closed.k.open_positions == 0
    assert closed.k.realized_pnl == {"USDT": D("1750")}
    assert closed.last_fill is not None and closed.last_fill.kernel == D("1250")
    # reopening: the average is the new fill's price, not a blend with 30750
    reopened = replay(linear(), *fills, sell("1", "32000"), buy("1", "20000"))
    pos = reopened.k.positions["BTCUSDT"]
    assert (pos.qty, pos.avg_open, pos.realized_pnl) == (D("1"), D("20000"), D("0"))


def test_flip_then_close_realizes_each_leg_once() -> None:
    # buy 1 @ 100; sell 3 @ 110 realizes (110 − 100)·1 = 10 and opens −2 @ 110;
    # buy 2 @ 100 realizes (110 − 100)·2 = 20; total 30
    s = replay(linear(), buy("1", "100"), sell("3", "110"), buy("2", "100"))
    assert s.k.positions == {}
    assert s.k.realized_pnl == {"USDT": D("30")}
    assert s.last_fill is not None and s.last_fill.kernel == D("20")


def test_multiple_cycles_accumulate_realized_and_fees() -> None:
    s = replay(
        linear(),
        deposit("1000"),
        buy("1", "100", fee="0.1"), sell("1", "110", fee="0.11"),     # +10
        sell("2", "120", fee="0.24"), buy("2", "115", fee="0.23"),    # (120 − 115)·2 = +10
        buy("0.5", "200", fee="0.1"), sell("0.5", "180", fee="0.09"),  # (180 − 200)·0.5 = −10
    )
    assert s.k.positions == {}
    assert s.k.realized_pnl == {"USDT": D("10")}  # 10 + 10 − 10
    assert s.k.fees == {"USDT": D("0.87")}  # 0.1 + 0.11 + 0.24 + 0.23 + 0.1 + 0.09
    assert s.k.wallets == {"USDT": D("1009.13")}  # 1000 + 10 − 0.87
    assert s.k.transfers == {"USDT": D("1000")}


def test_fee_in_bnb_leaves_the_usdt_wallet_fee_free() -> None:
    s = replay(
        linear(),
        deposit("1000"),
        adjust("1", "BNB"),
        buy("1", "100", fee="0.0002", fee_ccy="BNB"),
        sell("1", "105", fee="0.0003", fee_ccy="BNB"),
    )
    assert s.k.wallets["USDT"] == D("1005")  # 1000 + (105 − 100)·1, no fee
    assert s.k.wallets["BNB"] == D("0.9995")  # 1 − 0.0002 − 0.0003
    assert s.k.fees == {"BNB": D("0.0005")}
    assert s.k.realized_pnl == {"USDT": D("5")}


def test_funding_is_signed_from_the_accounts_view() -> None:
    s = replay(linear(), deposit("100"), funding("1.5"), funding("-0.75"))
    assert s.k.funding == {"USDT": D("0.75")}  # +1.5 received, −0.75 paid
    assert s.k.wallets == {"USDT": D("100.75")}  # 100 + 0.75


def test_deposits_and_withdrawals_move_transfers_and_the_wallet() -> None:
    s = replay(deposit("500"), withdraw("120.5"))
    assert s.k.transfers == {"USDT": D("379.5")}  # 500 − 120.5
    assert s.k.wallets == {"USDT": D("379.5")}
    assert s.k.adjustments == {}


def test_manual_adjustment_is_kept_apart_from_transfers() -> None:
    s = replay(adjust("25"), adjust("-5"))
    assert s.k.adjustments == {"USDT": D("20")}  # 25 − 5
    assert s.k.wallets == {"USDT": D("20")}
    assert s.k.transfers == {}


# --- inverse ---------------------------------------------------------------------------


def test_inverse_scale_in_uses_the_harmonic_average() -> None:
    # 20 @ 40000 and 25 @ 62500: 45 / (20/40000 + 25/62500) = 45 / (0.0005 + 0.0004) = 50000
    s = replay(inverse(), buy("20", "40000", symbol="BTCUSD"), buy("25", "62500", symbol="BTCUSD"))
    pos = s.k.positions["BTCUSD"]
    assert (pos.qty, pos.avg_open) == (D("45"), D("50000"))


def test_inverse_realizes_in_the_base_coin() -> None:
    s = replay(
        inverse(),
        deposit("1", "BTC"),
        buy("20", "40000", symbol="BTCUSD", fee="0.0001", fee_ccy="BTC"),
        buy("25", "62500", symbol="BTCUSD", fee="0.0001", fee_ccy="BTC"),
        # (1/50000 − 1/62500)·20·100 = (0.00002 − 0.000016)·2000 = 0.008 BTC
        sell("20", "62500", symbol="BTCUSD", fee="0.0001", fee_ccy="BTC"),
        mark("80000", "BTCUSD"),
    )
    assert s.last_fill is not None and s.last_fill.kernel == D("0.008")
    assert s.k.realized_pnl == {"BTC": D("0.008")}
    pos = s.k.positions["BTCUSD"]
    assert (pos.qty, pos.avg_open) == (D("25"), D("50000"))
    assert s.k.wallets == {"BTC": D("1.0077")}  # 1 + 0.008 − 3·0.0001
    # (1/50000 − 1/80000)·25·100 = (0.00002 − 0.0000125)·2500 = 0.01875 BTC
    assert s.k.unrealized_pnl == {"BTC": D("0.01875")}
    assert s.k.open_notional == {"BTC": D("0.03125")}  # 25·100 / 80000
    assert s.k.equity == {"BTC": D("1.02645")}  # 1.0077 + 0.01875


def test_inverse_short_profits_when_the_price_falls() -> None:
    # (1/50000 − 1/40000)·10·100·(−1) = (−0.000005)·1000·(−1) = 0.005 BTC
    s = replay(inverse(), sell("10", "50000", symbol="BTCUSD"), buy("10", "40000", symbol="BTCUSD"))
    assert s.k.realized_pnl == {"BTC": D("0.005")}
    assert s.k.positions == {}


# --- spot ------------------------------------------------------------------------------


def test_spot_buy_with_the_fee_in_the_base_coin() -> None:
    s = replay(spot(), deposit("20000"), buy("0.5", "30000", fee="0.0005", fee_ccy="BTC"))
    assert s.k.wallets["BTC"] == D("0.4995")  # 0.5 − 0.0005
    assert s.k.wallets["USDT"] == D("5000")  # 20000 − 0.5·30000
    held = s.k.holdings["BTCUSDT"]
    assert (held.qty, held.avg_open) == (D("0.4995"), D("30000"))
    assert s.k.fees == {"BTC": D("0.0005")}
    assert s.k.positions == {}


def test_spot_sell_of_the_whole_holding() -> None:
    s = replay(
        spot(),
        deposit("20000"),
        buy("0.5", "30000", fee="0.0005", fee_ccy="BTC"),
        # 0.4995·31000 = 15484.5 quote; fee 0.1% = 15.4845
        sell("0.4995", "31000", fee="15.4845"),
    )
    assert s.k.holdings == {}
    assert s.k.wallets["BTC"] == D("0")  # 0.4995 − 0.4995
    assert s.k.wallets["USDT"] == D("20469.0155")  # 5000 + 15484.5 − 15.4845
    # (31000 − 30000)·0.4995 = 499.5
    assert s.last_fill is not None and s.last_fill.kernel == D("499.5")
    # the sale's realized PnL is reported per quote asset and per symbol, and the
    # holding's disappearance does not take it away
    assert s.k.realized_pnl == {"USDT": D("499.5")}
    assert s.k.realized_by_symbol == {"BTCUSDT": D("499.5")}


def test_spot_realized_pnl_is_cumulative_across_round_trips() -> None:
    s = replay(
        spot(),
        deposit("10000"),
        # cycle 1: buy 0.2 @ 30000, 0.2 @ 32000 (avg 31000); sell 0.1 @ 33000 and 0.3 @ 30500
        buy("0.2", "30000", fee="6"),
        buy("0.2", "32000", fee="6.4"),
        sell("0.1", "33000", fee="3.3"),  # (33000 − 31000)·0.1 = 200
        sell("0.3", "30500", fee="9.15"),  # (30500 − 31000)·0.3 = −150
        # cycle 2, after flat: buy 0.5 @ 20000, sell 0.5 @ 20100
        buy("0.5", "20000", fee="10"),
        sell("0.5", "20100", fee="10.05"),  # (20100 − 20000)·0.5 = 50
    )
    assert s.k.holdings == {}
    assert s.k.realized_pnl == {"USDT": D("100")}  # 200 − 150 + 50
    assert s.k.realized_by_symbol == {"BTCUSDT": D("100")}
    assert s.k.fees == {"USDT": D("44.9")}  # 6 + 6.4 + 3.3 + 9.15 + 10 + 10.05
    # the cash identity, flat: wallet = transfers + realized − fees
    # 10000 − 6000 − 6400 + 3300 + 9150 − 10000 + 10050 − 44.9 = 10055.1
    assert s.k.wallets["USDT"] == D("10055.1") == D("10000") + D("100") - D("44.9")
    assert s.k.wallets["BTC"] == D("0")


def test_spot_cash_identity_with_a_holding_and_a_base_coin_fee() -> None:
    # buy 1 @ 100 (fee 0.001 BTC), sell 0.5 @ 120 (fee 0.06 USDT)
    s = replay(spot(), deposit("1000"), buy("1", "100", fee="0.001", fee_ccy="BTC"),
               sell("0.5", "120", fee="0.06"))
    held = s.k.holdings["BTCUSDT"]
    assert (held.qty, held.avg_open) == (D("0.499"), D("100"))  # 1 − 0.001 − 0.5
    assert s.k.realized_pnl == {"USDT": D("10")}  # (120 − 100)·0.5
    # quote wallet + cost basis held = transfers + realized − quote fees − the base-coin
    # fee at its cost: 1000 − 100 + 60 − 0.06 = 959.94; 959.94 + 0.499·100 = 1009.84
    # = 1000 + 10 − 0.06 − 0.001·100
    assert s.k.wallets["USDT"] == D("959.94")
    assert s.k.wallets["USDT"] + held.qty * held.avg_open == (
        D("1000") + D("10") - D("0.06") - D("0.001") * D("100"))


# --- hedge mode, contract size, derived figures -----------------------------------------


def test_hedge_mode_holds_long_and_short_on_one_symbol() -> None:
    s = replay(
        linear(),
        buy("1", "100", ps="long"),
        sell("2", "110", ps="short"),
        mark("105"),
    )
    long, short = s.k.positions["BTCUSDT|long"], s.k.positions["BTCUSDT|short"]
    assert (long.qty, long.avg_open, long.position_side) == (D("1"), D("100"), "long")
    assert (short.qty, short.avg_open, short.position_side) == (D("-2"), D("110"), "short")
    assert "BTCUSDT" not in s.k.positions
    # (105 − 100)·1 + (105 − 110)·(−2) = 5 + 10 = 15
    assert s.k.unrealized_pnl == {"USDT": D("15")}
    assert s.k.open_notional == {"USDT": D("315")}  # (1 + 2)·105
    assert s.k.open_positions == 2


def test_hedge_mode_closing_the_long_leaves_the_short() -> None:
    s = replay(linear(), buy("1", "100", ps="long"), sell("2", "110", ps="short"),
               sell("1", "108", ps="long"))
    assert set(s.k.positions) == {"BTCUSDT|short"}
    assert s.k.realized_pnl == {"USDT": D("8")}  # (108 − 100)·1
    assert s.k.open_positions == 1


def test_linear_contract_size_scales_pnl_and_notional() -> None:
    s = replay(
        linear("XYZUSDT", cs="10"),
        buy("3", "2000", symbol="XYZUSDT"),
        sell("1", "2100", symbol="XYZUSDT"),
        mark("2050", "XYZUSDT"),
    )
    assert s.k.realized_pnl == {"USDT": D("1000")}  # (2100 − 2000)·1·10
    assert s.k.unrealized_pnl == {"USDT": D("1000")}  # (2050 − 2000)·2·10
    assert s.k.open_notional == {"USDT": D("41000")}  # 2·10·2050


def test_mark_and_leverage_derive_unrealized_margin_equity_and_available() -> None:
    s = replay(linear(), deposit("10000"), leverage("10"), buy("2", "30000", fee="12"),
               mark("31000"))
    assert s.k.wallets == {"USDT": D("9988")}  # 10000 − 12
    assert s.k.unrealized_pnl == {"USDT": D("2000")}  # (31000 − 30000)·2
    assert s.k.open_notional == {"USDT": D("62000")}  # 2·31000
    assert s.k.used_margin == {"USDT": D("6200")}  # 62000 / 10
    assert s.k.equity == {"USDT": D("11988")}  # 9988 + 2000
    assert s.k.available_margin == {"USDT": D("5788")}  # 11988 − 6200


def test_without_a_mark_or_leverage_a_position_counts_at_cost_and_leverage_one() -> None:
    s = replay(linear(), deposit("10000"), buy("2", "30000", fee="12"))
    assert s.k.unrealized_pnl == {"USDT": D("0")}
    assert s.k.open_notional == {"USDT": D("60000")}  # 2·30000 at avg_open
    assert s.k.used_margin == {"USDT": D("60000")}  # 60000 / 1
    assert s.k.available_margin == {"USDT": D("-50012")}  # 9988 − 60000


def test_a_later_mark_or_leverage_recomputes_the_derived_figures() -> None:
    s = replay(linear(), deposit("10000"), buy("2", "30000"), mark("31000"), leverage("10"),
               mark("29500"), leverage("20"))
    assert s.k.unrealized_pnl == {"USDT": D("-1000")}  # (29500 − 30000)·2
    assert s.k.used_margin == {"USDT": D("2950")}  # 2·29500 / 20
    assert s.k.equity == {"USDT": D("9000")}  # 10000 − 1000
    assert s.k.available_margin == {"USDT": D("6050")}  # 9000 − 2950


def test_peak_capital_and_drawdown_follow_the_wallet() -> None:
    steps = [
        (deposit("1000"), "1000", "0"),
        (buy("1", "100", fee="1"), "1000", "1"),  # wallet 999
        (sell("1", "150", fee="1"), "1048", "0"),  # 999 + 50 − 1 = 1048, a new peak
        (buy("1", "200"), "1048", "0"),
        (sell("1", "180"), "1048", "20"),  # 1048 − 20 = 1028
        (mark("1"), "1048", "20"),  # a mark does not move the wallet
    ]
    events: list[Event] = [linear()]
    for event, peak, dd in steps:
        events.append(event)
        s = replay(*events)
        assert s.k.peak_capital == {"USDT": D(peak)}
        assert s.k.drawdown == {"USDT": D(dd)}


# --- a non-terminating average ------------------------------------------------------


def test_a_non_terminating_average_is_rounded_to_18_places() -> None:
    s = replay(linear(), buy("1", "100"), buy("2", "101"))
    # (100·1 + 101·2) / 3 = 302/3 = 100.666… → 100.666666666666666667 (half-even, 18 places)
    assert s.k.positions["BTCUSDT"].avg_open == D("100.666666666666666667")


def test_the_cash_identity_stays_exact_after_a_rounded_average() -> None:
    s = replay(
        linear(),
        deposit("1000.5"),
        buy("1", "100", fee="0.01"),
        buy("2", "101", fee="0.01"),  # avg 100.666666666666666667
        sell("1", "102.3", fee="0.01"),  # 102.3 − 100.666666666666666667 = 1.633333333333333333
        # (99.9 − 100.666666666666666667)·1.7 = −0.766666666666666667·1.7
        #   = −1.3033333333333333339 → 18 places, half-even: −1.303333333333333334
        sell("1.7", "99.9", fee="0.01"),
    )
    k = s.k
    # 1.633333333333333333 − 1.303333333333333334 = 0.329999999999999999
    # (0.33 but for the roundings of the average and of the realized figure)
    assert k.realized_pnl == {"USDT": D("0.329999999999999999")}
    # 1000.5 + 0.329999999999999999 − 4·0.01
    assert k.wallets == {"USDT": D("1000.789999999999999999")}
    with decimal.localcontext(prec=200):  # the identity's own sum must not round
        capital = k.transfers["USDT"] + k.realized_pnl["USDT"] - k.fees["USDT"]
    assert k.wallets["USDT"] == capital


def test_inverse_realized_is_rounded_to_18_places_and_the_cash_identity_stays_exact() -> None:
    s = replay(
        inverse(),
        deposit("1", "BTC"),
        buy("15", "45000", symbol="BTCUSD", fee_ccy="BTC"),
        # (1/45000 − 1/50000)·15·100 = (5000 / 2.25e9)·1500 = 1/300 = 0.00333…
        # → 0.003333333333333333 (18 places; also q18(1/45000) = 0.000022222222222222,
        #   q18(1/50000) = 0.00002, difference·1500 = 0.003333333333333333)
        sell("15", "50000", symbol="BTCUSD", fee_ccy="BTC"),
    )
    k = s.k
    assert k.realized_pnl == {"BTC": D("0.003333333333333333")}
    assert k.wallets == {"BTC": D("1.003333333333333333")}  # 1 + 0.003333333333333333
    with decimal.localcontext(prec=200):  # the identity's own sum must not round
        capital = k.transfers["BTC"] + k.realized_pnl["BTC"] - k.fees["BTC"]
    assert k.wallets["BTC"] == capital
