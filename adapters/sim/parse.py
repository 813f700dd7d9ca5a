"""Sim wire payload -> kernel events. Pure: no clock, no I/O.

`parse(raw, fallback_ts)` decodes the JSON, reads the discriminator `e` (and, for
`ACCOUNT_UPDATE`, the reason `a.m`), and dispatches through `_HANDLERS`. Anything that
does not fit (bad JSON, a missing or mistyped field, NaN, a negative quantity, an unknown
event type, a value the event schema refuses) becomes one `InputQuarantined` with the
raw bytes and the reason: never an exception, never a zero. `fallback_ts` stamps a
quarantined payload whose own event time is unreadable.

The position side `ps` (`BOTH`, `LONG`, `SHORT`) of fills, positions and funding is
required, as Binance always sends it: guessing `BOTH` for a missing one would book a
hedge-mode fill on the wrong position key.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from adapters import fields as f
from adapters.fields import Msg, ParseError
from adapters.sim import wire
from events.codec import Event
from events.control import quarantine
from events.facts import (
    AssetBalance,
    AssetDefined,
    BalanceReported,
    FundingSettled,
    InstrumentDefined,
    InstrumentKind,
    LeverageSet,
    MarginReport,
    MarkPriceObserved,
    OrderFilled,
    OrderStatusReported,
    OrderType,
    PositionSide,
    PositionsReported,
    ReportedPosition,
    Rounding,
    TransferCompleted,
    TransferDirection,
)
from kernel.errors import EventValidationError

SOURCE = "sim"
def _int(d: Msg, k: str, path: str) -> int:
    v = f.get(d, k, path)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ParseError(f"{path}.{k} must be a non-negative integer, was {v!r}")
    return v


def _opt_dec(d: Msg, k: str, path: str) -> Decimal | None:
    """A decimal the venue may leave out (a sim extension a real venue lacks)."""
    return f.dec(d, k, path) if f.has(d, k) else None


def _price(d: Msg, k: str, path: str) -> Decimal | None:
    """Binance writes an absent price as "0"."""
    x = f.dec(d, k, path, nonneg=True)
    return x if x else None


def _ts(msg: Msg) -> int:
    return _int(msg, "E", "msg") * wire.NS_PER_MS


def _pick(table: dict[str, Any], v: str, path: str) -> Any:
    if v not in table:
        raise ParseError(f"{path} has unknown value {v!r}")
    return table[v]


_ORDER_TYPES: dict[str, OrderType] = {w: t for t, w in wire.ORDER_TYPES.items()}  # type: ignore[misc]
_STATUSES = {w: s for s, w in wire.STATUSES.items()}
_KINDS: dict[str, InstrumentKind] = {w: k for k, w in wire.CONTRACT_TYPES.items()}  # type: ignore[misc]
_SIDES = {"BUY": "buy", "SELL": "sell"}
_POSITION_SIDES: dict[str, PositionSide] = {w: s for s, w in wire.POSITION_SIDES.items()}  # type: ignore[misc]
_ROUNDINGS: dict[str, Rounding] = {w: r for r, w in wire.ROUNDINGS.items()}  # type: ignore[misc]
_TIFS = {"GTC": ("GTC", False), "IOC": ("IOC", False), "FOK": ("FOK", False),
         "GTX": ("GTC", True)}


def _position_side(d: Msg, path: str) -> PositionSide:
    side: PositionSide = _pick(_POSITION_SIDES, f.text(d, "ps", path), f"{path}.ps")
    return side


def order_status(o: Msg, ts: int) -> OrderStatusReported:
    """The order state in the `o` object of an `ORDER_TRADE_UPDATE`."""
    tif, post_only = _pick(_TIFS, f.text(o, "f", "o"), "o.f")
    return OrderStatusReported(
        venue_ts=ts,
        symbol=f.text(o, "s", "o"),
        order_id=str(_int(o, "i", "o")),
        client_order_id=f.text(o, "c", "o") or None,
        status=_pick(_STATUSES, f.text(o, "X", "o"), "o.X"),
        side=_pick(_SIDES, f.text(o, "S", "o"), "o.S"),
        order_type=_pick(_ORDER_TYPES, f.text(o, "o", "o"), "o.o"),
        qty=f.dec(o, "q", "o", nonneg=True),
        filled_qty=f.dec(o, "z", "o", nonneg=True),
        price=_price(o, "p", "o"),
        trigger_price=_price(o, "sp", "o"),
        avg_fill_price=_price(o, "ap", "o"),
        time_in_force=tif,
        reduce_only=f.boolean(o, "R", "o"),
        post_only=post_only,
    )


def _order_update(msg: Msg) -> list[Event]:
    ts = _ts(msg)
    o = f.obj(msg, "o", "msg")
    status = order_status(o, ts)
    if f.text(o, "x", "o") != "TRADE":
        return [status]
    fill = OrderFilled(
        venue_ts=_int(o, "T", "o") * wire.NS_PER_MS,
        symbol=status.symbol,
        trade_id=str(_int(o, "t", "o")),
        order_id=status.order_id,
        client_order_id=status.client_order_id,
        side=status.side,
        qty=f.dec(o, "l", "o", nonneg=True),
        price=f.dec(o, "L", "o", nonneg=True),
        fee=f.dec(o, "n", "o"),
        fee_currency=f.text(o, "N", "o"),
        liquidity="maker" if f.boolean(o, "m", "o") else "taker",
        position_side=_position_side(o, "o"),
        venue_realized_pnl=f.dec(o, "rp", "o"),
    )
    return [fill, status]


def _report(msg: Msg, a: Msg) -> list[Event]:
    ts = _ts(msg)
    balances = tuple(
        AssetBalance(asset=f.text(b, "a", "B[]"), wallet=f.dec(b, "wb", "B[]"))
        for b in f.items(a, "B", "a")
    )
    margin = None
    if "M" in a:
        m = f.obj(a, "M", "a")
        margin = MarginReport(asset=f.text(m, "a", "M"), used=f.dec(m, "im", "M", nonneg=True),
                              available=f.dec(m, "ab", "M"))
    margins = tuple(
        MarginReport(asset=f.text(m, "a", "MA[]"), used=f.dec(m, "im", "MA[]", nonneg=True),
                     available=f.dec(m, "ab", "MA[]"))
        for m in (f.items(a, "MA", "a") if "MA" in a else ())
    )
    positions = tuple(
        ReportedPosition(
            symbol=f.text(p, "s", "P[]"),
            qty=f.dec(p, "pa", "P[]"),
            position_side=_position_side(p, "P[]"),
            entry_price=f.dec(p, "ep", "P[]", nonneg=True),
            mark_price=f.dec(p, "mp", "P[]", nonneg=True),
            unrealized_pnl=f.dec(p, "up", "P[]"),
            leverage=f.dec(p, "l", "P[]", nonneg=True),
            notional=_opt_dec(p, "notional", "P[]"),
        )
        for p in f.items(a, "P", "a")
    )
    return [
        BalanceReported(venue_ts=ts, balances=balances, margin=margin, margins=margins),
        PositionsReported(venue_ts=ts, positions=positions),
    ]


def _first(a: Msg, k: str) -> Msg:
    items = f.items(a, k, "a")
    if len(items) != 1 or not isinstance(items[0], dict):
        raise ParseError(f"a.{k} must hold exactly one object, held {len(items)}")
    first: Msg = items[0]
    return first


def _funding(msg: Msg, a: Msg) -> list[Event]:
    b, p = _first(a, "B"), _first(a, "P")
    return [FundingSettled(
        venue_ts=_ts(msg),
        symbol=f.text(p, "s", "P[0]"),
        asset=f.text(b, "a", "B[0]"),
        amount=f.dec(b, "bc", "B[0]"),
        rate=f.dec(a, "r", "a"),
        position_side=_position_side(p, "P[0]"),
        # The payment's own id where the venue gives one (the sim always does).
        funding_id=str(_int(a, "tid", "a")) if "tid" in a else None,
    )]


def _transfer(msg: Msg, a: Msg) -> list[Event]:
    b = _first(a, "B")
    amount = f.dec(b, "bc", "B[0]")
    direction: TransferDirection = "deposit" if f.text(a, "m", "a") == "DEPOSIT" else "withdrawal"
    if (amount > 0) != (direction == "deposit"):
        raise ParseError(f"a.B[0].bc {amount} has the wrong sign for a {direction}")
    return [TransferCompleted(
        venue_ts=_ts(msg), transfer_id=f.text(a, "tid", "a"), asset=f.text(b, "a", "B[0]"),
        direction=direction, amount=abs(amount),
    )]


def _account_update(msg: Msg) -> list[Event]:
    a = f.obj(msg, "a", "msg")
    reason = f.text(a, "m", "a")
    if reason == wire.FUNDING_REASON:
        return _funding(msg, a)
    if reason in wire.TRANSFER_REASONS:
        return _transfer(msg, a)
    return _report(msg, a)


def _mark(msg: Msg) -> list[Event]:
    return [MarkPriceObserved(venue_ts=_ts(msg), symbol=f.text(msg, "s", "msg"),
                              price=f.dec(msg, "p", "msg"))]


def _leverage(msg: Msg) -> list[Event]:
    ac = f.obj(msg, "ac", "msg")
    return [LeverageSet(venue_ts=_ts(msg), symbol=f.text(ac, "s", "ac"),
                        leverage=f.dec(ac, "l", "ac"))]


def _filter(entry: Msg, kind: str, field: str) -> Decimal:
    for rule in f.items(entry, "filters", "symbols[]"):
        if isinstance(rule, dict) and rule.get("filterType") == kind:
            return f.dec(rule, field, f"filters[{kind}]")
    raise ParseError(f"symbols[].filters has no {kind}")


def _exchange_info(msg: Msg) -> list[Event]:
    ts = _ts(msg)
    assets: list[Event] = [
        AssetDefined(
            venue_ts=ts,
            asset=f.text(x, "asset", "assets[]"),
            precision=_int(x, "precision", "assets[]"),
            rounding=_pick(_ROUNDINGS, f.text(x, "rounding", "assets[]"), "assets[].rounding"),
        )
        for x in (f.items(msg, "assets", "msg") if "assets" in msg else [])
    ]
    return assets + [
        InstrumentDefined(
            venue_ts=ts,
            symbol=f.text(s, "symbol", "symbols[]"),
            instrument_kind=_pick(_KINDS, f.text(s, "contractType", "symbols[]"), "contractType"),
            base=f.text(s, "baseAsset", "symbols[]"),
            quote=f.text(s, "quoteAsset", "symbols[]"),
            settle=f.text(s, "marginAsset", "symbols[]"),
            contract_size=f.dec(s, "contractSize", "symbols[]"),
            tick_size=_filter(s, "PRICE_FILTER", "tickSize"),
            lot_size=_filter(s, "LOT_SIZE", "stepSize"),
            min_notional=_filter(s, "MIN_NOTIONAL", "notional"),
        )
        for s in f.items(msg, "symbols", "msg")
    ]


_HANDLERS: dict[str, Callable[[Msg], list[Event]]] = {
    "ORDER_TRADE_UPDATE": _order_update,
    "ACCOUNT_UPDATE": _account_update,
    "markPriceUpdate": _mark,
    "ACCOUNT_CONFIG_UPDATE": _leverage,
    "EXCHANGE_INFO": _exchange_info,
}


def parse(raw: bytes, fallback_ts: int) -> list[Event]:
    """The events in one raw wire payload, or one `InputQuarantined` saying why not."""
    try:
        msg = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        return [quarantine(raw, source=SOURCE, reason=f"not JSON: {e}", venue_ts=fallback_ts)]
    ts = fallback_ts
    if isinstance(msg, dict) and isinstance(msg.get("E"), int) and 0 <= msg["E"] < 2**63 // 10**6:
        ts = msg["E"] * wire.NS_PER_MS
    if not isinstance(msg, dict) or not isinstance(msg.get("e"), str):
        return [quarantine(raw, source=SOURCE, reason="no event type `e`", venue_ts=ts)]
    handler = _HANDLERS.get(msg["e"])
    if handler is None:
        return [quarantine(raw, source=SOURCE, reason=f"unknown event type {msg['e']!r}",
                           venue_ts=ts)]
    try:
        return handler(msg)
    except (ParseError, EventValidationError) as e:
        return [quarantine(raw, source=SOURCE, reason=f"{msg['e']}: {e}", venue_ts=ts)]
