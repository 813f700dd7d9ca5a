"""The read-only REST views of the account: balances, positions, trades, income, orders.

Shapes are in `wire.py`; this module decides *which* rows a query returns, following each
page's notes: `/fapi/v1/userTrades` (symbol mandatory; last 7 days unless a window or `fromId`
is given; a window is at most 7 days; `fromId` excludes a window; limit 500, max 1000; oldest
first), `/fapi/v1/income` (last 7 days unless a window is given; limit 100, max 1000),
`/fapi/v1/allOrders` and `/fapi/v1/allAlgoOrders` (orders >= the id, else the most recent),
and the v3 position endpoints
(only positions that are open or have open orders; one-way mode shows BOTH, hedge mode LONG and
SHORT).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors as E
from . import orders as P
from . import wire
from .book import Position
from .risk import position_im, position_mm

if TYPE_CHECKING:
    from .engine import Engine

Json = dict[str, Any]
WEEK = 7 * 24 * 3600 * 1000


def _sides(e: Engine) -> tuple[str, ...]:
    return ("LONG", "SHORT") if e.hedge else ("BOTH",)


def positions(e: Engine, symbol: str | None, *, every: bool) -> list[Position]:
    """Positions to list: all keys (v2) or those open or with open orders (v3)."""
    symbols = [e.instrument(symbol).symbol] if symbol else list(e.instruments)
    out = []
    for s in symbols:
        for side in _sides(e):
            p = e.book.position(s, side)
            has_orders = any(o.position_side == side for o in e.open_orders(s))
            if every or p.amount != 0 or has_orders:
                out.append(p)
    return out


def position_risk_v3(e: Engine, params: dict[str, str]) -> list[Json]:
    out = []
    for p in positions(e, P.text(params, "symbol"), every=False):
        inst, mark = e.instruments[p.symbol], e.marks[p.symbol]
        out.append(wire.position_v3(p, inst, mark, position_im(p, mark, e.leverage[p.symbol]),
                                    position_mm(p, inst, mark), e.now()))
    return out


def position_risk_v2(e: Engine, params: dict[str, str]) -> list[Json]:
    return [wire.position_v2(p, e.instruments[p.symbol], e.marks[p.symbol],
                             e.leverage[p.symbol])
            for p in positions(e, P.text(params, "symbol"), every=True)]


def _asset(e: Engine, asset: str, *, v2: bool) -> Json:
    r = e.risk(asset)
    out = {
        "asset": asset, "walletBalance": wire.money(r.wallet),
        "unrealizedProfit": wire.money(r.unrealized),
        "marginBalance": wire.money(r.margin_balance), "maintMargin": wire.money(r.maint),
        "initialMargin": wire.money(r.initial), "positionInitialMargin": wire.money(r.position_im),
        "openOrderInitialMargin": wire.money(r.open_order_im),
        "crossWalletBalance": wire.money(r.wallet), "crossUnPnl": wire.money(r.unrealized),
        "availableBalance": wire.money(r.available),
        "maxWithdrawAmount": wire.money(r.max_withdraw),
        "updateTime": e.now(),
    }
    if v2:
        out["marginAvailable"] = True
    return out


def account(e: Engine, *, v2: bool = False) -> Json:
    """account/rest-api/Account-Information-V3 (and -V2): single-asset mode, totals in USDT."""
    usdt = e.risk("USDT")
    totals: Json = {
        "totalInitialMargin": wire.money(usdt.initial),
        "totalMaintMargin": wire.money(usdt.maint),
        "totalWalletBalance": wire.money(usdt.wallet),
        "totalUnrealizedProfit": wire.money(usdt.unrealized),
        "totalMarginBalance": wire.money(usdt.margin_balance),
        "totalPositionInitialMargin": wire.money(usdt.position_im),
        "totalOpenOrderInitialMargin": wire.money(usdt.open_order_im),
        "totalCrossWalletBalance": wire.money(usdt.wallet),
        "totalCrossUnPnl": wire.money(usdt.unrealized),
        "availableBalance": wire.money(usdt.available),
        "maxWithdrawAmount": wire.money(usdt.max_withdraw),
    }
    head: Json = ({"feeTier": 0, "feeBurn": True, "canTrade": True, "canDeposit": True,
                   "canWithdraw": True, "updateTime": 0, "multiAssetsMargin": False,
                   "tradeGroupId": -1} if v2 else {})
    rows = []
    for p in positions(e, None, every=v2):
        inst, mark = e.instruments[p.symbol], e.marks[p.symbol]
        im = position_im(p, mark, e.leverage[p.symbol])
        row: Json = {
            "symbol": p.symbol, "positionSide": p.side, "positionAmt": wire.qty(inst, p.amount),
            "unrealizedProfit": wire.money(p.unrealized(mark)), "isolatedMargin": "0",
            "notional": wire.money(p.notional(mark)), "isolatedWallet": "0",
            "initialMargin": wire.money(im), "maintMargin": wire.money(position_mm(p, inst, mark)),
            "updateTime": p.update_ms,
        }
        if v2:
            row.update({"positionInitialMargin": wire.money(im), "openOrderInitialMargin": "0",
                        "leverage": str(e.leverage[p.symbol]), "isolated": False,
                        "entryPrice": wire.money(p.entry), "breakEvenPrice": wire.money(p.entry),
                        "maxNotional": format(inst.brackets[0].cap, "f"),
                        "bidNotional": "0", "askNotional": "0"})
        rows.append(row)
    assets = sorted(set(e.book.wallet) | {"USDT"})
    return {**head, **totals, "assets": [_asset(e, a, v2=v2) for a in assets], "positions": rows}


def _window(e: Engine, params: dict[str, str]) -> tuple[int, int, bool]:
    """(start, end, start_given) for a query limited to 7 days, defaulting to the last 7."""
    start, end = P.integer(params, "startTime"), P.integer(params, "endTime")
    if start is not None and end is not None:
        if start > end:
            raise E.BinanceError(-1023, "Start time is greater than end time.")
        if end - start > WEEK:
            raise E.lookup_interval_too_big()
        return start, end, True
    if start is not None:
        return start, start + WEEK, True
    end = e.now() if end is None else end
    return end - WEEK, end, False


def _limit(params: dict[str, str], default: int) -> int:
    limit = P.integer(params, "limit")
    if limit is None:
        return default
    if limit <= 0:
        raise E.invalid_parameter("limit")
    return min(limit, 1000)


def user_trades(e: Engine, params: dict[str, str]) -> list[Json]:
    inst = e.instrument(P.text(params, "symbol", required=True))
    oid, from_id = P.integer(params, "orderId"), P.integer(params, "fromId")
    limit = _limit(params, 500)
    rows = [t for t in e.book.trades
            if t.symbol == inst.symbol and (oid is None or t.order_id == oid)]
    if from_id is not None:
        if "startTime" in params or "endTime" in params:
            raise E.BinanceError(-1128, "Combination of optional parameters invalid.")
        picked = [t for t in rows if t.id >= from_id][:limit]
    else:
        start, end, forward = _window(e, params)
        window = [t for t in rows if start <= t.time <= end]
        picked = window[:limit] if forward else window[-limit:]
    return [wire.trade(t, inst) for t in picked]


def income(e: Engine, params: dict[str, str]) -> list[Json]:
    symbol = P.text(params, "symbol")
    if symbol is not None:
        e.instrument(symbol)
    kind = P.text(params, "incomeType")
    limit = _limit(params, 100)
    page = max(1, P.integer(params, "page") or 1)
    start, end = P.integer(params, "startTime"), P.integer(params, "endTime")
    end = e.now() if end is None else end
    begin = end - WEEK if start is None else start
    rows = [i for i in e.book.income
            if (symbol is None or i.symbol == symbol) and (kind is None or i.income_type == kind)
            and begin <= i.time <= end]
    offset = (page - 1) * limit
    picked = rows[offset:offset + limit] if start is not None else rows[-limit:]
    return [wire.income(i) for i in picked]


def all_orders(e: Engine, params: dict[str, str]) -> list[Json]:
    inst = e.instrument(P.text(params, "symbol", required=True))
    oid = P.integer(params, "orderId")
    limit = _limit(params, 500)
    rows = [o for o in e.orders.values() if o.symbol == inst.symbol]
    if oid is not None:
        picked = [o for o in rows if o.order_id >= oid][:limit]
    else:
        start, end, forward = _window(e, params)
        window = [o for o in rows if start <= o.time <= end]
        picked = window[:limit] if forward else window[-limit:]
    return [e.view(o, query=True) for o in picked]


def all_algo_orders(e: Engine, params: dict[str, str]) -> list[Json]:
    """trade/rest-api/Query-All-Algo-Orders: algo orders >= `algoId`, else the most recent."""
    inst = e.instrument(P.text(params, "symbol", required=True))
    aid = P.integer(params, "algoId")
    limit = _limit(params, 500)
    rows = [a for a in e.algo.algos.values() if a.symbol == inst.symbol]
    if aid is not None:
        picked = [a for a in rows if a.algo_id >= aid][:limit]
    else:
        start, end, forward = _window(e, params)
        window = [a for a in rows if start <= a.create_time <= end]
        picked = window[:limit] if forward else window[-limit:]
    return [e.algo.view(a) for a in picked]
