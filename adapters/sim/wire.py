"""The simulated venue's wire format: raw dicts shaped like Binance USD-M streams.

What the engine pushes, and what `adapters.sim.parse` turns into events:

* `ORDER_TRADE_UPDATE` (user data): one order's new state; with `"x": "TRADE"` it also
  carries one execution (`l` qty, `L` price, `n`/`N` fee, `t` trade id, `m` maker,
  `rp` realized profit). `ps` is the position side, `BOTH` in one-way mode, `LONG` or
  `SHORT` in hedge mode. Order ids are integers, decimals are strings, times are ms.
* `ACCOUNT_UPDATE` (user data), by reason `a.m`: `FUNDING_FEE` is one funding payment
  (`B[0].bc` the signed amount, `P[0].s` the symbol and `P[0].ps` the side it was paid
  on, sim extension `a.tid` the payment's id, Binance's income `tranId`); `DEPOSIT` /
  `WITHDRAW` is one transfer (`B[0].bc`, sim extension `a.tid` the transfer id); any
  other reason (`ORDER`, `SNAPSHOT`) is a *complete* report of every wallet and every
  open position (in hedge mode a symbol may have a `LONG` and a `SHORT` entry), with sim
  extensions `P[].mp` (mark), `P[].l` (leverage), `P[].notional` (the venue's own open
  notional, signed like the quantity), `a.M` (account margin: `im` used, `ab`
  available) and `a.MA` (the same per settlement asset, like the REST account's
  `assets[].initialMargin`), taken from Binance's REST account and positionRisk shapes.
* `markPriceUpdate` (market stream): mark `p`, funding rate `r`, next funding time `T`.
* `ACCOUNT_CONFIG_UPDATE`: leverage `ac.l` of symbol `ac.s`.
* `EXCHANGE_INFO` (sim extension, pushed at start): `symbols`, the REST exchangeInfo
  entries (`contractType` is `PERPETUAL`, `INVERSE_PERPETUAL` or `SPOT`), and `assets`,
  each asset's `precision` (decimal places) and `rounding` (`HALF_EVEN`, `HALF_UP`,
  `DOWN`).

Amounts of money are written at the asset's precision, as Binance writes them
(`"wb": "94.91018561"`, `"rp": "0.02400000"`, `"income": "-0.37500000"`: 8 places for
USDT; see the ACCOUNT_UPDATE examples in Binance's 2020 user-data-stream upgrade notes,
https://dev.binance.vision/t/838, and GET /fapi/v1/income in the USD-M futures docs).
Prices, quantities, entry prices, notional and unrealized PnL keep their own digits.
Hedge-mode positions follow those same examples: one symbol reported twice, `"ps":
"LONG"` with `pa` >= 0 and `"ps": "SHORT"` with `pa` <= 0.

Spot orders use the same `ORDER_TRADE_UPDATE` shape (the sim has one user-data stream).
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from adapters.sim.account import Account, value
from adapters.sim.config import SimInstrument
from kernel import money
from kernel.money import q18

if TYPE_CHECKING:
    from adapters.sim.orders import Fill, SimOrder

Msg = dict[str, Any]

NS_PER_MS = 1_000_000

ORDER_TYPES = {
    "market": "MARKET",
    "limit": "LIMIT",
    "stop": "STOP_MARKET",
    "take_profit": "TAKE_PROFIT_MARKET",
    "stop_limit": "STOP",
    "take_profit_limit": "TAKE_PROFIT",
}
STATUSES = {
    "new": "NEW",
    "partially_filled": "PARTIALLY_FILLED",
    "filled": "FILLED",
    "canceled": "CANCELED",
    "expired": "EXPIRED",
    "rejected": "REJECTED",
}
CONTRACT_TYPES = {"linear": "PERPETUAL", "inverse": "INVERSE_PERPETUAL", "spot": "SPOT"}
POSITION_SIDES = {"both": "BOTH", "long": "LONG", "short": "SHORT"}
ROUNDINGS = {"half_even": "HALF_EVEN", "half_up": "HALF_UP", "down": "DOWN"}
#: `ACCOUNT_UPDATE` reasons that carry one cash movement rather than a full report.
FUNDING_REASON = "FUNDING_FEE"
TRANSFER_REASONS = ("DEPOSIT", "WITHDRAW")


def ms(ns: int) -> int:
    return ns // NS_PER_MS


def num(d: Decimal | None) -> str:
    """A decimal as Binance writes it: plain digits, `"0"` for an absent price.

    Rounded half-even to 18 places, the most an event may carry: the venue's own books
    keep more (a realized PnL is an 18-place average price times a quantity).
    """
    if d is None:
        return "0"
    with decimal.localcontext(prec=money.PRECISION):
        return f"{q18(d):f}"


def order_fields(order: SimOrder) -> Msg:
    """The `o` object of an `ORDER_TRADE_UPDATE` without an execution."""
    return {
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side.upper(),
        "o": ORDER_TYPES[order.order_type],
        "ot": ORDER_TYPES[order.order_type],
        "f": "GTX" if order.post_only else order.time_in_force,
        "q": num(order.qty),
        "p": num(order.price),
        "ap": num(order.avg_fill_price),
        "sp": num(order.trigger_price),
        "x": "NEW",
        "X": STATUSES[order.status],
        "i": int(order.order_id),
        "l": "0",
        "z": num(order.filled_qty),
        "L": "0",
        "T": 0,
        "t": 0,
        "m": False,
        "R": order.reduce_only,
        "ps": POSITION_SIDES[order.position_side],
        "rp": "0",
    }


def order_update(order: SimOrder, now_ns: int, execution: str, fill: Fill | None = None) -> Msg:
    """An `ORDER_TRADE_UPDATE`; `execution` is Binance's `x` (NEW, TRADE, CANCELED, ...)."""
    o = order_fields(order)
    o["x"] = execution
    o["T"] = ms(now_ns)
    if fill is not None:
        o.update(
            l=num(fill.qty), L=num(fill.price), N=fill.fee_currency, n=num(fill.fee),
            t=int(fill.trade_id), m=fill.liquidity == "maker", rp=num(fill.realized),
        )
    return {"e": "ORDER_TRADE_UPDATE", "E": ms(now_ns), "T": ms(now_ns), "o": o}


def account_report(
    now_ns: int,
    reason: str,
    account: Account,
    instruments: tuple[SimInstrument, ...],
    marks: dict[str, Decimal],
) -> Msg:
    """A complete `ACCOUNT_UPDATE`: every wallet and every open position, at `marks`; the
    margin summary is in the first perpetual's settlement asset, and `MA` has one entry
    per settlement asset of the perpetuals."""
    by_symbol = {i.symbol: i for i in instruments}
    positions = []
    for _, h in sorted(account.positions.items()):
        inst, mark = by_symbol[h.symbol], marks[h.symbol]
        v = value(h, inst, mark, inst.leverage)
        signed = v.notional if h.qty > 0 else -v.notional
        positions.append(position_fields(h.symbol, h.side, h.qty, h.avg, mark, v.unrealized,
                                         inst.leverage, signed))
    a: Msg = {
        "m": reason,
        "B": [{"a": asset, "wb": num(w), "cw": num(w), "bc": "0"}
              for asset, w in sorted(account.wallets.items())],
        "P": positions,
    }
    settles = list(dict.fromkeys(i.settle for i in instruments if i.kind != "spot"))
    if settles:
        equity, used = account.equity(settles[0], by_symbol, marks)
        a["M"] = {"a": settles[0], "im": num(used), "ab": num(equity - used)}
    more = []
    for asset in settles[1:]:
        equity, used = account.equity(asset, by_symbol, marks)
        more.append({"a": asset, "im": num(used), "ab": num(equity - used)})
    if more:
        a["MA"] = more
    return {"e": "ACCOUNT_UPDATE", "E": ms(now_ns), "T": ms(now_ns), "a": a}


def drift(msg: Msg, instruments: tuple[SimInstrument, ...], wallet: Decimal, lots: int
          ) -> None:
    """Make a complete account report disagree with the venue's books (`SimDrift`): the
    first settlement asset's wallet off by `wallet`, each position off by `lots` lots."""
    a = msg["a"]
    settles = [i.settle for i in instruments if i.kind != "spot"]
    for b in a["B"]:
        if settles and b["a"] == settles[0]:
            b["wb"] = b["cw"] = num(Decimal(b["wb"]) + wallet)
    lot = {i.symbol: i.lot_size for i in instruments}
    for p in a["P"]:
        qty = Decimal(p["pa"])
        p["pa"] = num(qty + lots * lot[p["s"]] * (1 if qty > 0 else -1))


def position_fields(
    symbol: str, side: str, qty: Decimal, entry: Decimal, mark: Decimal,
    unrealized: Decimal, leverage: Decimal, notional: Decimal,
) -> Msg:
    return {"s": symbol, "pa": num(qty), "ep": num(entry), "up": num(unrealized),
            "mt": "cross", "iw": "0", "ps": POSITION_SIDES[side], "mp": num(mark),
            "l": num(leverage), "notional": num(notional)}


def funding(
    now_ns: int, symbol: str, asset: str, amount: Decimal, rate: Decimal, wallet: Decimal,
    qty: Decimal, side: str = "both", funding_id: str | None = None,
) -> Msg:
    a: Msg = {
        "m": FUNDING_REASON,
        "r": num(rate),
        "B": [{"a": asset, "wb": num(wallet), "cw": num(wallet), "bc": num(amount)}],
        "P": [{"s": symbol, "pa": num(qty), "ps": POSITION_SIDES[side]}],
    }
    if funding_id is not None:
        a["tid"] = int(funding_id)  # an integer, as Binance USD-M's income `tranId`
    return {"e": "ACCOUNT_UPDATE", "E": ms(now_ns), "T": ms(now_ns), "a": a}


def transfer(
    now_ns: int, transfer_id: str, asset: str, amount: Decimal, wallet: Decimal
) -> Msg:
    """A deposit (`amount` > 0) or a withdrawal (< 0)."""
    a: Msg = {
        "m": "DEPOSIT" if amount > 0 else "WITHDRAW",
        "tid": transfer_id,
        "B": [{"a": asset, "wb": num(wallet), "cw": num(wallet), "bc": num(amount)}],
        "P": [],
    }
    return {"e": "ACCOUNT_UPDATE", "E": ms(now_ns), "T": ms(now_ns), "a": a}


def mark_price(
    now_ns: int, symbol: str, price: Decimal, rate: Decimal, next_funding_ns: int
) -> Msg:
    return {"e": "markPriceUpdate", "E": ms(now_ns), "s": symbol, "p": num(price),
            "i": num(price), "P": num(price), "r": num(rate), "T": ms(next_funding_ns)}


def leverage(now_ns: int, symbol: str, lev: Decimal) -> Msg:
    return {"e": "ACCOUNT_CONFIG_UPDATE", "E": ms(now_ns), "T": ms(now_ns),
            "ac": {"s": symbol, "l": num(lev)}}


def exchange_info(now_ns: int, inst: SimInstrument) -> Msg:
    entry: Msg = {
        "symbol": inst.symbol,
        "contractType": CONTRACT_TYPES[inst.kind],
        "baseAsset": inst.base,
        "quoteAsset": inst.quote,
        "marginAsset": inst.settle,
        "contractSize": num(inst.contract_size),
        "filters": [
            {"filterType": "PRICE_FILTER", "tickSize": num(inst.tick_size)},
            {"filterType": "LOT_SIZE", "stepSize": num(inst.lot_size)},
            {"filterType": "MIN_NOTIONAL", "notional": num(inst.min_notional)},
        ],
    }
    return {"e": "EXCHANGE_INFO", "E": ms(now_ns), "symbols": [entry]}


def asset_info(now_ns: int, assets: list[tuple[str, int, str]]) -> Msg:
    """The venue's (asset, decimal places, rounding) of each asset it keeps money in."""
    return {"e": "EXCHANGE_INFO", "E": ms(now_ns), "symbols": [],
            "assets": [{"asset": a, "precision": p, "rounding": ROUNDINGS[r]}
                       for a, p, r in assets]}


def is_report(msg: Msg) -> bool:
    """A complete balance-and-positions report (what `stale_reports` delays)."""
    if msg.get("e") != "ACCOUNT_UPDATE":
        return False
    reason = msg.get("a", {}).get("m")
    return reason != FUNDING_REASON and reason not in TRANSFER_REASONS
