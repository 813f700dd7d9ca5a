"""The matching engine of one account: orders in, fills and stream events out. No I/O.

Every method is synchronous and deterministic given the seed and the clock; what the venue
would push on the user data stream is appended to `user_events`, mark-price pushes to
`market_events`, for the server to deliver (a sans-I/O core, like websockets' protocol).

Matching is against the mark price, the fake's only price: a market order fills at the mark
(in `market_fill_parts` pieces, as taker); a limit order that crosses the mark fills at the
mark as taker, one that does not rests; a resting limit fills at its own price, as maker, when
the mark reaches it (`set_mark`) or when a test plays the counterparty (`fill_resting`).
Stop and take-profit orders live in the Algo Order service (`algo.py`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal as D
from typing import Any

from . import errors as E
from . import orders as P
from . import wire
from .book import ZERO, Book, Income, Trade, q8
from .clock import VenueClock
from .markets import Instrument
from .orders import Order
from .risk import AssetRisk, asset_risk, opening_qty

Json = dict[str, Any]
EIGHT_HOURS = 8 * 3600 * 1000


@dataclass
class EngineConfig:
    """The account the fake starts with. Fees are Binance's VIP 0 USD-M rates."""

    wallet: dict[str, D] = field(default_factory=lambda: {"USDT": D("10000")})
    hedge_mode: bool = False
    maker_fee: D = D("0.0002")
    taker_fee: D = D("0.0005")
    funding_rate: D = D("0.00010000")
    market_fill_parts: int = 1


class Engine:
    def __init__(self, config: EngineConfig, instruments: dict[str, Instrument],
                 clock: VenueClock, seed: int = 0) -> None:
        from .algo import AlgoDesk  # algo.py drives this engine; import here, not at the top

        self.config = config
        self.instruments = instruments
        self.clock = clock
        self.rng = random.Random(seed)
        self.book = Book(wallet=dict(config.wallet))
        self.hedge = config.hedge_mode
        self.marks = {s: i.mark for s, i in instruments.items()}
        self.funding_rates = {s: config.funding_rate for s in instruments}
        self.leverage = {s: i.default_leverage for s, i in instruments.items()}
        self.orders: dict[int, Order] = {}
        self.user_events: list[Json] = []
        self.market_events: list[tuple[str, Json]] = []
        self._next_order = 4_000_000_000 + self.rng.randrange(1_000_000) * 1000
        self._next_trade = 300_000_000 + self.rng.randrange(1_000_000) * 100
        self._next_tran = 9_000_000_000 + self.rng.randrange(1_000_000) * 1000
        self.algo = AlgoDesk(self)

    # --- lookups ------------------------------------------------------------------------------

    def instrument(self, symbol: str | None) -> Instrument:
        if symbol is None:
            raise E.mandatory_param("symbol")
        if symbol not in self.instruments:
            raise E.bad_symbol()
        return self.instruments[symbol]

    def now(self) -> int:
        return self.clock.now_ms()

    def new_order_id(self) -> int:
        self._next_order += 1
        return self._next_order

    def new_tran_id(self) -> int:
        self._next_tran += 1
        return self._next_tran

    def find(self, params: dict[str, str], *, missing: E.BinanceError) -> Order:
        """The order named by `orderId` (preferred) or `origClientOrderId`, latest first."""
        inst = self.instrument(P.text(params, "symbol", required=True))
        oid = P.integer(params, "orderId")
        cid = P.text(params, "origClientOrderId")
        if oid is None and cid is None:
            raise E.one_of_params("orderId", "origClientOrderId")
        for o in reversed(list(self.orders.values())):
            if o.symbol == inst.symbol and (o.order_id == oid if oid is not None
                                            else o.client_order_id == cid):
                return o
        raise missing

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values()
                if o.is_open and (symbol is None or o.symbol == symbol)]

    def risk(self, asset: str = "USDT") -> AssetRisk:
        return asset_risk(asset, self.book, self.instruments, self.marks, self.leverage,
                          self.orders.values(), hedge=self.hedge)

    def next_funding_time(self) -> int:
        return (self.now() // EIGHT_HOURS + 1) * EIGHT_HOURS

    # --- commands -----------------------------------------------------------------------------

    def place(self, params: dict[str, str]) -> Json:
        """`POST /fapi/v1/order`: validate, accept (push NEW), match; return the response."""
        inst = self.instrument(P.text(params, "symbol", required=True))
        otype = P.text(params, "type", required=True)
        if otype in P.CONDITIONAL_TYPES:
            raise E.use_algo_endpoint()
        if otype not in P.REGULAR_TYPES:
            raise E.invalid_order_type()
        side = P.side_of(params)
        ps = P.position_side_of(params, hedge=self.hedge)
        reduce_only = P.boolean(params, "reduceOnly")
        if reduce_only is not None and self.hedge:
            raise E.param_not_required("reduceOnly")
        cid = P.client_id(params, "newClientOrderId") or self.random_client_id()
        if any(o.client_order_id == cid for o in self.open_orders()):
            raise E.duplicated_client_order_id()
        qty = P.decimal(params, "quantity", required=True)
        assert qty is not None
        P.check_qty(inst, qty, market=otype == "MARKET")
        mark = self.marks[inst.symbol]
        tif = P.text(params, "timeInForce")
        price = ZERO
        if otype == "LIMIT":
            if tif is None:
                raise E.mandatory_param("timeInForce")
            if tif not in P.TIME_IN_FORCE:
                raise E.invalid_parameter("timeInForce")
            price = P.decimal(params, "price", required=True) or ZERO
            P.check_price(inst, price, mark)
        elif tif is not None:
            raise E.param_not_required("timeInForce")
        reduce = bool(reduce_only) or (self.hedge and P.closes(side, ps))
        P.check_notional(inst, qty, price if otype == "LIMIT" else mark, reduce_only=reduce)
        crosses = otype == "LIMIT" and (price >= mark if side == "BUY" else price <= mark)
        if tif == "GTX" and crosses:
            raise E.gtx_rejected()
        if tif == "FOK" and otype == "LIMIT" and not crosses:
            raise E.fok_rejected()
        self._check_reduce(inst.symbol, side, ps, qty, reduce, hedge_close=self.hedge)
        self._check_margin(inst.symbol, side, ps, qty, price if otype == "LIMIT" else mark,
                           reduce)
        now = self.now()
        o = Order(order_id=self.new_order_id(), symbol=inst.symbol, client_order_id=cid,
                  side=side, position_side=ps, type=otype, orig_type=otype,
                  time_in_force=tif or "GTC", price=price, orig_qty=qty,
                  reduce_only=bool(reduce_only), time=now, update_time=now)
        ack = self.accept(o)
        return ack if P.text(params, "newOrderRespType") in (None, "ACK") else self.view(o)

    def accept(self, o: Order) -> Json:
        """Put an accepted order into the engine: push NEW, then match it against the mark."""
        self.orders[o.order_id] = o
        ack = self.view(o)
        self.push_order(o, "NEW")
        mark = self.marks[o.symbol]
        if o.type == "MARKET":
            self._fill_in_parts(o, mark)
        elif (o.price >= mark) if o.side == "BUY" else (o.price <= mark):
            self.fill(o, o.remaining, mark, maker=False)
        elif o.time_in_force == "IOC":
            self._expire(o, reason=2)
        if o.is_open and o.type == "MARKET":
            self._expire(o, reason=9)
        return ack

    def amend(self, params: dict[str, str]) -> Json:
        """`PUT /fapi/v1/order` (Modify-Order): new price and quantity for an open limit."""
        o = self.find(params, missing=E.order_does_not_exist())
        inst = self.instruments[o.symbol]
        side = P.side_of(params)
        qty = P.decimal(params, "quantity", required=True)
        price = P.decimal(params, "price", required=True)
        assert qty is not None and price is not None
        if not o.is_open:
            raise E.order_does_not_exist()
        if o.type != "LIMIT" or side != o.side:
            raise E.invalid_parameter("side" if side != o.side else "orderId")
        P.check_qty(inst, qty, market=False)
        P.check_price(inst, price, self.marks[o.symbol])
        if qty == o.orig_qty and price == o.price:
            raise E.same_order()
        P.check_notional(inst, qty, price, reduce_only=o.reduce_only)
        o.orig_qty, o.price, o.update_time = qty, price, self.now()
        mark = self.marks[o.symbol]
        crosses = price >= mark if o.side == "BUY" else price <= mark
        if qty <= o.executed_qty or (crosses and o.time_in_force == "GTX"):
            o.status = "CANCELED"  # the Modify Order page: the amendment cancels the order
            self.push_order(o, "CANCELED")
        else:
            self.push_order(o, "AMENDMENT")
            if crosses:
                self.fill(o, o.remaining, mark, maker=False)
        return self.view(o)

    def cancel(self, params: dict[str, str]) -> Json:
        """`DELETE /fapi/v1/order`: an order that is not open is an unknown order (-2011)."""
        o = self.find(params, missing=E.unknown_order_sent())
        if not o.is_open:
            raise E.unknown_order_sent()
        o.status, o.update_time = "CANCELED", self.now()
        self.push_order(o, "CANCELED")
        return self.view(o)

    def view(self, o: Order, *, query: bool = False) -> Json:
        return wire.order(o, self.instruments[o.symbol], query=query)

    # --- what a test makes happen -------------------------------------------------------------

    def set_mark(self, symbol: str, price: D) -> None:
        """Move the mark: push it, fill resting limits it reached, trigger algo orders."""
        inst = self.instrument(symbol)
        if price <= 0:
            raise ValueError(f"a mark price must be positive, was {price}")
        self.marks[symbol] = price
        self.market_events.append((symbol, self.mark_event(inst)))
        for o in sorted(self.open_orders(symbol), key=lambda o: o.time):
            if o.type == "LIMIT" and (price <= o.price if o.side == "BUY" else price >= o.price):
                self.fill(o, o.remaining, o.price, maker=True)
        self.algo.on_mark(symbol, price)

    def mark_event(self, inst: Instrument) -> Json:
        return wire.mark_price_update(inst, self.marks[inst.symbol],
                                      self.funding_rates[inst.symbol], self.next_funding_time(),
                                      self.now())

    def fill_resting(self, order_id: int, qty: D | None = None, price: D | None = None) -> Order:
        """A counterparty trades with a resting limit order: a maker fill at its price."""
        o = self.orders.get(order_id)
        if o is None or not o.is_open or o.type != "LIMIT":
            raise ValueError(f"order {order_id} is not a resting limit order")
        qty = o.remaining if qty is None else qty
        if qty <= 0 or qty > o.remaining or qty % self.instruments[o.symbol].step != 0:
            raise ValueError(f"fill qty {qty} does not fit order {order_id} "
                             f"(remaining {o.remaining})")
        self.fill(o, qty, o.price if price is None else price, maker=True)
        return o

    def settle_funding(self, symbol: str, rate: D | None = None, time: int | None = None) -> D:
        """Pay or charge funding on every open position in `symbol`; return the net amount.

        A long pays `amount * mark * rate` when the rate is positive (Binance's convention).
        """
        inst = self.instrument(symbol)
        rate = self.funding_rates[symbol] if rate is None else rate
        when = self.now() if time is None else time
        total = ZERO
        for p in [p for p in self.book.open_positions() if p.symbol == symbol]:
            payment = q8(-(p.amount * self.marks[symbol] * rate))
            wb = self.book.credit(inst.margin_asset, payment)
            self.book.income.append(Income(symbol, "FUNDING_FEE", payment, inst.margin_asset,
                                           "FUNDING_FEE", when, self.new_tran_id()))
            self.user_events.append(wire.account_update(
                "FUNDING_FEE", when, [(inst.margin_asset, wb, payment)], []))
            total += payment
        return total

    def transfer(self, asset: str, amount: D) -> D:
        """Deposit (amount > 0) or withdraw (amount < 0) `asset`; return the new balance."""
        if amount == 0 or q8(amount) != amount:
            raise ValueError(f"a transfer needs a nonzero amount with 8 decimals, was {amount}")
        if amount < 0 and -amount > self.risk(asset).max_withdraw:
            raise E.BinanceError(-2018, "Balance is insufficient.")
        now = self.now()
        wb = self.book.credit(asset, amount)
        self.book.income.append(Income("", "TRANSFER", amount, asset, "TRANSFER", now,
                                       self.new_tran_id()))
        reason = "DEPOSIT" if amount > 0 else "WITHDRAW"
        self.user_events.append(wire.account_update(reason, now, [(asset, wb, amount)], []))
        return wb

    def set_leverage(self, symbol: str, leverage: int) -> Json:
        inst = self.instrument(symbol)
        if not 1 <= leverage <= inst.max_leverage:
            raise E.invalid_leverage(str(leverage))
        self.leverage[symbol] = leverage
        return {"leverage": leverage, "maxNotionalValue": format(inst.brackets[0].cap, "f"),
                "symbol": symbol}

    def set_position_mode(self, hedge: bool) -> None:
        if hedge == self.hedge:
            raise E.no_need_to_change_position_side()
        if self.open_orders() or self.algo.open():
            raise E.position_side_change_open_orders()
        if self.book.open_positions():
            raise E.position_side_change_position()
        self.hedge = hedge

    def random_client_id(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return "".join(self.rng.choice(alphabet) for _ in range(22))

    # --- fills --------------------------------------------------------------------------------

    def fill(self, o: Order, qty: D, price: D, *, maker: bool) -> None:
        """Book one fill of `o`; a reduce-only order fills only what the position allows."""
        inst = self.instruments[o.symbol]
        pos = self.book.position(o.symbol, o.position_side)
        if o.reduce_only or (self.hedge and P.closes(o.side, o.position_side)):
            opposite = pos.amount != 0 and (pos.amount > 0) != (o.side == "BUY")
            closable = abs(pos.amount) if self.hedge or opposite else ZERO
            qty = min(qty, closable)
            if qty == 0:
                self._expire(o, reason=4)
                return
        now = self.now()
        self._next_trade += 1
        rate = self.config.maker_fee if maker else self.config.taker_fee
        commission = q8(qty * price * rate)
        realized = q8(pos.apply_fill(o.signed * qty, price))
        pos.realized += realized
        pos.update_ms = now
        asset = inst.margin_asset
        wb = self.book.credit(asset, realized - commission)
        t = Trade(self._next_trade, o.order_id, o.symbol, o.side, o.position_side, price, qty,
                  commission, asset, realized, maker, now)
        self.book.trades.append(t)
        if realized:
            self.book.income.append(Income(o.symbol, "REALIZED_PNL", realized, asset,
                                           "REALIZED_PNL", now, self.new_tran_id(), str(t.id)))
        self.book.income.append(Income(o.symbol, "COMMISSION", -commission, asset,
                                       "COMMISSION", now, self.new_tran_id(), str(t.id)))
        o.executed_qty += qty
        o.cum_quote += qty * price
        o.status = "FILLED" if o.remaining == 0 else "PARTIALLY_FILLED"
        o.update_time = now
        self.user_events.append(wire.order_trade_update(
            o, inst, execution="TRADE", now=now, last_qty=qty, last_price=price,
            commission=commission, trade_id=t.id, realized=realized, maker=maker))
        self.user_events.append(wire.account_update(
            "ORDER", now, [(asset, wb, ZERO)], [(pos, inst, self.marks[o.symbol])]))
        if o.reduce_only and o.is_open and pos.amount == 0:
            self._expire(o, reason=4)
        if not o.is_open:
            self.algo.on_order_done(o)

    def _fill_in_parts(self, o: Order, price: D) -> None:
        step = self.instruments[o.symbol].step
        parts = max(1, self.config.market_fill_parts)
        piece = (o.remaining / parts // step) * step
        while o.is_open and o.remaining > 0:
            before = o.executed_qty
            self.fill(o, o.remaining if piece <= 0 or o.remaining < 2 * piece else piece,
                      price, maker=False)
            if o.executed_qty == before:
                break

    def _expire(self, o: Order, *, reason: int) -> None:
        if not o.is_open:
            return
        o.status, o.expiry_reason, o.update_time = "EXPIRED", reason, self.now()
        self.push_order(o, "EXPIRED")
        self.algo.on_order_done(o)

    def push_order(self, o: Order, execution: str) -> None:
        self.user_events.append(wire.order_trade_update(
            o, self.instruments[o.symbol], execution=execution, now=self.now()))

    # --- pre-trade checks ---------------------------------------------------------------------

    def _check_reduce(self, symbol: str, side: str, ps: str, qty: D, reduce: bool, *,
                      hedge_close: bool) -> None:
        """-2022: a reduce-only order (or a hedge-mode close) that cannot reduce anything."""
        if not reduce:
            return
        pos = self.book.position(symbol, ps)
        if hedge_close:
            if qty > abs(pos.amount):
                raise E.reduce_only_rejected()
            return
        if pos.amount == 0 or (pos.amount > 0) == (side == "BUY"):
            raise E.reduce_only_rejected()

    def _check_margin(self, symbol: str, side: str, ps: str, qty: D, price: D,
                      reduce: bool) -> None:
        """-2019: the order's own initial margin exceeds the available balance."""
        pos = self.book.position(symbol, ps)
        opening = opening_qty(side, qty, pos, hedge=self.hedge, reduce_only=reduce)
        if opening == 0:
            return
        need = opening * price / self.leverage[symbol]
        if need > self.risk(self.instruments[symbol].margin_asset).available:
            raise E.margin_insufficient()
