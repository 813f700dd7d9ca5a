"""The ccxt.pro adapter's pure parsers, on Binance USD-M payloads (tests/fixtures/binanceusdm).

Table tests: each fixture parses to the events the kernel books, with the venue's own
decimal strings; each way a payload can break (NaN, a float, a missing field, a negative
quantity, an unknown symbol or type) becomes one quarantine with the raw payload, never
a coerced value and never an exception.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from adapters.ccxtpro import parse, parse_rest, unified
from adapters.ccxtpro.book import Book, guard
from adapters.fields import ParseError
from events.codec import decode, encode
from events.control import InputQuarantined
from events.facts import (
    BalanceReported,
    FundingSettled,
    InstrumentDefined,
    LeverageSet,
    MarkPriceObserved,
    OrderFilled,
    OrderStatusReported,
    PositionsReported,
    TransferCompleted,
)
from kernel.errors import EventValidationError

FIX = Path(__file__).parent / "fixtures" / "binanceusdm"
MS = 1_000_000
NOW = 1_800_000_000_000 * MS
BOOK = Book(exchange="binanceusdm",
            symbols={"BTCUSDT": "BTC/USDT:USDT", "ETHUSDT": "ETH/USDT:USDT"},
            settle={"BTC/USDT:USDT": "USDT", "ETH/USDT:USDT": "USDT"})
HEDGE = Book(exchange="binanceusdm", symbols=BOOK.symbols, settle=BOOK.settle, hedge_mode=True)


def fixture(name: str) -> Any:
    return json.loads((FIX / f"{name}.json").read_text())


def ws(msg: Any, book: Book = BOOK) -> parse.Pushed:
    return parse.ws_message(msg, book, NOW)


def only(pushed: parse.Pushed) -> list[Any]:
    assert all(decode(encode(e)) == e for e in pushed.events)
    return pushed.events


# -- websocket ------------------------------------------------------------------------


def test_a_trade_update_is_a_fill_with_fee_realized_pnl_and_client_id_then_the_order() -> None:
    fill, status = only(ws(fixture("ws_order_trade_update_trade")))
    assert fill == OrderFilled(
        venue_ts=1568879465650 * MS, symbol="BTC/USDT:USDT", trade_id="1201",
        order_id="8886774", client_order_id="TEST", side="sell", qty=D("0.001"),
        price=D("7103.04"), fee=D("0.00142060"), fee_currency="USDT", liquidity="maker",
        position_side="both", venue_realized_pnl=D("1.23456789"))
    assert isinstance(status, OrderStatusReported)
    assert (status.status, status.filled_qty, status.qty) == ("partially_filled", D("0.001"),
                                                              D("0.002"))
    assert status.venue_ts == 1568879465651 * MS


def test_the_rest_record_of_a_pushed_fill_is_the_same_event() -> None:
    pushed = only(ws(fixture("ws_order_trade_update_trade")))[0]
    backfilled = parse_rest.fill(fixture("rest_user_trade"), BOOK, "TEST")
    assert backfilled == pushed and backfilled.dedup_key == pushed.dedup_key


def test_a_fill_without_a_pushed_commission_is_free_in_the_settlement_asset() -> None:
    msg = fixture("ws_order_trade_update_trade")
    del msg["o"]["n"], msg["o"]["N"]  # Binance: "will not push if no commission"
    fill = only(ws(msg))[0]
    assert (fill.fee, fill.fee_currency) == (D(0), "USDT")


def test_a_new_stop_is_an_order_status_with_its_trigger_and_side() -> None:
    (status,) = only(ws(fixture("ws_order_trade_update_new")))
    assert isinstance(status, OrderStatusReported)
    assert (status.order_type, status.trigger_price, status.price, status.reduce_only) == (
        "stop", D("7103.04"), None, True)


def test_an_order_type_the_kernel_does_not_model_quarantines_its_state_but_keeps_its_fill() -> None:
    fill, bad = only(ws(fixture("ws_order_trade_update_trailing")))
    assert isinstance(fill, OrderFilled) and fill.qty == D("0.001")
    assert isinstance(bad, InputQuarantined) and "TRAILING_STOP_MARKET" in bad.reason


def test_an_algo_order_is_reported_until_it_triggers_then_its_order_carries_on() -> None:
    (status,) = only(ws(fixture("ws_algo_update_new")))
    assert isinstance(status, OrderStatusReported)
    assert (status.order_id, status.client_order_id, status.order_type, status.status,
            status.trigger_price, status.price) == (
        "2148719", "Q5xaq5EGKgXXa0fD7fs0Ip", "take_profit_limit", "new", D(75000), D(75010))
    assert only(ws(fixture("ws_algo_update_triggered"))) == []


@pytest.mark.parametrize(("name", "refresh"), [
    ("ws_account_update_order", {"reports"}),
    ("ws_account_update_funding", {"reports", "funding"}),
    ("ws_account_update_deposit", {"reports", "transfers"}),
])
def test_an_account_update_asks_for_the_rest_reports_and_books_nothing_itself(
        name: str, refresh: set[str]) -> None:
    pushed = ws(fixture(name))
    assert pushed.events == [] and pushed.refresh == refresh and not pushed.expired


def test_a_leverage_change_and_a_mark_are_facts() -> None:
    (lev,) = only(ws(fixture("ws_account_config_update")))
    assert lev == LeverageSet(venue_ts=1611646737479 * MS, symbol="BTC/USDT:USDT",
                              leverage=D(25))
    (mark,) = only(ws(fixture("ws_mark_price_update")))
    assert mark == MarkPriceObserved(venue_ts=1562305380000 * MS, symbol="BTC/USDT:USDT",
                                     price=D("11794.15000000"))


def test_listen_key_expired_says_so() -> None:
    pushed = ws(fixture("ws_listen_key_expired"))
    assert pushed.expired and pushed.events == []


def test_a_combined_stream_wrapper_and_an_array_are_unwrapped_and_replies_say_nothing() -> None:
    mark = fixture("ws_mark_price_update")
    assert len(only(ws({"stream": "btcusdt@markPrice@1s", "data": mark}))) == 1
    assert len(only(ws([mark, mark]))) == 2
    assert ws({"result": None, "id": 1}).events == []
    assert ws({"e": "TRADE_LITE", "E": 1}).events == []


def _set(msg: Any, path: str, value: Any) -> Any:
    out = copy.deepcopy(msg)
    *head, last = path.split(".")
    target = out
    for k in head:
        target = target[k]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return out


TRADE = "ws_order_trade_update_trade"
BAD_PUSHES = [
    (TRADE, "o.L", "NaN", "o.L must be finite"),
    (TRADE, "o.l", "-0.001", "o.l must be >= 0"),
    (TRADE, "o.l", "0", "OrderFilled.qty must be > 0"),
    (TRADE, "o.n", 0.0014206, "o.n must be a decimal string"),
    (TRADE, "o.rp", KeyError, "o.rp is missing"),
    (TRADE, "o.t", True, "o.t must be an id"),
    (TRADE, "o.ps", "BOTHH", "o.ps has unknown value 'BOTHH'"),
    (TRADE, "o.s", "DOGEUSDT", "o.s 'DOGEUSDT' is not a market"),
    (TRADE, "o.T", "yesterday", "o.T must be a time in ms"),
    ("ws_mark_price_update", "p", "Infinity", "msg.p must be finite"),
    ("ws_mark_price_update", "p", "0", "MarkPriceObserved.price must be > 0"),
    ("ws_account_update_order", "a.B", None, "a.B is missing"),
    ("ws_algo_update_new", "o.X", "SOMETHING", "o.X has unknown value"),
]


@pytest.mark.parametrize(("name", "path", "value", "reason"), BAD_PUSHES)
def test_a_broken_push_is_quarantined_with_its_payload(name: str, path: str, value: Any,
                                                       reason: str) -> None:
    msg = _set(fixture(name), path, value)
    quarantines = [e for e in ws(msg).events if isinstance(e, InputQuarantined)]
    assert len(quarantines) >= 1
    q = quarantines[0]
    assert reason in q.reason and q.source == "ccxtpro:binanceusdm"
    assert json.loads(q.raw) == msg  # the payload as it came, not a repaired one
    assert all(not isinstance(e, OrderFilled) for e in ws(msg).events) or path.startswith("o.X")


def test_a_push_without_an_event_type_or_time_or_of_an_unknown_type_is_quarantined() -> None:
    for msg, reason in [({"E": 1, "x": 1}, "no event type"), ("text", "no event type"),
                        ({"e": "NEW_THING", "E": 1}, "unknown event type 'NEW_THING'"),
                        ({"e": "ORDER_TRADE_UPDATE", "o": {}}, "msg.E is not a time")]:
        (q,) = ws(msg).events
        assert isinstance(q, InputQuarantined) and reason in q.reason, q.reason
        assert q.venue_ts == (1 * MS if isinstance(msg, dict) and msg.get("E") == 1 else NOW)


# -- REST -----------------------------------------------------------------------------


def test_an_order_record_and_an_algo_order_record() -> None:
    o = parse_rest.order(fixture("rest_order"), BOOK, NOW)
    assert o is not None and (o.order_id, o.order_type, o.trigger_price, o.status, o.qty,
                              o.venue_ts) == ("1917641", "stop", D(9300), "new", D("0.40"), NOW)
    a = parse_rest.order(fixture("rest_algo_order"), BOOK, NOW)
    assert a is not None and (a.order_id, a.client_order_id, a.order_type, a.price,
                              a.trigger_price) == (
        "3358", "yT58zmV3DSzMBQxc5tAJXU", "stop_limit", D("102000.00"), D("100000.00"))
    done = {**fixture("rest_algo_order"), "algoStatus": "TRIGGERED", "actualOrderId": "77"}
    assert parse_rest.order(done, BOOK, NOW) is None
    assert parse_rest.triggered_order_id(done) == "77"
    assert parse_rest.triggered_order_id(fixture("rest_algo_order")) is None


def test_positions_keep_the_venues_notional_and_leave_flat_ones_out() -> None:
    report = parse_rest.positions(fixture("rest_position_risk_v3"), BOOK,
                                  {"BTC/USDT:USDT": D(20)}, NOW)
    assert isinstance(report, PositionsReported) and report.venue_ts == NOW
    (p,) = report.positions
    assert (p.symbol, p.qty, p.entry_price, p.mark_price, p.unrealized_pnl, p.leverage,
            p.notional) == ("BTC/USDT:USDT", D("-0.005"), D("60100.0"), D(60000), D("0.5"),
                            D(20), D("-300"))


def test_a_report_is_never_older_than_a_change_it_includes() -> None:
    report = parse_rest.positions(fixture("rest_position_risk_v3"), BOOK, {}, 1000 * MS)
    assert report.venue_ts == 1722062678998 * MS


def test_balances_carry_wallet_available_and_position_margin_per_asset() -> None:
    report = parse_rest.balances(fixture("rest_account_v3"), NOW)
    assert isinstance(report, BalanceReported) and report.margin is None
    usdt = {b.asset: b for b in report.balances}["USDT"]
    assert (usdt.wallet, usdt.available) == (D("103.12345678"), D("88.12345678"))
    m = {x.asset: x for x in report.margins}["USDT"]
    # K computes Σ notional / leverage: the positions' margin, not the open orders'.
    assert (m.used, m.maintenance, m.available) == (D(15), D("1.2"), D("88.12345678"))


def test_a_balance_figure_the_venue_leaves_out_stays_unknown() -> None:
    account = fixture("rest_account_v3")
    for a in account["assets"]:
        del a["availableBalance"], a["maintMargin"]
    m = {x.asset: x for x in parse_rest.balances(account, NOW).margins}["USDT"]
    assert (m.available, m.maintenance) == (None, None)


def test_funding_is_keyed_on_the_venues_tran_id() -> None:
    a, b = (parse_rest.funding(r, BOOK, None) for r in fixture("rest_income_funding"))
    assert a == FundingSettled(venue_ts=1621584000000 * MS, symbol="ETH/USDT:USDT",
                               asset="USDT", amount=D("0.00134317"),
                               funding_id="4480321991774044580")
    assert a.dedup_key != b.dedup_key  # one time, two payments: both are booked


@pytest.mark.parametrize(("amount", "rate", "side"), [
    ("-0.5", "0.0001", "long"), ("0.5", "0.0001", "short"),
    ("0.5", "-0.0001", "long"), ("-0.5", "-0.0001", "short"), ("-0.5", None, "both"),
])
def test_hedge_mode_funding_names_its_side_by_the_rate(amount: str, rate: str | None,
                                                        side: str) -> None:
    row = {**fixture("rest_income_funding")[0], "income": amount}
    f = parse_rest.funding(row, HEDGE, None if rate is None else D(rate))
    assert f.position_side == side
    assert parse_rest.funding(row, BOOK, D("0.0001")).position_side == "both"


def test_transfers_are_signed_from_the_accounts_view() -> None:
    dep, wd = (parse_rest.transfer(r) for r in fixture("rest_income_transfer"))
    assert (dep.direction, dep.amount, dep.transfer_id) == ("deposit", D(500), "9689322392")
    assert (wd.direction, wd.amount) == ("withdrawal", D("20.5"))
    assert isinstance(dep, TransferCompleted)


def test_leverage_mark_and_instrument_from_their_records() -> None:
    assert parse_rest.leverage(fixture("rest_symbol_config"), BOOK, NOW).leverage == D(21)
    mark = parse_rest.mark(fixture("rest_premium_index"), BOOK)
    assert (mark.price, mark.venue_ts) == (D("11793.63104562"), 1597370495002 * MS)
    inst = parse_rest.instrument(fixture("market_btcusdt"), NOW)
    assert inst == InstrumentDefined(
        venue_ts=NOW, symbol="BTC/USDT:USDT", instrument_kind="linear", base="BTC",
        quote="USDT", settle="USDT", tick_size=D("0.10"), lot_size=D("0.001"),
        min_notional=D(100))
    assert parse_rest.places(fixture("market_btcusdt")) == {"BTC": 8, "USDT": 8}


BAD_RECORDS = [
    (parse_rest.fill, "rest_user_trade", "qty", "NaN", "trade.qty must be finite"),
    (parse_rest.fill, "rest_user_trade", "realizedPnl", KeyError, "trade.realizedPnl is missing"),
    (parse_rest.fill, "rest_user_trade", "price", 7103.04, "must be a decimal string"),
    (parse_rest.funding, "rest_income_funding", "tranId", KeyError, "income.tranId is missing"),
    (parse_rest.funding, "rest_income_funding", "income", "1e999999", "is out of range"),
    (parse_rest.transfer, "rest_income_transfer", "income", "0", "must not be 0"),
    (parse_rest.order, "rest_order", "status", "LIMBO", "order.status has unknown value"),
]


@pytest.mark.parametrize(("fn", "name", "key", "value", "reason"), BAD_RECORDS)
def test_a_broken_record_is_quarantined_by_guard(fn: Any, name: str, key: str, value: Any,
                                                 reason: str) -> None:
    raw = fixture(name)
    row = copy.deepcopy(raw[0] if isinstance(raw, list) else raw)
    if value is KeyError:
        del row[key]
    else:
        row[key] = value
    args = {parse_rest.fill: (row, BOOK, None), parse_rest.funding: (row, BOOK, None),
            parse_rest.transfer: (row,), parse_rest.order: (row, BOOK, NOW)}[fn]
    with pytest.raises((ParseError, EventValidationError), match=reason):
        fn(*args)
    q = guard(BOOK, "record", row, NOW, fn, *args)
    assert isinstance(q, InputQuarantined) and reason in q.reason and json.loads(q.raw) == row


# -- unified (exchanges without a raw dialect) ---------------------------------------------


UNIFIED_TRADE = {"id": "9", "order": "77", "symbol": "ETH/USD:USD", "side": "buy",
                 "amount": 0.5, "price": 3000.1, "timestamp": 1700000000000,
                 "fee": {"cost": 0.012, "currency": "USD"}, "takerOrMaker": "taker"}


def test_a_unified_trade_reuses_no_key_where_the_venue_reuses_trade_ids() -> None:
    # dYdX reports a flip as two fills with one trade id (NautilusTrader #3081).
    a = unified.fill(UNIFIED_TRADE, "dydx")
    b = unified.fill({**UNIFIED_TRADE, "amount": 0.3}, "dydx")
    assert a.dedup_key != b.dedup_key and a.trade_id == "9:77:buy:0.5@3000.1"
    assert unified.fill(UNIFIED_TRADE, "binanceusdm").trade_id == "9"
    assert (a.qty, a.price, a.fee) == (D("0.5"), D("3000.1"), D("0.012"))


def test_a_unified_trade_without_a_fee_or_with_nan_is_refused() -> None:
    with pytest.raises(ParseError, match=r"trade\.fee is missing"):
        unified.fill({**UNIFIED_TRADE, "fee": None}, "dydx")
    with pytest.raises(ParseError, match="must be finite"):
        unified.fill({**UNIFIED_TRADE, "price": float("nan")}, "dydx")


def test_unified_orders_map_types_and_statuses() -> None:
    o = unified.order({"id": "1", "symbol": "X/Y:Y", "status": "open", "side": "sell",
                       "type": "market", "triggerPrice": 10.5, "amount": 2.0, "filled": 1.0,
                       "timeInForce": "GTC", "reduceOnly": True}, NOW)
    assert (o.order_type, o.status, o.trigger_price, o.filled_qty) == (
        "stop", "partially_filled", D("10.5"), D(1))
    with pytest.raises(ParseError, match="not an order type"):
        unified.order({"id": "1", "symbol": "X", "status": "open", "side": "buy",
                       "type": "trailing", "amount": 1.0}, NOW)
