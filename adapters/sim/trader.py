"""The scripted trader: a client trading the simulated account on its own, so that the
ledger has fills before any strategy exists.

Each turn it places one order in a random symbol: a market order, or (half the time) a
GTC limit 1-20 ticks on the passive side of the price, for 1..`max_qty_lots` lots
(raised to the minimum notional). It keeps at most `MAX_WORKING` limit orders working by
canceling its oldest. Its client order ids are `sim-trader-N`. Rejections (a spot sell
with nothing to sell, a margin call) are part of the show and are not retried.

In hedge mode it also picks the position side of a perpetual order, LONG or SHORT, so
both sides of a symbol are held at once; a closing order (SELL LONG, BUY SHORT) is for
at most what the side holds, and one that would find the side flat opens it instead.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from adapters.sim.config import SimTrader

if TYPE_CHECKING:
    from adapters.sim.engine import SimEngine

MAX_WORKING = 5
PREFIX = "sim-trader-"


@dataclass(frozen=True)
class OrderRequest:
    """An order as the engine takes it (the fields of `events.orders.PlaceOrder`)."""

    symbol: str
    side: str
    order_type: str
    qty: Decimal
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    time_in_force: str = "GTC"
    reduce_only: bool = False
    post_only: bool = False
    #: "long" / "short" in hedge mode; None lets the engine derive it.
    position_side: str | None = None


class Trader:
    def __init__(self, config: SimTrader, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self._n = 0

    def act(self, eng: SimEngine, t: int) -> None:
        rng = self._rng
        inst = rng.choice(list(eng.instruments.values()))
        price = eng.prices[inst.symbol]
        side = rng.choice(("buy", "sell"))
        unit = inst.lot_size * inst.contract_size * (1 if inst.kind == "inverse" else price)
        least = math.ceil(inst.min_notional / unit)
        qty = max(rng.randint(1, self.config.max_qty_lots), least) * inst.lot_size
        position_side = None
        if eng.config.hedge_mode and inst.kind != "spot":
            position_side = rng.choice(("long", "short"))
            held = abs(eng.account.qty(inst.symbol, position_side))
            closing = (side == "sell") == (position_side == "long")
            if closing and held == 0:
                side = "buy" if side == "sell" else "sell"  # nothing to close: open it
            elif closing:
                qty = min(qty, held)
        if rng.random() < 0.5:
            req = OrderRequest(symbol=inst.symbol, side=side, order_type="market", qty=qty,
                               position_side=position_side)
        else:
            offset = rng.randint(1, 20) * inst.tick_size
            limit = price - offset if side == "buy" else price + offset
            if limit <= 0:
                return
            req = OrderRequest(symbol=inst.symbol, side=side, order_type="limit", qty=qty,
                               price=limit, position_side=position_side)
        self._n += 1
        eng.submit(req, f"{PREFIX}{self._n}", t, req.position_side)
        mine = [o for o in eng.open_orders() if o.client_order_id.startswith(PREFIX)]
        for o in mine[: max(len(mine) - MAX_WORKING, 0)]:
            eng.withdraw(o.client_order_id, o.symbol, t)
