"""Orders and algo (conditional) orders, and the parameter checks Binance applies to them.

Parameters arrive as the strings of a form-encoded request. The checks and their error codes
follow the New Order / New Algo Order / Modify Order pages
(https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/...)
and the USD-M error page: -1102 missing, -1111 too many decimals, -4014 off tick, -4023 off
step, -4004/-4005 quantity bounds, -4013 price below the minimum, -4016/-4024 PERCENT_PRICE,
-4164 MIN_NOTIONAL (waived for reduce-only), -4015 client id pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal as D
from decimal import InvalidOperation

from . import errors as E
from .book import ZERO
from .markets import Instrument

OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
# New Order page: newClientOrderId "^[\.A-Z\:/a-z0-9_-]{1,36}$"; clientAlgoId the same.
CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
REGULAR_TYPES = ("LIMIT", "MARKET")
CONDITIONAL_TYPES = ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                     "TRAILING_STOP_MARKET")
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "GTX", "GTD")


@dataclass
class Order:
    """A regular order in the matching engine (`/fapi/v1/order`)."""

    order_id: int
    symbol: str
    client_order_id: str
    side: str
    position_side: str
    type: str
    orig_type: str
    time_in_force: str
    price: D
    orig_qty: D
    reduce_only: bool
    time: int
    update_time: int
    stop_price: D = ZERO
    close_position: bool = False
    working_type: str = "CONTRACT_PRICE"
    price_protect: bool = False
    price_match: str = "NONE"
    stp_mode: str = "EXPIRE_MAKER"
    good_till_date: int = 0
    executed_qty: D = ZERO
    cum_quote: D = ZERO
    status: str = "NEW"
    expiry_reason: int = 0
    algo_id: int | None = None  # set when a triggered algo order created this order

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> D:
        return self.orig_qty - self.executed_qty

    @property
    def avg_price(self) -> D:
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO

    @property
    def signed(self) -> D:
        return D(1) if self.side == "BUY" else D(-1)


@dataclass
class AlgoOrder:
    """A conditional order held by the Algo Order service (`/fapi/v1/algoOrder`)."""

    algo_id: int
    client_algo_id: str
    symbol: str
    side: str
    position_side: str
    order_type: str
    time_in_force: str
    quantity: D
    trigger_price: D
    price: D
    reduce_only: bool
    close_position: bool
    create_time: int
    update_time: int
    working_type: str = "CONTRACT_PRICE"
    price_protect: bool = False
    price_match: str = "NONE"
    stp_mode: str = "EXPIRE_MAKER"
    activate_price: D | None = None
    callback_rate: D | None = None
    good_till_date: int = 0
    algo_status: str = "NEW"
    trigger_time: int = 0
    actual_order_id: int | None = None
    reject_reason: str = ""
    extreme: D | None = None  # trailing stops: best price seen since activation

    @property
    def is_open(self) -> bool:
        return self.algo_status in ("NEW", "TRIGGERING")


def text(params: dict[str, str], name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise E.mandatory_param(name)
        return None
    return value


def decimal(params: dict[str, str], name: str, *, required: bool = False) -> D | None:
    raw = text(params, name, required=required)
    if raw is None:
        return None
    try:
        value = D(raw)
    except InvalidOperation:
        raise E.invalid_parameter(name) from None
    if not value.is_finite():
        raise E.invalid_parameter(name)
    return value


def integer(params: dict[str, str], name: str) -> int | None:
    raw = text(params, name)
    if raw is None:
        return None
    if not re.fullmatch(r"-?\d{1,19}", raw):
        raise E.invalid_parameter(name)
    return int(raw)


def boolean(params: dict[str, str], name: str) -> bool | None:
    raw = text(params, name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise E.invalid_parameter(name)
    return raw.lower() == "true"


def client_id(params: dict[str, str], name: str) -> str | None:
    value = text(params, name)
    if value is not None and not CLIENT_ID.match(value):
        raise E.invalid_client_order_id()
    return value


def decimals_of(x: D) -> int:
    exponent = x.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def check_qty(inst: Instrument, qty: D, *, market: bool) -> None:
    if qty <= 0:
        raise E.qty_less_than_zero()
    if decimals_of(qty) > inst.qty_precision:
        raise E.bad_precision()
    if qty % inst.step != 0:
        raise E.qty_not_step()
    if qty < inst.min_qty:
        raise E.qty_less_than_min()
    if qty > (inst.market_max_qty if market else inst.max_qty):
        raise E.qty_greater_than_max()


def check_price(inst: Instrument, price: D, mark: D) -> None:
    """PRICE_FILTER and PERCENT_PRICE for a limit price (or a stop-limit's price)."""
    if price <= 0 or decimals_of(price) > inst.price_precision:
        raise E.bad_precision() if price > 0 else E.price_less_than_min()
    if price < inst.min_price:
        raise E.price_less_than_min()
    if price % inst.tick != 0:
        raise E.price_not_tick()
    if price > mark * inst.percent_up:
        raise E.price_greater_than_max()
    if price < mark * inst.percent_down:
        raise E.BinanceError(-4024, "Price is lower than mark price multiplier floor.")


def check_trigger(inst: Instrument, trigger: D) -> None:
    """A trigger price obeys the tick and precision, not PERCENT_PRICE."""
    if trigger <= 0:
        raise E.price_less_than_min()
    if decimals_of(trigger) > inst.price_precision:
        raise E.bad_precision()
    if trigger % inst.tick != 0:
        raise E.price_not_tick()


def check_notional(inst: Instrument, qty: D, price: D, *, reduce_only: bool) -> None:
    if not reduce_only and qty * price < inst.min_notional:
        raise E.min_notional(format(inst.min_notional.normalize(), "f"))


def side_of(params: dict[str, str]) -> str:
    side = text(params, "side", required=True)
    if side not in ("BUY", "SELL"):
        raise E.invalid_side()
    return side


def position_side_of(params: dict[str, str], *, hedge: bool) -> str:
    """`positionSide` must be BOTH (or absent) in one-way mode and LONG/SHORT in hedge mode."""
    ps = text(params, "positionSide")
    if hedge:
        if ps not in ("LONG", "SHORT"):
            raise E.position_side_not_match()
        return ps
    if ps not in (None, "BOTH"):
        raise E.position_side_not_match()
    return "BOTH"


def closes(side: str, position_side: str) -> bool:
    """In hedge mode, SELL on LONG and BUY on SHORT close; the rest open."""
    return (side, position_side) in (("SELL", "LONG"), ("BUY", "SHORT"))
