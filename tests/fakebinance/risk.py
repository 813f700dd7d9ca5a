"""Margin arithmetic for a single-asset, cross-margined USD-M account.

A simplified form of Binance's rules, stated so a test can predict it:
* position initial margin = |notional at mark| / leverage;
* maintenance margin = |notional| * mmr - cum of the notional's bracket (never below zero);
* an open order's initial margin = the quantity it would *open* (beyond the opposite position
  it first closes; reduce-only orders open nothing) * its price (mark for a market order) /
  leverage;
* available balance = wallet + unrealized PnL - position IM - open-order IM, per margin asset.
A new order is refused with -2019 when its own initial margin exceeds the available balance.
Binance also charges an estimated fee and uses the worse of price and mark for the order's
margin; the fake does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal as D

from .book import ZERO, Book, Position
from .markets import Instrument
from .orders import Order


@dataclass(frozen=True)
class AssetRisk:
    asset: str
    wallet: D
    unrealized: D
    position_im: D
    open_order_im: D
    maint: D

    @property
    def margin_balance(self) -> D:
        return self.wallet + self.unrealized

    @property
    def initial(self) -> D:
        return self.position_im + self.open_order_im

    @property
    def available(self) -> D:
        return self.margin_balance - self.initial

    @property
    def max_withdraw(self) -> D:
        return max(ZERO, min(self.wallet, self.available))


def position_im(p: Position, mark: D, leverage: int) -> D:
    return abs(p.notional(mark)) / leverage


def position_mm(p: Position, inst: Instrument, mark: D) -> D:
    notional = abs(p.notional(mark))
    b = inst.bracket_for(notional)
    return max(ZERO, notional * b.mmr - b.cum)


def opening_qty(order_side: str, qty: D, position: Position, *, hedge: bool,
                reduce_only: bool) -> D:
    """How much of `qty` would open or extend a position rather than close one."""
    if reduce_only:
        return ZERO
    if hedge:
        closing = (order_side == "SELL") == (position.side == "LONG")
        return ZERO if closing else qty
    signed = qty if order_side == "BUY" else -qty
    if position.amount == 0 or (position.amount > 0) == (signed > 0):
        return qty
    return max(ZERO, qty - abs(position.amount))


def order_im(o: Order, book: Book, mark: D, leverage: int, *, hedge: bool) -> D:
    p = book.position(o.symbol, o.position_side)
    opening = opening_qty(o.side, o.remaining, p, hedge=hedge, reduce_only=o.reduce_only)
    price = o.price if o.type == "LIMIT" else mark
    return opening * price / leverage


def asset_risk(asset: str, book: Book, instruments: Mapping[str, Instrument],
               marks: Mapping[str, D], leverage: Mapping[str, int], orders: Iterable[Order],
               *, hedge: bool) -> AssetRisk:
    unrealized = pim = mm = oim = ZERO
    for p in book.open_positions():
        inst = instruments[p.symbol]
        if inst.margin_asset != asset:
            continue
        mark = marks[p.symbol]
        unrealized += p.unrealized(mark)
        pim += position_im(p, mark, leverage[p.symbol])
        mm += position_mm(p, inst, mark)
    for o in orders:
        if o.is_open and instruments[o.symbol].margin_asset == asset:
            oim += order_im(o, book, marks[o.symbol], leverage[o.symbol], hedge=hedge)
    return AssetRisk(asset, book.wallet.get(asset, ZERO), unrealized, pim, oim, mm)
