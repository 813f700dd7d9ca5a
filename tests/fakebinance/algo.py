"""The Algo Order service: conditional (stop, take-profit, trailing) orders.

Since Binance moved conditional orders off `/fapi/v1/order` (which now answers -4120 for
them), they live at `/fapi/v1/algoOrder` (trade/rest-api/New-Algo-Order, Query-Algo-Order,
Cancel-Algo-Order, Current-All-Algo-Open-Orders), and ccxt 4.5.90 sends every order with a
trigger price there (binance.create_order: `fapiPrivatePostAlgoOrder` with
`algoType=CONDITIONAL`). Their lifecycle is pushed as `ALGO_UPDATE`
(user-data-streams/Event-Algo-Order-Update): NEW, then TRIGGERING and TRIGGERED when the
condition is met, and FINISHED once the order it placed in the matching engine is done (or
CANCELED / REJECTED). The triggered order is a regular order with a new `orderId`, the algo
order's `clientAlgoId` as its `clientOrderId`, `ot` = the conditional type, and it carries the
fills: one client id, two orders.

Trigger conditions (New-Algo-Order notes), evaluated against the fake's one price, the mark,
whatever the `workingType`: STOP*/BUY when price >= trigger, STOP*/SELL when price <= trigger,
TAKE_PROFIT*/BUY when price <= trigger, TAKE_PROFIT*/SELL when price >= trigger; trailing
stops after activation when price retraces `callbackRate` percent from the extreme. An order
whose condition already holds at placement is refused with -2021.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import TYPE_CHECKING, Any

from . import errors as E
from . import orders as P
from . import wire
from .book import ZERO
from .orders import AlgoOrder, Order

if TYPE_CHECKING:
    from .engine import Engine

Json = dict[str, Any]


def condition_met(a: AlgoOrder, price: D) -> bool:
    if a.order_type in ("STOP", "STOP_MARKET"):
        return price >= a.trigger_price if a.side == "BUY" else price <= a.trigger_price
    if a.order_type in ("TAKE_PROFIT", "TAKE_PROFIT_MARKET"):
        return price <= a.trigger_price if a.side == "BUY" else price >= a.trigger_price
    return False


class AlgoDesk:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.algos: dict[int, AlgoOrder] = {}
        self._next = 2_000_000 + engine.rng.randrange(1_000_000) * 10

    def open(self, symbol: str | None = None) -> list[AlgoOrder]:
        return [a for a in self.algos.values()
                if a.is_open and (symbol is None or a.symbol == symbol)]

    def place(self, params: dict[str, str]) -> Json:
        e = self.engine
        if P.text(params, "algoType", required=True) != "CONDITIONAL":
            raise E.invalid_parameter("algoType")
        inst = e.instrument(P.text(params, "symbol", required=True))
        otype = P.text(params, "type", required=True)
        if otype not in P.CONDITIONAL_TYPES:
            raise E.invalid_order_type()
        side = P.side_of(params)
        ps = P.position_side_of(params, hedge=e.hedge)
        reduce_only = P.boolean(params, "reduceOnly")
        if reduce_only is not None and e.hedge:
            raise E.param_not_required("reduceOnly")
        close_position = bool(P.boolean(params, "closePosition"))
        cid = P.client_id(params, "clientAlgoId") or e.random_client_id()
        if any(a.client_algo_id == cid for a in self.open()):
            raise E.duplicated_client_order_id()
        mark = e.marks[inst.symbol]
        qty = P.decimal(params, "quantity")
        if close_position:
            if qty is not None:
                raise E.param_not_required("quantity")
            qty = ZERO
        elif qty is None:
            raise E.mandatory_param("quantity")
        else:
            P.check_qty(inst, qty, market=otype != "STOP" and otype != "TAKE_PROFIT")
        trailing = otype == "TRAILING_STOP_MARKET"
        trigger = P.decimal(params, "triggerPrice", required=not trailing) or ZERO
        if not trailing:
            P.check_trigger(inst, trigger)
        price = ZERO
        if otype in ("STOP", "TAKE_PROFIT"):
            price = P.decimal(params, "price", required=True) or ZERO
            P.check_price(inst, price, mark)
        activate = P.decimal(params, "activatePrice")
        callback = P.decimal(params, "callbackRate", required=trailing)
        if trailing and (callback is None or not D("0.1") <= callback <= D(10)):
            raise E.invalid_parameter("callbackRate")
        reduce = bool(reduce_only) or close_position or (e.hedge and P.closes(side, ps))
        P.check_notional(inst, qty, price or trigger or mark, reduce_only=reduce)
        now = e.now()
        self._next += 1
        a = AlgoOrder(algo_id=self._next, client_algo_id=cid, symbol=inst.symbol, side=side,
                      position_side=ps, order_type=otype,
                      time_in_force=P.text(params, "timeInForce") or "GTC", quantity=qty,
                      trigger_price=trigger, price=price, reduce_only=bool(reduce_only),
                      close_position=close_position, create_time=now, update_time=now,
                      working_type=P.text(params, "workingType") or "CONTRACT_PRICE",
                      price_protect=bool(P.boolean(params, "priceProtect")),
                      activate_price=activate, callback_rate=callback)
        if self._immediate(a, mark):
            raise E.would_immediately_trigger()
        self.algos[a.algo_id] = a
        self._push(a)
        return wire.algo(a, inst)

    def find(self, params: dict[str, str], *, missing: E.BinanceError) -> AlgoOrder:
        aid = P.integer(params, "algoId")
        cid = P.text(params, "clientAlgoId")
        if aid is None and cid is None:
            raise E.one_of_params("algoId", "clientAlgoId")
        for a in reversed(list(self.algos.values())):
            if (a.algo_id == aid) if aid is not None else (a.client_algo_id == cid):
                return a
        raise missing

    def cancel(self, params: dict[str, str]) -> Json:
        a = self.find(params, missing=E.unknown_order_sent())
        if not a.is_open:
            raise E.unknown_order_sent()
        a.algo_status, a.update_time = "CANCELED", self.engine.now()
        self._push(a)
        return {"algoId": a.algo_id, "clientAlgoId": a.client_algo_id, "code": "200",
                "msg": "success"}

    def query(self, params: dict[str, str]) -> Json:
        return self.view(self.find(params, missing=E.order_does_not_exist()))

    def view(self, a: AlgoOrder) -> Json:
        actual = self.engine.orders.get(a.actual_order_id) if a.actual_order_id else None
        return wire.algo(a, self.engine.instruments[a.symbol], query=True,
                         actual_price=actual.avg_price if actual else ZERO)

    # --- triggering ---------------------------------------------------------------------------

    def _immediate(self, a: AlgoOrder, mark: D) -> bool:
        if a.order_type != "TRAILING_STOP_MARKET":
            return condition_met(a, mark)
        if a.activate_price is None:
            return False
        # New-Algo-Order: a BUY's activatePrice must be below the price, a SELL's above it.
        return a.activate_price >= mark if a.side == "BUY" else a.activate_price <= mark

    def _trailing_fires(self, a: AlgoOrder, price: D) -> bool:
        assert a.callback_rate is not None
        if a.extreme is None:
            active = a.activate_price is None or (
                price <= a.activate_price if a.side == "BUY" else price >= a.activate_price)
            if not active:
                return False
            a.extreme = price
        a.extreme = min(a.extreme, price) if a.side == "BUY" else max(a.extreme, price)
        ratio = a.callback_rate / 100
        if a.side == "BUY":
            return price >= a.extreme * (1 + ratio)
        return price <= a.extreme * (1 - ratio)

    def on_mark(self, symbol: str, price: D) -> None:
        for a in sorted(self.open(symbol), key=lambda a: a.create_time):
            fires = (self._trailing_fires(a, price) if a.order_type == "TRAILING_STOP_MARKET"
                     else condition_met(a, price))
            if fires:
                self._trigger(a)

    def _trigger(self, a: AlgoOrder) -> None:
        e = self.engine
        now = e.now()
        a.algo_status, a.trigger_time, a.update_time = "TRIGGERING", now, now
        self._push(a)
        limit = a.order_type in ("STOP", "TAKE_PROFIT")
        pos = e.book.position(a.symbol, a.position_side)
        qty = abs(pos.amount) if a.close_position else a.quantity
        reduce = a.reduce_only or a.close_position
        try:
            if qty == 0:
                raise E.reduce_only_rejected()
            mark = e.marks[a.symbol]
            e._check_reduce(a.symbol, a.side, a.position_side, qty,
                            reduce or (e.hedge and P.closes(a.side, a.position_side)),
                            hedge_close=e.hedge)
            e._check_margin(a.symbol, a.side, a.position_side, qty, a.price if limit else mark,
                            reduce)
        except E.BinanceError as err:
            a.algo_status, a.reject_reason = "REJECTED", err.msg
            self._push(a)
            return
        o = Order(order_id=e.new_order_id(), symbol=a.symbol, client_order_id=a.client_algo_id,
                  side=a.side, position_side=a.position_side,
                  type="LIMIT" if limit else "MARKET", orig_type=a.order_type,
                  time_in_force=a.time_in_force if limit else "GTC",
                  price=a.price if limit else ZERO, orig_qty=qty, reduce_only=reduce,
                  time=now, update_time=now, stop_price=a.trigger_price,
                  close_position=a.close_position, working_type=a.working_type,
                  algo_id=a.algo_id)
        a.actual_order_id, a.algo_status = o.order_id, "TRIGGERED"
        self._push(a)
        e.accept(o)

    def on_order_done(self, o: Order) -> None:
        """The order a triggered algo order placed is done: the algo order is FINISHED."""
        if o.algo_id is None:
            return
        a = self.algos[o.algo_id]
        if a.algo_status == "TRIGGERED":
            a.algo_status, a.update_time = "FINISHED", self.engine.now()
            self._push(a, actual=o)

    def _push(self, a: AlgoOrder, actual: Order | None = None) -> None:
        e = self.engine
        e.user_events.append(wire.algo_update(a, e.instruments[a.symbol], now=e.now(),
                                              actual=actual))
