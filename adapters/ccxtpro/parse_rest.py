"""Binance futures REST records -> kernel events. Pure: no clock, no I/O.

Each function takes the `info` of one ccxt unified structure (Binance's own record, see
`adapters.ccxtpro.parse` for the sources) and returns an event, raising `ParseError` or
`EventValidationError` for the caller's `guard` to quarantine. Report times: a REST
report is stamped with the time its reply was received (`ts`, the caller's clock), or
the newest update time it contains if that is later, so it is never older than a change
it includes.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from adapters import fields as f
from adapters.ccxtpro.book import Book
from adapters.ccxtpro.parse import (
    _ALGO_STATUSES,
    _POSITION_SIDES,
    _SIDES,
    _STATUSES,
    _TIFS,
    _TYPES,
    TRANSFER_INCOME,
)
from adapters.fields import Msg, ParseError
from events.facts import (
    AssetBalance,
    BalanceReported,
    FundingSettled,
    InstrumentDefined,
    InstrumentKind,
    LeverageSet,
    MarginReport,
    MarkPriceObserved,
    OrderFilled,
    OrderStatusReported,
    PositionSide,
    PositionsReported,
    ReportedPosition,
    TransferCompleted,
)


def _position_side(d: Msg, k: str, path: str) -> PositionSide:
    side: PositionSide = f.pick(_POSITION_SIDES, f.text(d, k, path), f"{path}.{k}")
    return side


def fill(t: Msg, book: Book, client_order_id: str | None) -> OrderFilled:
    """One `userTrades` record; `client_order_id` is its order's (REST trades lack it)."""
    return OrderFilled(
        venue_ts=f.ms(t, "time", "trade"),
        symbol=book.symbol(f.text(t, "symbol", "trade"), "trade.symbol"),
        trade_id=f.ident(t, "id", "trade"),
        order_id=f.ident(t, "orderId", "trade"),
        client_order_id=client_order_id,
        side=f.pick(_SIDES, f.text(t, "side", "trade"), "trade.side"),
        qty=f.dec(t, "qty", "trade", nonneg=True),
        price=f.dec(t, "price", "trade", nonneg=True),
        fee=f.dec(t, "commission", "trade"),
        fee_currency=f.text(t, "commissionAsset", "trade"),
        liquidity="maker" if f.boolean(t, "maker", "trade") else "taker",
        position_side=_position_side(t, "positionSide", "trade"),
        venue_realized_pnl=f.dec(t, "realizedPnl", "trade"),
    )


def is_algo(o: Msg) -> bool:
    return isinstance(o, dict) and "algoId" in o


def order(o: Msg, book: Book, ts: int) -> OrderStatusReported | None:
    """A regular order record (`/order`, `/openOrders`, `/allOrders`) or an algo order
    record (`/algoOrder`, `/openAlgoOrders`); None for an algo order that triggered (the
    regular order it placed carries the state from then on)."""
    symbol = book.symbol(f.text(o, "symbol", "order"), "order.symbol")
    tif, post_only = f.pick(_TIFS, f.text(o, "timeInForce", "order"), "order.timeInForce")
    side = f.pick(_SIDES, f.text(o, "side", "order"), "order.side")
    at = max(ts, f.ms(o, "updateTime", "order")) if f.has(o, "updateTime") else ts
    if is_algo(o):
        status = f.pick(_ALGO_STATUSES, f.text(o, "algoStatus", "order"), "order.algoStatus")
        if status is None:
            return None
        return OrderStatusReported(
            venue_ts=at, symbol=symbol, order_id=f.ident(o, "algoId", "order"),
            client_order_id=o.get("clientAlgoId") or None, status=status, side=side,
            order_type=f.pick(_TYPES, f.text(o, "orderType", "order"), "order.orderType"),
            qty=f.dec(o, "quantity", "order", nonneg=True), filled_qty=Decimal(0),
            price=f.price(o, "price", "order"), trigger_price=f.price(o, "triggerPrice", "order"),
            time_in_force=tif, reduce_only=f.boolean(o, "reduceOnly", "order"),
            post_only=post_only)
    return OrderStatusReported(
        venue_ts=at, symbol=symbol, order_id=f.ident(o, "orderId", "order"),
        client_order_id=o.get("clientOrderId") or None,
        status=f.pick(_STATUSES, f.text(o, "status", "order"), "order.status"), side=side,
        order_type=f.pick(_TYPES, f.text(o, "type", "order"), "order.type"),
        qty=f.dec(o, "origQty", "order", nonneg=True),
        filled_qty=f.dec(o, "executedQty", "order", nonneg=True),
        price=f.price(o, "price", "order"), trigger_price=f.price(o, "stopPrice", "order"),
        avg_fill_price=f.price(o, "avgPrice", "order"), time_in_force=tif,
        reduce_only=f.boolean(o, "reduceOnly", "order"), post_only=post_only)


def triggered_order_id(o: Msg) -> str | None:
    """The regular order an algo order placed when it triggered (`actualOrderId`)."""
    v = o.get("actualOrderId") if isinstance(o, dict) else None
    return str(v) if isinstance(v, int | str) and str(v) not in ("", "0") else None


def positions(rows: list[Msg], book: Book, leverage: Mapping[str, Decimal],
              ts: int) -> PositionsReported:
    """The `positionRisk` records: every open position (flat ones are left out).
    `positionRisk` v3 carries no leverage; `leverage` (from `symbolConfig`) does."""
    out: list[ReportedPosition] = []
    at = ts
    for i, p in enumerate(rows):
        path = f"positions[{i}]"
        qty = f.dec(p, "positionAmt", path)
        if f.has(p, "updateTime"):
            at = max(at, f.ms(p, "updateTime", path))
        if qty == 0:
            continue
        symbol = book.symbol(f.text(p, "symbol", path), f"{path}.symbol")
        notional_key = "notional" if f.has(p, "notional") else "notionalValue"
        out.append(ReportedPosition(
            symbol=symbol, qty=qty, position_side=_position_side(p, "positionSide", path),
            entry_price=f.dec(p, "entryPrice", path, nonneg=True),
            mark_price=f.price(p, "markPrice", path),
            unrealized_pnl=f.dec(p, "unRealizedProfit", path),
            leverage=leverage.get(symbol),
            notional=f.dec(p, notional_key, path)))
    return PositionsReported(venue_ts=at, positions=tuple(out))


def balances(account: Msg, ts: int) -> BalanceReported:
    """`/fapi/v3/account` (or `/dapi/v1/account`): each asset's wallet and available
    balance, and its margin: `used` is the positions' initial margin (what K computes:
    Σ notional / leverage; open orders' margin is not in it), `maintenance` the
    maintenance margin. A figure the venue leaves out stays None."""
    out: list[AssetBalance] = []
    margins: list[MarginReport] = []
    at = ts
    for i, a in enumerate(f.items(account, "assets", "account")):
        path = f"assets[{i}]"
        asset = f.text(a, "asset", path)
        if f.has(a, "updateTime"):
            at = max(at, f.ms(a, "updateTime", path))
        available = f.dec(a, "availableBalance", path) if f.has(a, "availableBalance") else None
        out.append(AssetBalance(asset=asset, wallet=f.dec(a, "walletBalance", path),
                                available=available))
        margins.append(MarginReport(
            asset=asset, available=available,
            used=(f.dec(a, "positionInitialMargin", path, nonneg=True)
                  if f.has(a, "positionInitialMargin") else None),
            maintenance=(f.dec(a, "maintMargin", path, nonneg=True)
                         if f.has(a, "maintMargin") else None)))
    return BalanceReported(venue_ts=at, balances=tuple(out), margins=tuple(margins))


def leverage(row: Msg, book: Book, ts: int) -> LeverageSet:
    """A `symbolConfig` record (leverage as a JSON integer)."""
    return LeverageSet(venue_ts=ts, symbol=book.symbol(f.text(row, "symbol", "config"),
                                                      "config.symbol"),
                       leverage=f.dec(row, "leverage", "config"))


def mark(row: Msg, book: Book) -> MarkPriceObserved:
    """A `premiumIndex` record."""
    return MarkPriceObserved(venue_ts=f.ms(row, "time", "premium"),
                             symbol=book.symbol(f.text(row, "symbol", "premium"),
                                                "premium.symbol"),
                             price=f.dec(row, "markPrice", "premium"))


def funding_side(book: Book, amount: Decimal, rate: Decimal | None) -> PositionSide:
    """Which position a funding payment settled. Binance's income records name no side.
    One-way: "both". Hedge mode: at a positive rate longs pay and shorts receive (and the
    reverse), so the payment's sign against the rate names the side; a rate the kernel
    could not learn leaves it unknown, which this schema writes as "both"."""
    if not book.hedge_mode:
        return "both"
    if rate is None or rate == 0 or amount == 0:
        return "both"
    return "long" if (amount < 0) == (rate > 0) else "short"


def funding(row: Msg, book: Book, rate: Decimal | None) -> FundingSettled:
    """A FUNDING_FEE `income` record, keyed on Binance's `tranId`."""
    if f.text(row, "incomeType", "income") != "FUNDING_FEE":
        raise ParseError(f"income.incomeType must be FUNDING_FEE, was {row['incomeType']!r}")
    amount = f.dec(row, "income", "income")
    return FundingSettled(
        venue_ts=f.ms(row, "time", "income"),
        symbol=book.symbol(f.text(row, "symbol", "income"), "income.symbol"),
        asset=f.text(row, "asset", "income"), amount=amount, rate=rate,
        position_side=funding_side(book, amount, rate),
        funding_id=f.ident(row, "tranId", "income"))


def transfer(row: Msg) -> TransferCompleted:
    """A transfer `income` record (TRANSFER and its kin): signed from the account's view."""
    kind = f.text(row, "incomeType", "income")
    if kind not in TRANSFER_INCOME:
        raise ParseError(f"income.incomeType must be a transfer, was {kind!r}")
    amount = f.dec(row, "income", "income")
    if amount == 0:
        raise ParseError("income.income of a transfer must not be 0")
    return TransferCompleted(
        venue_ts=f.ms(row, "time", "income"), transfer_id=f.ident(row, "tranId", "income"),
        asset=f.text(row, "asset", "income"),
        direction="deposit" if amount > 0 else "withdrawal", amount=abs(amount))


def _filter(info: Msg, kind: str, key: str) -> Decimal:
    for i, flt in enumerate(f.items(info, "filters", "market.info")):
        if isinstance(flt, dict) and flt.get("filterType") == kind:
            return f.dec(flt, key, f"market.info.filters[{i}]")
    raise ParseError(f"market.info.filters has no {kind}")


def instrument(market: Msg, ts: int) -> InstrumentDefined:
    """A ccxt market (`load_markets`) of the Binance family: the unified symbol, kind
    and assets; tick, lot and minimum notional from exchangeInfo's own filters; the
    contract size from `contractSize` (COIN-M), else 1 (USD-M has none)."""
    info = f.obj(market, "info", "market")
    kind: InstrumentKind
    if market.get("linear"):
        kind = "linear"
    elif market.get("inverse"):
        kind = "inverse"
    elif market.get("spot"):
        kind = "spot"
    else:
        raise ParseError(f"market {market.get('symbol')!r} is neither linear, inverse nor spot")
    min_notional = (_filter(info, "MIN_NOTIONAL", "notional")
                    if any(isinstance(x, dict) and x.get("filterType") == "MIN_NOTIONAL"
                           for x in f.items(info, "filters", "market.info")) else Decimal(0))
    return InstrumentDefined(
        venue_ts=ts, symbol=f.text(market, "symbol", "market"), instrument_kind=kind,
        base=f.text(market, "base", "market"), quote=f.text(market, "quote", "market"),
        settle=f.text(market, "settle" if kind != "spot" else "quote", "market"),
        tick_size=_filter(info, "PRICE_FILTER", "tickSize"),
        lot_size=_filter(info, "LOT_SIZE", "stepSize"),
        min_notional=min_notional,
        contract_size=f.dec(info, "contractSize", "market.info") if f.has(info, "contractSize")
        else Decimal(1))


def places(market: Msg) -> dict[str, int]:
    """The decimal places exchangeInfo gives a market's assets (`baseAssetPrecision`,
    `quotePrecision`: 8 for USDT on every USD-M symbol): asset -> places."""
    info = market.get("info") if isinstance(market, dict) else None
    out: dict[str, int] = {}
    if not isinstance(info, dict):
        return out
    for asset_key, prec_key in (("base", "baseAssetPrecision"), ("quote", "quotePrecision")):
        asset, prec = market.get(asset_key), info.get(prec_key)
        if isinstance(asset, str) and isinstance(prec, int) and 0 <= prec <= 18:
            out[asset] = prec
    return out


def income_rows(response: Any) -> list[Msg]:
    if not isinstance(response, list):
        raise ParseError(f"income must be a list, was {type(response).__name__}")
    return response
