"""ccxt unified structures -> kernel events, for exchanges without a raw dialect. Pure.

Any ccxt.pro exchange with `watch_my_trades`, `watch_orders`, `watch_balance` and
`watch_positions` can run on these; the Binance family uses `adapters.ccxtpro.parse`
instead. What a unified structure cannot say stays unknown (None) or, where the schema
needs a value, is refused (quarantined): a fill without a fee, an order type the kernel
does not model. Numbers come through `fields.unified_dec` (see its limits).

**Dedup keys.** A fill's key is the symbol and its `trade_id`. Where the exchange
documents its trade ids as unique per symbol (`UNIQUE_TRADE_IDS`), `trade_id` is the
venue's id. Elsewhere it is the venue's id with the order id, side, quantity and price
(`id:order:side:qty@price`): dYdX reports a position flip as two fills with one trade id
(NautilusTrader #3081), and one key for both would quarantine a real fill as a conflict.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from adapters import fields as f
from adapters.fields import Msg, ParseError
from events.facts import (
    AssetBalance,
    BalanceReported,
    FundingSettled,
    InstrumentDefined,
    InstrumentKind,
    MarkPriceObserved,
    OrderFilled,
    OrderStatus,
    OrderStatusReported,
    OrderType,
    PositionsReported,
    ReportedPosition,
    TransferCompleted,
)

#: Exchanges whose trade ids are unique per symbol (their API documents it).
UNIQUE_TRADE_IDS = frozenset({"binance", "binanceusdm", "binancecoinm"})
_TIFS = {"GTC": ("GTC", False), "IOC": ("IOC", False), "FOK": ("FOK", False),
         "PO": ("GTC", True)}


def _ms(d: Msg, k: str, path: str) -> int:
    v = f.get(d, k, path)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return f.ms({k: v}, k, path)


def trade_id(exchange: str, t: Msg) -> str:
    tid = f.ident(t, "id", "trade")
    if exchange in UNIQUE_TRADE_IDS:
        return tid
    qty, px = f.unified_dec(t, "amount", "trade"), f.unified_dec(t, "price", "trade")
    order = f.ident(t, "order", "trade") if f.has(t, "order") else "-"
    return f"{tid}:{order}:{f.text(t, 'side', 'trade')}:{qty.normalize():f}@{px.normalize():f}"


def fill(t: Msg, exchange: str) -> OrderFilled:
    fee = f.obj(t, "fee", "trade")
    maker = t.get("takerOrMaker")
    return OrderFilled(
        venue_ts=_ms(t, "timestamp", "trade"), symbol=f.text(t, "symbol", "trade"),
        trade_id=trade_id(exchange, t), order_id=f.ident(t, "order", "trade"),
        client_order_id=t.get("clientOrderId") or None,
        side=f.pick({"buy": "buy", "sell": "sell"}, f.text(t, "side", "trade"), "trade.side"),
        qty=f.unified_dec(t, "amount", "trade", nonneg=True),
        price=f.unified_dec(t, "price", "trade", nonneg=True),
        fee=f.unified_dec(fee, "cost", "trade.fee"),
        fee_currency=f.text(fee, "currency", "trade.fee"),
        liquidity=maker if maker in ("maker", "taker") else "unknown")


def _status(o: Msg) -> OrderStatus:
    raw = f.text(o, "status", "order")
    filled = f.unified_dec(o, "filled", "order") if f.has(o, "filled") else Decimal(0)
    if raw == "open":
        return "partially_filled" if filled > 0 else "new"
    table: dict[str, OrderStatus] = {"closed": "filled", "canceled": "canceled",
                                     "rejected": "rejected", "expired": "expired"}
    status: OrderStatus = f.pick(table, raw, "order.status")
    return status


def _type(o: Msg) -> OrderType:
    base = f.text(o, "type", "order")
    trigger = f.has(o, "triggerPrice")
    tp = f.has(o, "takeProfitPrice")
    table: dict[tuple[str, bool, bool], OrderType] = {
        ("market", False, False): "market", ("limit", False, False): "limit",
        ("market", True, False): "stop", ("limit", True, False): "stop_limit",
        ("market", True, True): "take_profit", ("limit", True, True): "take_profit_limit",
    }
    if (base, trigger, tp) not in table:
        raise ParseError(f"order.type {base!r} (trigger {trigger}) is not an order type"
                         " the kernel models")
    return table[(base, trigger, tp)]


def order(o: Msg, ts: int) -> OrderStatusReported:
    tif, post_only = f.pick(_TIFS, o.get("timeInForce") or "GTC", "order.timeInForce")
    at = _ms(o, "lastUpdateTimestamp", "order") if f.has(o, "lastUpdateTimestamp") else ts
    return OrderStatusReported(
        venue_ts=max(at, ts), symbol=f.text(o, "symbol", "order"),
        order_id=f.ident(o, "id", "order"), client_order_id=o.get("clientOrderId") or None,
        status=_status(o), side=f.pick({"buy": "buy", "sell": "sell"},
                                       f.text(o, "side", "order"), "order.side"),
        order_type=_type(o), qty=f.unified_dec(o, "amount", "order", nonneg=True),
        filled_qty=f.unified_dec(o, "filled", "order", nonneg=True)
        if f.has(o, "filled") else Decimal(0),
        price=f.unified_dec(o, "price", "order") if f.has(o, "price") else None,
        trigger_price=f.unified_dec(o, "triggerPrice", "order")
        if f.has(o, "triggerPrice") else None,
        avg_fill_price=f.unified_dec(o, "average", "order") or None
        if f.has(o, "average") else None,
        time_in_force=tif, reduce_only=bool(o.get("reduceOnly")),
        post_only=post_only or bool(o.get("postOnly")))


def positions(rows: list[Msg], ts: int) -> PositionsReported:
    out: list[ReportedPosition] = []
    for i, p in enumerate(rows):
        path = f"positions[{i}]"
        contracts = f.unified_dec(p, "contracts", path) if f.has(p, "contracts") else Decimal(0)
        if contracts == 0:
            continue
        side = f.pick({"long": 1, "short": -1}, f.text(p, "side", path), f"{path}.side")
        opt = {k: f.unified_dec(p, src, path) if f.has(p, src) else None
               for k, src in (("entry_price", "entryPrice"), ("mark_price", "markPrice"),
                              ("unrealized_pnl", "unrealizedPnl"), ("leverage", "leverage"),
                              ("notional", "notional"))}
        out.append(ReportedPosition(
            symbol=f.text(p, "symbol", path), qty=abs(contracts) * side,
            position_side=f.text(p, "side", path) if p.get("hedged") else "both",  # type: ignore[arg-type]
            **opt))
    return PositionsReported(venue_ts=ts, positions=tuple(out))


def balances(b: Msg, ts: int) -> BalanceReported:
    """Wallet (`total`) and available (`free`) per asset; margin is not unified, so it
    stays unknown."""
    total = f.obj(b, "total", "balance")
    free = b.get("free") if isinstance(b.get("free"), dict) else {}
    out = []
    for asset in sorted(total):
        if total[asset] is None:
            continue
        available = f.unified_dec(free, asset, "balance.free") if f.has(free, asset) else None
        out.append(AssetBalance(asset=asset, wallet=f.unified_dec(total, asset, "balance.total"),
                                available=available))
    return BalanceReported(venue_ts=ts, balances=tuple(out))


def mark(t: Msg) -> MarkPriceObserved:
    key = "markPrice" if f.has(t, "markPrice") else "last"
    return MarkPriceObserved(venue_ts=_ms(t, "timestamp", "ticker"),
                             symbol=f.text(t, "symbol", "ticker"),
                             price=f.unified_dec(t, key, "ticker"))


def funding(h: Msg) -> FundingSettled:
    return FundingSettled(venue_ts=_ms(h, "timestamp", "funding"),
                          symbol=f.text(h, "symbol", "funding"),
                          asset=f.text(h, "code", "funding"),
                          amount=f.unified_dec(h, "amount", "funding"),
                          funding_id=f.ident(h, "id", "funding") if f.has(h, "id") else None)


def transfer(entry: Msg) -> TransferCompleted:
    """A ledger entry of type deposit, withdrawal or transfer."""
    amount = f.unified_dec(entry, "amount", "ledger", nonneg=True)
    direction = f.text(entry, "direction", "ledger")
    return TransferCompleted(venue_ts=_ms(entry, "timestamp", "ledger"),
                             transfer_id=f.ident(entry, "id", "ledger"),
                             asset=f.text(entry, "currency", "ledger"),
                             direction="deposit" if direction == "in" else "withdrawal",
                             amount=amount)


def _step(v: Any, tick_mode: bool, path: str) -> Decimal:
    x = f.unified_dec({"v": v}, "v", path)
    return x if tick_mode else Decimal(1).scaleb(-int(x))


def instrument(m: Msg, ts: int, tick_mode: bool) -> InstrumentDefined:
    """A ccxt market; `tick_mode` is ccxt's precisionMode == TICK_SIZE (else the
    precision is a count of decimal places)."""
    kind: InstrumentKind = ("linear" if m.get("linear") else "inverse" if m.get("inverse")
                            else "spot")
    prec = f.obj(m, "precision", "market")
    cost = (m.get("limits") or {}).get("cost") or {}
    quote = f.text(m, "quote", "market")
    return InstrumentDefined(
        venue_ts=ts, symbol=f.text(m, "symbol", "market"), instrument_kind=kind,
        base=f.text(m, "base", "market"), quote=quote,
        settle=quote if kind == "spot" else f.text(m, "settle", "market"),
        tick_size=_step(f.get(prec, "price", "market.precision"), tick_mode, "precision.price"),
        lot_size=_step(f.get(prec, "amount", "market.precision"), tick_mode,
                       "precision.amount"),
        min_notional=f.unified_dec(cost, "min", "limits.cost") if f.has(cost, "min")
        else Decimal(0),
        contract_size=f.unified_dec(m, "contractSize", "market")
        if f.has(m, "contractSize") and kind != "spot" else Decimal(1))
