"""The simulated venue's orders: their records, and the rules an order must pass.

Hedge mode (`hedge_mode`, Binance's dualSidePosition): each perpetual symbol has a LONG
and a SHORT position, and an order names the side it trades: BUY LONG opens (or adds
to) the long, SELL LONG closes it, SELL SHORT opens the short, BUY SHORT closes it. A
closing order never flips a side; it fills at most what the side holds. The scripted
trader names the side. `events.orders.PlaceOrder` has none, so for the kernel's
commands it is derived (`position_side`): a reduce-only order closes (a SELL the LONG,
a BUY the SHORT), any other order opens (a BUY the LONG, a SELL the SHORT).

Rejection codes (Binance's error codes, named):

| code | when |
|---|---|
| UNKNOWN_SYMBOL | the symbol is not listed |
| DUPLICATE_CLIENT_ORDER_ID | an order with this client order id was accepted before |
| INVALID_ORDER | a price or trigger the order type does not take, or lacks |
| TICK_SIZE / LOT_SIZE | a price not on the tick grid / a quantity not a lot multiple |
| MIN_NOTIONAL | qty x price x contract size (qty x contract size, inverse) below the minimum |
| REDUCE_ONLY | reduce-only with no opposite position (or on spot); in hedge mode, an order
  that closes a side (SELL LONG, BUY SHORT) with no position on that side |
| POSITION_SIDE | a position side the account's mode does not take (LONG/SHORT in one-way
  mode or on spot, BOTH in hedge mode; Binance's -4061), or reduce-only on an opening side |
| POST_ONLY_WOULD_CROSS | a post-only limit that would take liquidity |
| WOULD_TRIGGER_IMMEDIATELY | a stop / take-profit whose trigger is already met |
| INSUFFICIENT_MARGIN | positions + working orders + this order need more than equity |
| INSUFFICIENT_BALANCE | a spot order the wallet cannot pay for |
| UNKNOWN_ORDER | cancel / amend of an order that is not open |
| QTY_BELOW_FILLED | an amendment to a quantity not above what has filled |
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from adapters.sim.config import SimInstrument
from kernel.money import ZERO, q18

if TYPE_CHECKING:
    from adapters.sim.engine import SimEngine

NEEDS_PRICE = frozenset({"limit", "stop_limit", "take_profit_limit"})
NEEDS_TRIGGER = frozenset({"stop", "take_profit", "stop_limit", "take_profit_limit"})
ORDER_TYPES = NEEDS_PRICE | NEEDS_TRIGGER | {"market"}


class Spec(Protocol):
    """What an order request must say; `events.orders.PlaceOrder` is one."""

    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def order_type(self) -> str: ...
    @property
    def qty(self) -> Decimal: ...
    @property
    def price(self) -> Decimal | None: ...
    @property
    def trigger_price(self) -> Decimal | None: ...
    @property
    def time_in_force(self) -> str: ...
    @property
    def reduce_only(self) -> bool: ...
    @property
    def post_only(self) -> bool: ...


@dataclass(frozen=True)
class Accepted:
    order_id: str


@dataclass(frozen=True)
class Rejected:
    code: str
    reason: str


@dataclass
class SimOrder:
    order_id: str
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    qty: Decimal
    price: Decimal | None
    trigger_price: Decimal | None
    time_in_force: str
    reduce_only: bool
    post_only: bool
    created_ns: int
    #: "both" in one-way mode; "long" / "short" in hedge mode (Binance's positionSide).
    position_side: str = "both"
    status: str = "new"
    filled_qty: Decimal = ZERO
    cost: Decimal = ZERO  # sum of qty x price over the fills
    triggered: bool = False

    def seq(self) -> int:
        return int(self.order_id)

    @property
    def closes(self) -> bool:
        """The order can only shrink a position: reduce-only in one-way mode; in hedge
        mode a SELL of the long side or a BUY of the short side."""
        return closes(self.side, self.position_side, self.reduce_only)

    @property
    def is_open(self) -> bool:
        return self.status in ("new", "partially_filled")

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def avg_fill_price(self) -> Decimal | None:
        return q18(self.cost / self.filled_qty) if self.filled_qty else None

    @property
    def is_live_limit(self) -> bool:
        """A limit order in the book: a plain limit, or a stop-limit that has triggered."""
        return self.price is not None and (self.trigger_price is None or self.triggered)


@dataclass(frozen=True)
class Fill:
    trade_id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: str
    #: As booked and reported (`rp`): rounded to the settlement asset's precision.
    realized: Decimal
    ts_ns: int
    position_side: str = "both"
    #: The realized PnL before that rounding.
    exact_realized: Decimal = ZERO


def closes(side: str, position_side: str, reduce_only: bool) -> bool:
    if position_side == "both":
        return reduce_only
    return (side == "sell") == (position_side == "long")


def crosses(side: str, limit: Decimal, price: Decimal) -> bool:
    """A limit at `limit` would take liquidity at market price `price`."""
    return limit >= price if side == "buy" else limit <= price


def triggers(order: SimOrder, price: Decimal) -> bool:
    assert order.trigger_price is not None
    stop = order.order_type in ("stop", "stop_limit")
    rising = (order.side == "buy") == stop  # a buy stop and a sell take-profit fire upwards
    return price >= order.trigger_price if rising else price <= order.trigger_price


def notional(inst: SimInstrument, qty: Decimal, price: Decimal) -> Decimal:
    """In the quote currency (USD for an inverse contract)."""
    if inst.kind == "inverse":
        return qty * inst.contract_size
    return qty * price * inst.contract_size


def margin(inst: SimInstrument, qty: Decimal, price: Decimal) -> Decimal:
    """Initial margin in the settlement asset."""
    if inst.kind == "inverse":
        return q18(qty * inst.contract_size / price / inst.leverage)
    return q18(qty * price * inst.contract_size / inst.leverage)


def fee(inst: SimInstrument, side: str, q: Decimal, px: Decimal, rate: Decimal) -> tuple[
    Decimal, str
]:
    """The fee and its currency: the settlement asset for perpetuals; on spot, what the
    account receives (the base coin when buying, the quote when selling)."""
    if inst.kind == "inverse":
        return q18(q * inst.contract_size / px * rate), inst.settle
    if inst.kind == "spot":
        return (q18(q * rate), inst.base) if side == "buy" else (q18(q * px * rate), inst.quote)
    return q18(q * px * inst.contract_size * rate), inst.settle


def _on_grid(x: Decimal, step: Decimal) -> bool:
    return x % step == 0


def position_side(eng: SimEngine, spec: Spec) -> str:
    """The side an order that names none trades: "both" in one-way mode and on spot; in
    hedge mode as the module docstring says."""
    inst = eng.instruments.get(spec.symbol)
    if not eng.config.hedge_mode or inst is None or inst.kind == "spot":
        return "both"
    return "long" if (spec.side == "buy") != spec.reduce_only else "short"


def check_place(eng: SimEngine, spec: Spec, cid: str, position_side: str) -> Rejected | None:
    """`position_side`: the side the order opens or closes ("both" in one-way mode)."""
    inst = eng.instruments.get(spec.symbol)
    if inst is None:
        return Rejected("UNKNOWN_SYMBOL", f"{spec.symbol!r} is not listed")
    if eng.order_by_cid(cid) is not None:
        return Rejected("DUPLICATE_CLIENT_ORDER_ID", f"client order id {cid!r} was used")
    hedged = eng.config.hedge_mode and inst.kind != "spot"
    if (position_side == "both") == hedged or position_side not in ("both", "long", "short"):
        mode = "hedge" if hedged else "one-way"
        return Rejected("POSITION_SIDE", f"position side {position_side!r} in {mode} mode")
    if hedged and spec.reduce_only and not closes(spec.side, position_side, False):
        return Rejected("POSITION_SIDE", f"reduce-only {spec.side} opens the {position_side}"
                                         " side")
    closing = closes(spec.side, position_side, spec.reduce_only)
    t = spec.order_type
    if (t not in ORDER_TYPES or (spec.price is None) == (t in NEEDS_PRICE)
            or (spec.trigger_price is None) == (t in NEEDS_TRIGGER)
            or spec.qty <= 0 or (spec.post_only and t != "limit")):
        return Rejected("INVALID_ORDER", f"malformed {t} order")
    for name, px in (("price", spec.price), ("trigger", spec.trigger_price)):
        if px is not None and (px <= 0 or not _on_grid(px, inst.tick_size)):
            return Rejected("TICK_SIZE", f"{name} {px} is not a multiple of {inst.tick_size}")
    if not _on_grid(spec.qty, inst.lot_size):
        return Rejected("LOT_SIZE", f"qty {spec.qty} is not a multiple of {inst.lot_size}")
    mark = eng.prices[spec.symbol]
    ref = spec.price or spec.trigger_price or mark
    if not closing and notional(inst, spec.qty, ref) < inst.min_notional:
        return Rejected("MIN_NOTIONAL", f"notional below {inst.min_notional}")
    if closing:
        pos = eng.account.qty(spec.symbol, position_side)
        if inst.kind == "spot" or pos == 0 or (pos > 0) == (spec.side == "buy"):
            where = "" if position_side == "both" else f" {position_side.upper()}"
            return Rejected("REDUCE_ONLY", f"no {spec.symbol}{where} position to reduce")
    if spec.post_only and spec.price is not None and crosses(spec.side, spec.price, mark):
        return Rejected("POST_ONLY_WOULD_CROSS", f"limit {spec.price} crosses {mark}")
    if spec.trigger_price is not None and triggers(_probe(spec), mark):
        return Rejected("WOULD_TRIGGER_IMMEDIATELY", f"trigger {spec.trigger_price} vs {mark}")
    return _check_funds(eng, inst, spec, ref, closing)


def _probe(spec: Spec) -> SimOrder:
    return SimOrder("0", "", spec.symbol, spec.side, spec.order_type, spec.qty, spec.price,
                    spec.trigger_price, spec.time_in_force, spec.reduce_only, spec.post_only, 0)


def _check_funds(
    eng: SimEngine, inst: SimInstrument, spec: Spec, ref: Decimal, closing: bool
) -> Rejected | None:
    working = [o for o in eng.open_orders() if eng.instruments[o.symbol].settle == inst.settle
               and not o.closes]
    if inst.kind == "spot":
        if spec.side == "buy":
            asset, need = inst.quote, spec.qty * ref
            held = sum((o.remaining * (o.price or o.trigger_price or ref) for o in working
                        if o.symbol == inst.symbol and o.side == "buy"), ZERO)
        else:
            asset, need = inst.base, spec.qty
            held = sum((o.remaining for o in working
                        if o.symbol == inst.symbol and o.side == "sell"), ZERO)
        if eng.account.wallets.get(asset, ZERO) - held < need:
            return Rejected("INSUFFICIENT_BALANCE", f"{asset} balance cannot pay for {need}")
        return None
    if closing:
        return None
    equity, used = eng.account.equity(inst.settle, eng.instruments, eng.prices)
    for o in working:
        i = eng.instruments[o.symbol]
        if i.kind != "spot":
            used += margin(i, o.remaining, o.price or o.trigger_price or eng.prices[o.symbol])
    need = margin(inst, spec.qty, ref)
    if used + need > equity:
        return Rejected("INSUFFICIENT_MARGIN", f"needs {need} {inst.settle}, "
                                               f"{equity - used} available")
    return None


def check_amend(
    eng: SimEngine, order: SimOrder, qty: Decimal | None, price: Decimal | None,
    trigger: Decimal | None,
) -> Rejected | None:
    inst = eng.instruments[order.symbol]
    if ((price is not None and order.price is None)
            or (trigger is not None and (order.trigger_price is None or order.triggered))
            or (qty is None and price is None and trigger is None)):
        return Rejected("INVALID_ORDER", f"cannot amend that of a {order.order_type} order")
    for name, px in (("price", price), ("trigger", trigger)):
        if px is not None and (px <= 0 or not _on_grid(px, inst.tick_size)):
            return Rejected("TICK_SIZE", f"{name} {px} is not a multiple of {inst.tick_size}")
    if qty is not None and (qty <= 0 or not _on_grid(qty, inst.lot_size)):
        return Rejected("LOT_SIZE", f"qty {qty} is not a multiple of {inst.lot_size}")
    if qty is not None and qty <= order.filled_qty:
        return Rejected("QTY_BELOW_FILLED", f"qty {qty} <= filled {order.filled_qty}")
    mark = eng.prices[order.symbol]
    if order.post_only and price is not None and crosses(order.side, price, mark):
        return Rejected("POST_ONLY_WOULD_CROSS", f"limit {price} crosses {mark}")
    if trigger is not None:
        probe = SimOrder("0", "", order.symbol, order.side, order.order_type, order.qty, None,
                         trigger, order.time_in_force, False, False, 0)
        if triggers(probe, mark):
            return Rejected("WOULD_TRIGGER_IMMEDIATELY", f"trigger {trigger} vs {mark}")
    return None


def executable(eng: SimEngine, order: SimOrder, q: Decimal, px: Decimal) -> Decimal:
    """How much of `q` may fill now: closing orders (reduce-only; in hedge mode, those
    that close a side) never grow or flip a position; spot orders never overdraw a
    wallet (sells round down to a lot)."""
    inst = eng.instruments[order.symbol]
    if order.closes:
        pos = eng.account.qty(order.symbol, order.position_side)
        if pos == 0 or (pos > 0) == (order.side == "buy"):
            return ZERO
        q = min(q, abs(pos))
    if inst.kind == "spot":
        wallets = eng.account.wallets
        if order.side == "sell":
            lots = (wallets.get(inst.base, ZERO) / inst.lot_size).to_integral_value("ROUND_FLOOR")
            q = min(q, lots * inst.lot_size)
        elif wallets.get(inst.quote, ZERO) < q * px:
            return ZERO
    return q
