"""Binance USD-M payloads, field for field, built from the fake's records.

Each builder names the page its shape comes from (all under
https://developers.binance.com/docs/derivatives/usds-margined-futures/, scraped 2026-05-28 in
github.com/shubhamtaywade82/binance-docs-scraper) and, where ccxt 4.5.90 documents the same
payload in a comment, the ccxt function that parses it. Decimals are strings, as on the wire:
prices with the symbol's `pricePrecision`, quantities with its `quantityPrecision`, money with
8 decimals.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN
from decimal import Decimal as D
from typing import Any

from .book import Income, Position, Trade
from .markets import Instrument
from .orders import AlgoOrder, Order

Json = dict[str, Any]


def fmt(x: D, places: int) -> str:
    return format(x.quantize(D(1).scaleb(-places), rounding=ROUND_HALF_EVEN), "f")


def money(x: D) -> str:
    return fmt(x, 8)


def px(inst: Instrument, x: D) -> str:
    return fmt(x, inst.price_precision)


def qty(inst: Instrument, x: D) -> str:
    return fmt(x, inst.qty_precision)


def avg(inst: Instrument, x: D) -> str:
    # The Query Order example shows "avgPrice": "0.00000" for BTCUSDT (pricePrecision 2).
    return fmt(x, inst.price_precision + 3)


def quote(inst: Instrument, x: D) -> str:
    return fmt(x, inst.price_precision + inst.qty_precision)


def _plain(x: D) -> str:
    return format(x.normalize(), "f")  # filters print their values unpadded


def _filters(inst: Instrument) -> list[Json]:
    s = _plain
    return [
        {"filterType": "PRICE_FILTER", "minPrice": s(inst.min_price),
         "maxPrice": s(inst.max_price), "tickSize": px(inst, inst.tick)},
        {"filterType": "LOT_SIZE", "stepSize": s(inst.step), "maxQty": s(inst.max_qty),
         "minQty": s(inst.min_qty)},
        {"filterType": "MARKET_LOT_SIZE", "stepSize": s(inst.step),
         "maxQty": s(inst.market_max_qty), "minQty": s(inst.min_qty)},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
        {"filterType": "MIN_NOTIONAL", "notional": s(inst.min_notional)},
        {"filterType": "PERCENT_PRICE", "multiplierUp": fmt(inst.percent_up, 4),
         "multiplierDown": fmt(inst.percent_down, 4), "multiplierDecimal": "4"},
    ]


def exchange_info(instruments: list[Instrument], now: int) -> Json:
    """market-data/rest-api/Exchange-Information; parsed by ccxt binance.parse_market."""
    assets = sorted({i.margin_asset for i in instruments} | {i.base for i in instruments})
    return {
        "timezone": "UTC",
        "serverTime": now,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": 2400},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": a, "marginAvailable": a in ("USDT", "USDC", "BTC"),
                    "autoAssetExchange": "0" if a == "USDT" else None} for a in assets],
        "symbols": [{
            "symbol": i.symbol, "pair": i.symbol, "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000, "onboardDate": i.onboard_ms, "status": "TRADING",
            "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
            "baseAsset": i.base, "quoteAsset": i.quote, "marginAsset": i.margin_asset,
            "pricePrecision": i.price_precision, "quantityPrecision": i.qty_precision,
            "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
            "underlyingSubType": ["PoW"], "settlePlan": 0, "triggerProtect": "0.0500",
            "liquidationFee": "0.012500", "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
            "filters": _filters(i),
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                           "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
            "permissionSets": ["GRID", "COPY"],
        } for i in instruments],
    }


def order(o: Order, inst: Instrument, *, query: bool = False) -> Json:
    """trade/rest-api/New-Order, Cancel-Order, Modify-Order (with `cumQty`) and Query-Order /
    Current-All-Open-Orders / All-Orders (with `time`); ccxt binance.parse_order."""
    out: Json = {
        "orderId": o.order_id, "symbol": o.symbol, "status": o.status,
        "clientOrderId": o.client_order_id, "price": px(inst, o.price),
        "avgPrice": avg(inst, o.avg_price), "origQty": qty(inst, o.orig_qty),
        "executedQty": qty(inst, o.executed_qty), "cumQuote": quote(inst, o.cum_quote),
        "timeInForce": o.time_in_force, "type": o.type, "reduceOnly": o.reduce_only,
        "closePosition": o.close_position, "side": o.side, "positionSide": o.position_side,
        "stopPrice": px(inst, o.stop_price), "workingType": o.working_type,
        "priceProtect": o.price_protect, "origType": o.orig_type, "priceMatch": o.price_match,
        "selfTradePreventionMode": o.stp_mode, "goodTillDate": o.good_till_date,
        "updateTime": o.update_time,
    }
    if query:
        out["time"] = o.time
    else:
        out["cumQty"] = qty(inst, o.executed_qty)
    return out


def algo(a: AlgoOrder, inst: Instrument, *, query: bool = False,
         actual_price: D = D(0)) -> Json:
    """trade/rest-api/New-Algo-Order (place) and Query-Algo-Order / Current-All-Algo-Open-Orders
    (query, with the actual order and TP/SL fields)."""
    out: Json = {
        "algoId": a.algo_id, "clientAlgoId": a.client_algo_id, "algoType": "CONDITIONAL",
        "orderType": a.order_type, "symbol": a.symbol, "side": a.side,
        "positionSide": a.position_side, "timeInForce": a.time_in_force,
        "quantity": qty(inst, a.quantity), "algoStatus": a.algo_status,
    }
    if query:
        out["actualOrderId"] = "" if a.actual_order_id is None else str(a.actual_order_id)
        out["actualPrice"] = avg(inst, actual_price)
    out.update({
        "triggerPrice": px(inst, a.trigger_price), "price": px(inst, a.price),
        "icebergQuantity": None,
    })
    if query:
        out.update({"tpTriggerPrice": "0.000", "tpPrice": "0.000", "slTriggerPrice": "0.000",
                    "slPrice": "0.000", "tpOrderType": ""})
    out.update({
        "selfTradePreventionMode": a.stp_mode, "workingType": a.working_type,
        "priceMatch": a.price_match, "closePosition": a.close_position,
        "priceProtect": a.price_protect, "reduceOnly": a.reduce_only,
    })
    if not query:
        out["activatePrice"] = "" if a.activate_price is None else px(inst, a.activate_price)
        out["callbackRate"] = "" if a.callback_rate is None else fmt(a.callback_rate, 1)
    out.update({"createTime": a.create_time, "updateTime": a.update_time,
                "triggerTime": a.trigger_time, "goodTillDate": a.good_till_date})
    return out


def trade(t: Trade, inst: Instrument) -> Json:
    """trade/rest-api/Account-Trade-List (plus `marginAsset`, which the live venue sends, as a
    real response quoted in ccxt issue #18864 shows); ccxt binance.parse_trade."""
    return {
        "buyer": t.side == "BUY", "commission": money(t.commission),
        "commissionAsset": t.commission_asset, "id": t.id, "maker": t.maker,
        "orderId": t.order_id, "price": px(inst, t.price), "qty": qty(inst, t.qty),
        "quoteQty": quote(inst, t.quote_qty), "realizedPnl": money(t.realized_pnl),
        "side": t.side, "positionSide": t.position_side, "symbol": t.symbol,
        "marginAsset": inst.margin_asset, "time": t.time,
    }


def income(i: Income) -> Json:
    """account/rest-api/Get-Income-History; ccxt binance.parse_income."""
    return {"symbol": i.symbol, "incomeType": i.income_type, "income": money(i.income),
            "asset": i.asset, "info": i.info, "time": i.time, "tranId": i.tran_id,
            "tradeId": i.trade_id}


def leverage_bracket(inst: Instrument) -> Json:
    """account/rest-api/Notional-and-Leverage-Brackets; ccxt binance.load_leverage_brackets."""
    return {"symbol": inst.symbol, "brackets": [
        {"bracket": b.bracket, "initialLeverage": b.max_leverage, "notionalCap": int(b.cap),
         "notionalFloor": int(b.floor), "maintMarginRatio": float(b.mmr), "cum": float(b.cum)}
        for b in inst.brackets]}


def symbol_config(inst: Instrument, leverage: int) -> Json:
    """account/rest-api/Symbol-Config; ccxt binance.fetch_leverages."""
    return {"symbol": inst.symbol, "marginType": "CROSSED", "isAutoAddMargin": False,
            "leverage": leverage, "maxNotionalValue": format(inst.bracket_for(D(0)).cap, "f")}


def premium_index(inst: Instrument, mark: D, rate: D, next_funding: int, now: int) -> Json:
    """market-data/rest-api/Mark-Price (`/fapi/v1/premiumIndex`)."""
    return {"symbol": inst.symbol, "markPrice": money(mark), "indexPrice": money(mark),
            "estimatedSettlePrice": money(mark), "lastFundingRate": money(rate),
            "interestRate": "0.00010000", "nextFundingTime": next_funding, "time": now}


def capital_coin(asset: str) -> Json:
    """`/sapi/v1/capital/config/getall`, one coin (wallet/capital/all-coins-info), enough for
    ccxt binance.parse_currency, which load_markets calls when keys are set."""
    return {"coin": asset, "depositAllEnable": True, "withdrawAllEnable": True, "name": asset,
            "free": "0", "locked": "0", "freeze": "0", "withdrawing": "0", "ipoing": "0",
            "ipoable": "0", "storage": "0", "isLegalMoney": False, "trading": True,
            "networkList": [{
                "network": "ETH", "coin": asset, "withdrawIntegerMultiple": "0.00000001",
                "isDefault": True, "depositEnable": True, "withdrawEnable": True,
                "depositDesc": "", "withdrawDesc": "", "name": "Ethereum (ERC20)",
                "resetAddressStatus": False, "addressRegex": "^(0x)[0-9A-Fa-f]{40}$",
                "memoRegex": "", "withdrawFee": "1", "withdrawMin": "10",
                "withdrawMax": "9999999999", "minConfirm": 6, "unLockConfirm": 64,
                "sameAddress": False, "busy": False}]}


def position_v3(p: Position, inst: Instrument, mark: D, im: D, mm: D, now: int) -> Json:
    """trade/rest-api/Position-Information-V3 (`/fapi/v3/positionRisk`)."""
    return {
        "symbol": p.symbol, "positionSide": p.side, "positionAmt": qty(inst, p.amount),
        "entryPrice": money(p.entry), "breakEvenPrice": money(p.entry),
        "markPrice": money(mark), "unRealizedProfit": money(p.unrealized(mark)),
        "liquidationPrice": "0", "isolatedMargin": "0", "notional": money(p.notional(mark)),
        "marginAsset": inst.margin_asset, "isolatedWallet": "0", "initialMargin": money(im),
        "maintMargin": money(mm), "positionInitialMargin": money(im),
        "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0", "askNotional": "0",
        "updateTime": p.update_ms,
    }


def position_v2(p: Position, inst: Instrument, mark: D, leverage: int) -> Json:
    """trade/rest-api/Position-Information-V2 (`/fapi/v2/positionRisk`, carries `leverage`)."""
    return {
        "symbol": p.symbol, "positionAmt": qty(inst, p.amount), "entryPrice": money(p.entry),
        "breakEvenPrice": money(p.entry), "markPrice": money(mark),
        "unRealizedProfit": money(p.unrealized(mark)), "liquidationPrice": "0",
        "leverage": str(leverage), "maxNotionalValue": format(inst.bracket_for(D(0)).cap, "f"),
        "marginType": "cross", "isolatedMargin": "0.00000000", "isAutoAddMargin": "false",
        "positionSide": p.side, "notional": money(p.notional(mark)), "isolatedWallet": "0",
        "updateTime": p.update_ms,
    }


# --- user data stream ---------------------------------------------------------------------

def order_trade_update(o: Order, inst: Instrument, *, execution: str, now: int,
                       last_qty: D = D(0), last_price: D = D(0), commission: D = D(0),
                       trade_id: int = 0, realized: D = D(0), maker: bool = False) -> Json:
    """user-data-streams/Event-Order-Update; ccxt pro binance.handle_order_update / parse_ws_order
    / parse_ws_trade (`t` trade id, `l`/`L` last fill, `n`/`N` fee, `rp` realized PnL)."""
    return {"e": "ORDER_TRADE_UPDATE", "E": now + 1, "T": now, "o": {
        "s": o.symbol, "c": o.client_order_id, "S": o.side, "o": o.type,
        "f": o.time_in_force, "q": qty(inst, o.orig_qty), "p": px(inst, o.price),
        "ap": avg(inst, o.avg_price), "sp": px(inst, o.stop_price), "x": execution,
        "X": o.status, "i": o.order_id, "l": qty(inst, last_qty), "z": qty(inst, o.executed_qty),
        "L": px(inst, last_price), "N": inst.margin_asset, "n": money(commission), "T": now,
        "t": trade_id, "b": "0", "a": "0", "m": maker, "R": o.reduce_only,
        "wt": o.working_type, "ot": o.orig_type, "ps": o.position_side, "cp": o.close_position,
        "rp": money(realized), "pP": o.price_protect, "si": 0, "ss": 0, "V": o.stp_mode,
        "pm": o.price_match, "gtd": o.good_till_date, "er": str(o.expiry_reason),
    }}


def algo_update(a: AlgoOrder, inst: Instrument, *, now: int, actual: Order | None = None) -> Json:
    """user-data-streams/Event-Algo-Order-Update (`ALGO_UPDATE`); ccxt pro handles it with
    handle_order_update (`aid` algo id, `caid` client algo id, `ai` actual order id)."""
    return {"e": "ALGO_UPDATE", "T": now, "E": now + 1, "o": {
        "caid": a.client_algo_id, "aid": a.algo_id, "at": "CONDITIONAL", "o": a.order_type,
        "s": a.symbol, "S": a.side, "ps": a.position_side, "f": a.time_in_force,
        "q": qty(inst, a.quantity), "X": a.algo_status,
        "ai": "" if a.actual_order_id is None else str(a.actual_order_id),
        "ap": avg(inst, actual.avg_price if actual else D(0)),
        "aq": avg(inst, actual.executed_qty if actual else D(0)),
        "act": "0", "tp": px(inst, a.trigger_price), "p": px(inst, a.price), "V": a.stp_mode,
        "wt": a.working_type, "pm": a.price_match, "cp": a.close_position,
        "pP": a.price_protect, "R": a.reduce_only, "tt": a.trigger_time,
        "gtd": a.good_till_date, "rm": a.reject_reason,
    }}


def account_update(reason: str, now: int, balances: list[tuple[str, D, D]],
                   positions: list[tuple[Position, Instrument, D]]) -> Json:
    """user-data-streams/Event-Balance-and-Position-Update (`ACCOUNT_UPDATE`): `B` is
    (asset, wallet balance, balance change except PnL and commission); `P` the changed
    positions at their mark. ccxt pro binance.handle_acount_update."""
    return {"e": "ACCOUNT_UPDATE", "E": now + 1, "T": now, "a": {
        "m": reason,
        "B": [{"a": asset, "wb": money(wb), "cw": money(wb), "bc": money(bc)}
              for asset, wb, bc in balances],
        "P": [{"s": p.symbol, "pa": qty(inst, p.amount), "ep": money(p.entry),
               "bep": money(p.entry), "cr": money(p.realized), "up": money(p.unrealized(mark)),
               "mt": "cross", "iw": "0", "ps": p.side} for p, inst, mark in positions],
    }}


def listen_key_expired(listen_key: str, now: int) -> Json:
    """user-data-streams/Event-User-Data-Stream-Expired."""
    return {"e": "listenKeyExpired", "E": now, "listenKey": listen_key}


# --- market streams -----------------------------------------------------------------------

def mark_price_update(inst: Instrument, mark: D, rate: D, next_funding: int, now: int) -> Json:
    """websocket-market-streams/Mark-Price-Stream (`<symbol>@markPrice[@1s]`); ccxt pro
    binance.handle_mark_prices."""
    return {"e": "markPriceUpdate", "E": now, "s": inst.symbol, "p": money(mark),
            "ap": money(mark), "i": money(mark), "P": money(mark), "r": money(rate),
            "T": next_funding}


def ticker_24hr(inst: Instrument, mark: D, open_price: D, volume: D, now: int) -> Json:
    """websocket-market-streams/Individual-Symbol-Ticker-Streams (`<symbol>@ticker`)."""
    change = mark - open_price
    pct = (change / open_price * 100) if open_price else D(0)
    return {"e": "24hrTicker", "E": now, "s": inst.symbol, "p": px(inst, change),
            "P": fmt(pct, 3), "w": px(inst, mark), "c": px(inst, mark), "Q": "0",
            "o": px(inst, open_price), "h": px(inst, max(mark, open_price)),
            "l": px(inst, min(mark, open_price)), "v": qty(inst, volume),
            "q": fmt(volume * mark, 2), "O": now - 86_400_000, "C": now, "F": 0, "L": 0,
            "n": 0}


def mini_ticker_24hr(inst: Instrument, mark: D, open_price: D, volume: D, now: int) -> Json:
    """websocket-market-streams/Individual-Symbol-Mini-Ticker-Stream (`<symbol>@miniTicker`);
    what ccxt pro's watch_ticker subscribes to by default (options watchTickers name)."""
    return {"e": "24hrMiniTicker", "E": now, "s": inst.symbol, "c": px(inst, mark),
            "o": px(inst, open_price), "h": px(inst, max(mark, open_price)),
            "l": px(inst, min(mark, open_price)), "v": qty(inst, volume),
            "q": fmt(volume * mark, 2)}
