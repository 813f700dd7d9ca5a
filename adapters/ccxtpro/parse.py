"""Binance futures payloads -> kernel events. Pure: no clock, no I/O.

The Binance family (`binanceusdm`, `binancecoinm`) is parsed from the venue's own
payloads: the websocket messages exactly as ccxt receives them, and the `info` of each
ccxt unified structure ccxt's REST methods return (ccxt's unified structures hold floats
and drop what the kernel needs: a fill's realized PnL is only in `info['rp']` on the
websocket and `info['realizedPnl']` over REST, a position's side in `ps`/`positionSide`).
Field names and meanings are Binance's USD-M futures API (the user data stream events
`ORDER_TRADE_UPDATE`, `ALGO_UPDATE`, `ACCOUNT_UPDATE`, `ACCOUNT_CONFIG_UPDATE`,
`listenKeyExpired`; `GET /fapi/v1/userTrades`, `/order`, `/openOrders`, `/algoOrder`,
`/fapi/v3/positionRisk`, `/fapi/v3/account`, `/fapi/v1/symbolConfig`, `/premiumIndex`,
`/income`), as ccxt 4.5.90 documents them in `ccxt/pro/binance.py:handle_order_update`
and `ccxt/binance.py:parse_trade`/`parse_order`/`parse_position_risk`/`parse_income`.

A fill is the same event whichever way it arrives: the websocket's `o.T`/`t`/`l`/`L`/
`n`/`N`/`rp`/`ps`/`c` and REST's `time`/`id`/`qty`/`price`/`commission`/
`commissionAsset`/`realizedPnl`/`positionSide` (+ the order's client id, which REST
trades lack and the caller supplies) name the same values, so a backfill duplicates a
pushed fill exactly and the log's dedup absorbs it. The dedup key is the symbol and
Binance's trade id, unique per symbol.

Anything that does not fit becomes one `InputQuarantined` with the payload: never an
exception, never a coerced value.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from adapters import fields as f
from adapters.ccxtpro.book import Book, guard, keep, quarantined
from adapters.fields import Msg, ParseError
from events.codec import Event
from events.facts import (
    LeverageSet,
    MarkPriceObserved,
    OrderFilled,
    OrderStatus,
    OrderStatusReported,
    OrderType,
    PositionSide,
)

_SIDES = {"BUY": "buy", "SELL": "sell"}
_POSITION_SIDES: dict[str, PositionSide] = {"BOTH": "both", "LONG": "long", "SHORT": "short"}
_TYPES: dict[str, OrderType] = {
    "MARKET": "market", "LIMIT": "limit", "STOP_MARKET": "stop", "STOP": "stop_limit",
    "TAKE_PROFIT_MARKET": "take_profit", "TAKE_PROFIT": "take_profit_limit",
    # Binance's own orders closing a position; they fill like market orders.
    "LIQUIDATION": "market", "ADL": "market",
}
_STATUSES: dict[str, OrderStatus] = {
    "NEW": "new", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled",
    "CANCELED": "canceled", "EXPIRED": "expired", "EXPIRED_IN_MATCH": "expired",
    "REJECTED": "rejected", "NEW_INSURANCE": "new", "NEW_ADL": "new",
}
#: An algo (conditional) order's status. Once TRIGGERED the stop has left the book and
#: the regular order it placed, with the same client order id, carries the order's
#: state and fills: the algo itself is not reported again (None).
_ALGO_STATUSES: dict[str, OrderStatus | None] = {
    "NEW": "new", "TRIGGERING": "new", "CANCELED": "canceled", "EXPIRED": "expired",
    "REJECTED": "rejected", "TRIGGERED": None, "FINISHED": None,
}
_TIFS = {"GTC": ("GTC", False), "IOC": ("IOC", False), "FOK": ("FOK", False),
         "GTX": ("GTC", True)}
#: Income types that move money into or out of the futures wallet from outside it.
TRANSFER_INCOME = frozenset({"TRANSFER", "INTERNAL_TRANSFER", "CROSS_COLLATERAL_TRANSFER",
                             "COIN_SWAP_DEPOSIT", "COIN_SWAP_WITHDRAW",
                             "STRATEGY_UMFUTURES_TRANSFER"})
#: Account update reasons (`a.m`) after which funding or transfers are asked for.
_FUNDING_REASONS = frozenset({"FUNDING_FEE"})
_TRANSFER_REASONS = frozenset({"DEPOSIT", "WITHDRAW", "ADMIN_DEPOSIT", "ADMIN_WITHDRAW",
                               "MARGIN_TRANSFER", "COIN_SWAP_DEPOSIT", "COIN_SWAP_WITHDRAW"})
#: User-data events that carry nothing the kernel books (it reads their effect over REST).
_IGNORED = frozenset({"TRADE_LITE", "MARGIN_CALL", "CONDITIONAL_ORDER_TRIGGER_REJECT",
                      "STRATEGY_UPDATE", "GRID_UPDATE", "OPEN_ORDER_LOSS"})


def _side(d: Msg, k: str, path: str) -> Any:
    return f.pick(_SIDES, f.text(d, k, path), f"{path}.{k}")


def _position_side(d: Msg, k: str, path: str) -> PositionSide:
    side: PositionSide = f.pick(_POSITION_SIDES, f.text(d, k, path), f"{path}.{k}")
    return side


def _tif(d: Msg, k: str, path: str) -> tuple[Any, bool]:
    tif: tuple[Any, bool] = f.pick(_TIFS, f.text(d, k, path), f"{path}.{k}")
    return tif


def _cid(d: Msg, k: str) -> str | None:
    v = d.get(k)
    return v if isinstance(v, str) and v else None


# -- websocket -----------------------------------------------------------------------


@dataclass
class Pushed:
    """What one websocket message means: events, the REST refreshes it calls for
    ("reports", "funding", "transfers"), and whether it says the listenKey expired."""

    events: list[Event] = field(default_factory=list)
    refresh: set[str] = field(default_factory=set)
    expired: bool = False


def ws_fill(o: Msg, book: Book) -> OrderFilled:
    """The fill in the `o` object of an `ORDER_TRADE_UPDATE` with `x` = TRADE."""
    symbol = book.symbol(f.text(o, "s", "o"), "o.s")
    # "N"/"n": "will not push if no commission" (Binance; ccxt's handle_order_update
    # docstring): then the fee is zero, in the settlement asset.
    fee = f.dec(o, "n", "o") if f.has(o, "n") else Decimal(0)
    fee_currency = f.text(o, "N", "o") if f.has(o, "N") else book.settle.get(symbol, "")
    return OrderFilled(
        venue_ts=f.ms(o, "T", "o"),
        symbol=symbol,
        trade_id=f.ident(o, "t", "o"),
        order_id=f.ident(o, "i", "o"),
        client_order_id=_cid(o, "c"),
        side=_side(o, "S", "o"),
        qty=f.dec(o, "l", "o", nonneg=True),
        price=f.dec(o, "L", "o", nonneg=True),
        fee=fee,
        fee_currency=fee_currency,
        liquidity="maker" if f.boolean(o, "m", "o") else "taker",
        position_side=_position_side(o, "ps", "o"),
        venue_realized_pnl=f.dec(o, "rp", "o"),
    )


def ws_order(o: Msg, book: Book, ts: int) -> OrderStatusReported:
    tif, post_only = _tif(o, "f", "o")
    return OrderStatusReported(
        venue_ts=ts,
        symbol=book.symbol(f.text(o, "s", "o"), "o.s"),
        order_id=f.ident(o, "i", "o"),
        client_order_id=_cid(o, "c"),
        status=f.pick(_STATUSES, f.text(o, "X", "o"), "o.X"),
        side=_side(o, "S", "o"),
        order_type=f.pick(_TYPES, f.text(o, "o", "o"), "o.o"),
        qty=f.dec(o, "q", "o", nonneg=True),
        filled_qty=f.dec(o, "z", "o", nonneg=True),
        price=f.price(o, "p", "o"),
        trigger_price=f.price(o, "sp", "o"),
        avg_fill_price=f.price(o, "ap", "o"),
        time_in_force=tif,
        reduce_only=f.boolean(o, "R", "o"),
        post_only=post_only,
    )


def ws_algo(o: Msg, book: Book, ts: int) -> OrderStatusReported | None:
    """The `o` of an `ALGO_UPDATE` (a conditional order); None once it triggered."""
    status = f.pick(_ALGO_STATUSES, f.text(o, "X", "o"), "o.X")
    if status is None:
        return None
    tif, post_only = _tif(o, "f", "o")
    return OrderStatusReported(
        venue_ts=ts,
        symbol=book.symbol(f.text(o, "s", "o"), "o.s"),
        order_id=f.ident(o, "aid", "o"),
        client_order_id=_cid(o, "caid"),
        status=status,
        side=_side(o, "S", "o"),
        order_type=f.pick(_TYPES, f.text(o, "o", "o"), "o.o"),
        qty=f.dec(o, "q", "o", nonneg=True),
        filled_qty=Decimal(0),
        price=f.price(o, "p", "o"),
        trigger_price=f.price(o, "tp", "o"),
        time_in_force=tif,
        reduce_only=f.boolean(o, "R", "o"),
        post_only=post_only,
    )


def _order_update(msg: Msg, book: Book, ts: int, out: Pushed) -> None:
    o = f.obj(msg, "o", "msg")
    # The fill and the order's state are parsed apart: a state the kernel cannot hold
    # (a trailing stop) must not take the fill down with it.
    if o.get("x") == "TRADE":
        keep(out.events, guard(book, "ORDER_TRADE_UPDATE fill", msg, ts, ws_fill, o, book))
    keep(out.events, guard(book, "ORDER_TRADE_UPDATE", msg, ts, ws_order, o, book, ts))


def _algo_update(msg: Msg, book: Book, ts: int, out: Pushed) -> None:
    o = f.obj(msg, "o", "msg")
    keep(out.events, guard(book, "ALGO_UPDATE", msg, ts, ws_algo, o, book, ts))


def _account_update(msg: Msg, book: Book, ts: int, out: Pushed) -> None:
    # The push carries only what changed, and no margin, mark or notional: the
    # complete reports are asked for over REST instead (`refresh`).
    a = f.obj(msg, "a", "msg")
    reason = f.text(a, "m", "a")
    f.items(a, "B", "a")
    f.items(a, "P", "a")
    out.refresh.add("reports")
    if reason in _FUNDING_REASONS:
        out.refresh.add("funding")
    if reason in _TRANSFER_REASONS:
        out.refresh.add("transfers")


def _config_update(msg: Msg, book: Book, ts: int, out: Pushed) -> None:
    if "ac" not in msg:
        return  # `ai`: the multi-assets mode, nothing the kernel books
    ac = f.obj(msg, "ac", "msg")
    out.events.append(LeverageSet(venue_ts=ts, symbol=book.symbol(f.text(ac, "s", "ac"), "ac.s"),
                                  leverage=f.dec(ac, "l", "ac")))


def _mark(msg: Msg, book: Book, ts: int, out: Pushed) -> None:
    out.events.append(MarkPriceObserved(venue_ts=ts, symbol=book.symbol(f.text(msg, "s", "msg"),
                                                                        "msg.s"),
                                        price=f.dec(msg, "p", "msg")))


def _expired(msg: Msg, book: Book, ts: int, out: Pushed) -> None:
    out.expired = True


_HANDLERS = {
    "ORDER_TRADE_UPDATE": _order_update,
    "ALGO_UPDATE": _algo_update,
    "ACCOUNT_UPDATE": _account_update,
    "ACCOUNT_CONFIG_UPDATE": _config_update,
    "markPriceUpdate": _mark,
    "listenKeyExpired": _expired,
}


def ws_message(msg: Any, book: Book, fallback_ts: int) -> Pushed:
    """What one decoded websocket message says. A combined-stream wrapper
    (`{"stream", "data"}`) and an array of events are unwrapped; a reply to a request
    (`{"id", "result"}`) says nothing."""
    out = Pushed()
    if isinstance(msg, dict) and "stream" in msg and "data" in msg:
        msg = msg["data"]
    for m in msg if isinstance(msg, list) else [msg]:
        _one(m, book, fallback_ts, out)
    return out


def _one(msg: Any, book: Book, fallback_ts: int, out: Pushed) -> None:
    if isinstance(msg, dict) and "id" in msg and ("result" in msg or "error" in msg):
        return
    ts = fallback_ts
    with contextlib.suppress(ParseError):
        ts = f.ms(msg, "E", "msg")
    event = msg.get("e") if isinstance(msg, dict) else None
    if not isinstance(event, str):
        out.events.append(quarantined(book, msg, "no event type `e`", ts))
        return
    if event in _IGNORED:
        return
    handler = _HANDLERS.get(event)
    if handler is None:
        out.events.append(quarantined(book, msg, f"unknown event type {event!r}", ts))
        return
    if ts == fallback_ts and event != "listenKeyExpired":
        out.events.append(quarantined(book, msg, f"{event}: msg.E is not a time in ms", ts))
        return
    before = len(out.events)
    result = guard(book, event, msg, ts, handler, msg, book, ts, out)
    if result is not None:  # the handler failed: drop its partial events, keep the reason
        del out.events[before:]
        out.events.append(result)
