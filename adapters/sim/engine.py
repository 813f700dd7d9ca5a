"""The simulated venue's matching engine: pure, deterministic, seeded.

`SimEngine(config, rng)` owns the account (`adapters.sim.account`), the orders and each
instrument's price path. It reads no clock and no global randomness: the caller passes
`now_ns` to every call (times never go backwards: an earlier `now_ns` counts as the
engine's current time) and every draw comes from the `random.Random` it was given, so
the same seed and the same calls give the same messages.

Every `tick_s` prices move (a seeded random walk, or a replayed CSV path), marks are
pushed, stops trigger and resting limits the price crossed fill as maker (touched:
partly); every `funding_interval_s` (epoch-aligned) positions pay or receive funding;
every `trader.every_s` the scripted trader acts; a complete account report follows any
change of wallets or positions by `report_delay_ms`. `advance` returns the wire messages
(`adapters.sim.wire`); rejection codes are listed in `adapters.sim.orders`.

Money is kept at each asset's precision (`adapters.sim.account`): fees, each fill's
realized PnL and funding are rounded before they are booked, one at a time, as Binance
does; the precisions are pushed at start (and answer `assets`). In hedge mode
(`hedge_mode`) each order trades a LONG or a SHORT side (`adapters.sim.orders`) and
funding pays each side on its own (`adapters.sim.funding`).

Every computation runs in the kernel's decimal context (`kernel.money`), so the figures
agree with the kernel's digit for digit.
"""

from __future__ import annotations

import bisect
import decimal
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from adapters.sim import orders as rules
from adapters.sim import wire
from adapters.sim.account import Account, Holding
from adapters.sim.config import SimConfig, SimInstrument
from adapters.sim.funding import Funding, settle
from adapters.sim.orders import Accepted, Fill, Rejected, SimOrder, Spec, crosses, triggers
from adapters.sim.trader import Trader
from adapters.sim.wire import Msg
from kernel import money

NEVER = 2**63 - 1
_CTX = decimal.Context(  # kernel.money.install()'s settings, without touching global state
    prec=money.PRECISION, rounding=decimal.ROUND_HALF_EVEN, Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN, traps=[decimal.InvalidOperation, decimal.DivisionByZero,
                                  decimal.Overflow])
PricePath = Sequence[tuple[int, Decimal]]


@dataclass(frozen=True)
class Truth:
    """The venue's ground truth, copied out for tests."""

    wallets: dict[str, Decimal]
    positions: dict[str, Holding]
    holdings: dict[str, Holding]
    open_orders: tuple[SimOrder, ...]
    fills: tuple[Fill, ...]
    funding: tuple[Funding, ...]
    #: Per settlement asset, Σ (booked - exact) realized PnL over the perpetual fills:
    #: what the per-fill rounding added to the wallet. A ledger that books the exact
    #: figures has `wallet - rounding` where the venue has `wallet`.
    rounding: dict[str, Decimal]


class SimEngine:
    def __init__(
        self,
        config: SimConfig,
        rng: random.Random,
        paths: Mapping[str, PricePath] | None = None,
    ) -> None:
        """`paths`: the (timestamp_ms, price) rows of each instrument with a `price_csv`,
        read by the shell (the engine does no I/O)."""
        self.config = config
        self.instruments = {i.symbol: i for i in config.instruments}
        self.prices = {i.symbol: i.start_price for i in config.instruments}
        self._paths = {s: sorted(p) for s, p in (paths or {}).items()}
        for i in config.instruments:
            if i.price_csv is not None and i.symbol not in self._paths:
                raise ValueError(f"{i.symbol}: price_csv {i.price_csv!r} was not loaded")
        self._rng = rng
        self._trader = Trader(config.trader, rng)
        self.account = Account(config)
        self.orders: dict[str, SimOrder] = {}
        self._by_cid: dict[str, SimOrder] = {}
        self.fills: list[Fill] = []
        self.funding: list[Funding] = []
        self.definitions: list[Msg] = []  # instruments and leverage, pushed at start
        # Every fill, funding and transfer message with its time, for the resync queries.
        self.fill_msgs: list[tuple[int, Msg]] = []
        self.funding_msgs: list[tuple[int, Msg]] = []
        self.transfer_msgs: list[tuple[int, Msg]] = []
        self._outbox: list[Msg] = []
        self._ids = 0
        self._start = -1
        self.now = 0
        self._next_tick = self._next_funding = self._next_trade = NEVER
        self._report_due: int | None = None
        self._flood_ms = 0

    def advance(self, now_ns: int) -> list[Msg]:
        """Run the venue up to `now_ns`; the messages it pushed since the last call."""
        with decimal.localcontext(_CTX):
            self._run_until(now_ns)
        out, self._outbox = self._outbox, []
        return out

    def _run_until(self, now: int) -> None:
        if self._start < 0:
            self._begin(now)
        while True:
            due = min(self._next_tick, self._next_funding, self._next_trade,
                      NEVER if self._report_due is None else self._report_due)
            if due > now:
                break
            self.now = due
            if due == self._next_tick:
                self._tick(due)
                self._next_tick += _ns(self.config.tick_s)
            if due == self._next_funding:
                self._settle_funding(due)
                self._next_funding += _ns(self.config.funding_interval_s)
            if due == self._next_trade:
                self._trader.act(self, due)
                self._next_trade += _ns(self.config.trader.every_s)
            if self._report_due is not None and self._report_due <= due:
                self._outbox.append(self._account_msg(due, "ORDER"))
                self._report_due = None
        self.now = max(self.now, now)

    def quiet(self) -> None:
        """From now on, no price moves, funding or trades: the venue goes quiet, as the
        fault campaigns need to compare the kernel with its books. Due reports still go."""
        self._next_tick = self._next_funding = self._next_trade = NEVER

    def _begin(self, now: int) -> None:
        cfg = self.config
        self._start = self.now = now
        self.definitions.append(wire.asset_info(
            now, [(a, cfg.precision_of(a), cfg.rounding) for a in cfg.assets()]))
        for inst in cfg.instruments:
            self.definitions.append(wire.exchange_info(now, inst))
            if inst.kind != "spot":
                self.definitions.append(wire.leverage(now, inst.symbol, inst.leverage))
        self._outbox.extend(self.definitions)
        for n, (asset, amount) in enumerate(sorted(cfg.deposits.items()), 1):
            amount = self.account.round(asset, amount)
            self.account.credit(asset, amount)
            msg = wire.transfer(now, f"sim-deposit-{n}", asset, amount,
                                self.account.wallets[asset])
            self.transfer_msgs.append((now, msg))
            self._outbox.append(msg)
        self._outbox.extend(self.mark_msgs(now))
        self._next_tick = now + _ns(cfg.tick_s)
        interval = _ns(cfg.funding_interval_s)
        self._next_funding = (now // interval + 1) * interval if interval > 0 else NEVER
        if cfg.trader.enabled and cfg.trader.every_s > 0:
            self._next_trade = now + _ns(cfg.trader.every_s)
        self._changed(now)

    def _tick(self, t: int) -> None:
        for inst in self.config.instruments:
            self.prices[inst.symbol] = self._step(inst, t)
        self._outbox.extend(self.mark_msgs(t))
        for inst in self.config.instruments:
            self._match(inst, t)

    def _step(self, inst: SimInstrument, t: int) -> Decimal:
        path = self._paths.get(inst.symbol)
        if path:
            elapsed_ms = path[0][0] + wire.ms(t - self._start)
            i = max(bisect.bisect_right([row[0] for row in path], elapsed_ms) - 1, 0)
            return _to_tick(path[i][1], inst.tick_size)
        g = Decimal(repr(self._rng.gauss(0.0, 1.0)))
        return _to_tick(self.prices[inst.symbol] * (1 + inst.volatility * g), inst.tick_size)

    def _settle_funding(self, t: int) -> None:
        for paid, msg in settle(self.account, self.instruments, self.prices, t):
            self.funding.append(paid)
            if not self.config.drift.hide_funding:
                self.funding_msgs.append((t, msg))
                self._outbox.append(msg)
            self._changed(t)

    def _changed(self, t: int) -> None:
        if self._report_due is None:
            self._report_due = t + self.config.report_delay_ms * wire.NS_PER_MS

    def place(self, spec: Spec, client_order_id: str, now_ns: int) -> Accepted | Rejected:
        with decimal.localcontext(_CTX):
            self._run_until(now_ns)
            return self.submit(spec, client_order_id, self.now)

    def submit(
        self, spec: Spec, client_order_id: str, t: int, position_side: str | None = None
    ) -> Accepted | Rejected:
        """Place at the engine's current time `t` (the trader's entry: no time step).
        `position_side` ("long" / "short" in hedge mode): None derives it (module doc)."""
        side = rules.position_side(self, spec) if position_side is None else position_side
        rejected = rules.check_place(self, spec, client_order_id, side)
        if rejected is not None:
            return rejected
        self._ids += 1
        order = SimOrder(
            order_id=str(self._ids), client_order_id=client_order_id, symbol=spec.symbol,
            side=spec.side, order_type=spec.order_type, qty=spec.qty, price=spec.price,
            trigger_price=spec.trigger_price, time_in_force=spec.time_in_force,
            reduce_only=spec.reduce_only, post_only=spec.post_only, created_ns=t,
            position_side=side,
        )
        self.orders[order.order_id] = order
        self._by_cid[client_order_id] = order
        self._outbox.append(wire.order_update(order, t, "NEW"))
        if order.order_type == "market":
            self._take(order, t)
        elif order.order_type == "limit":
            self._limit_arrives(order, t)
        return Accepted(order.order_id)

    def cancel(self, client_order_id: str, symbol: str, now_ns: int) -> Accepted | Rejected:
        with decimal.localcontext(_CTX):
            self._run_until(now_ns)
            return self.withdraw(client_order_id, symbol, self.now)

    def withdraw(self, client_order_id: str, symbol: str, t: int) -> Accepted | Rejected:
        """Cancel at the engine's current time `t` (the trader's entry: no time step)."""
        order = self.open_order(client_order_id, symbol)
        if order is None:
            return Rejected("UNKNOWN_ORDER", f"no open order {client_order_id!r} in {symbol}")
        self._close(order, "canceled", t)
        return Accepted(order.order_id)

    def amend(
        self, client_order_id: str, symbol: str, now_ns: int, *, qty: Decimal | None = None,
        price: Decimal | None = None, trigger_price: Decimal | None = None,
    ) -> Accepted | Rejected:
        with decimal.localcontext(_CTX):
            self._run_until(now_ns)
            order = self.open_order(client_order_id, symbol)
            if order is None:
                return Rejected("UNKNOWN_ORDER", f"no open order {client_order_id!r} in {symbol}")
            rejected = rules.check_amend(self, order, qty, price, trigger_price)
            if rejected is not None:
                return rejected
            order.qty = order.qty if qty is None else qty
            order.price = order.price if price is None else price
            if trigger_price is not None:
                order.trigger_price = trigger_price
            self._outbox.append(wire.order_update(order, self.now, "AMENDMENT"))
            limit = order.price if order.is_live_limit else None
            if limit is not None and crosses(order.side, limit, self.prices[symbol]):
                self._take(order, self.now)
            return Accepted(order.order_id)

    def _limit_arrives(self, order: SimOrder, t: int) -> None:
        assert order.price is not None
        marketable = crosses(order.side, order.price, self.prices[order.symbol])
        if order.time_in_force == "FOK":
            plan = self._plan(order)
            if marketable and all(not _beyond(order, px) for _, px in plan):
                self._execute(order, plan, t)
            else:
                self._close(order, "expired", t)
        elif marketable:
            self._take(order, t)
        elif order.time_in_force == "IOC":
            self._close(order, "expired", t)

    def _match(self, inst: SimInstrument, t: int) -> None:
        p = self.prices[inst.symbol]
        for order in sorted((o for o in self.orders.values()
                             if o.symbol == inst.symbol and o.is_open), key=SimOrder.seq):
            if order.trigger_price is not None and not order.triggered:
                if not triggers(order, p):
                    continue
                order.triggered = True
                assert order.price is None or order.is_live_limit
                if order.price is None or crosses(order.side, order.price, p):
                    self._take(order, t)
                continue
            if order.price is None or not order.is_open:
                continue
            if (p < order.price) if order.side == "buy" else (p > order.price):
                self._fill(order, order.remaining, order.price, "maker", t)
            elif p == order.price:
                lots = int(order.remaining / inst.lot_size)
                self._fill(order, self._rng.randint(1, lots) * inst.lot_size, p, "maker", t)

    def _plan(self, order: SimOrder) -> list[tuple[Decimal, Decimal]]:
        """A taker execution in 1-3 pieces at successive ticks of price impact."""
        inst, p = self.instruments[order.symbol], self.prices[order.symbol]
        lots = int(order.remaining / inst.lot_size)
        n = min(self._rng.randint(1, 3), lots)
        cuts = sorted(self._rng.sample(range(1, lots), n - 1)) if n > 1 else []
        sizes = [b - a for a, b in zip([0, *cuts], [*cuts, lots], strict=True)]
        step = inst.tick_size if order.side == "buy" else -inst.tick_size
        return [(k * inst.lot_size, max(p + i * step, inst.tick_size))
                for i, k in enumerate(sizes)]

    def _take(self, order: SimOrder, t: int) -> None:
        self._execute(order, self._plan(order), t)

    def _execute(self, order: SimOrder, plan: list[tuple[Decimal, Decimal]], t: int) -> None:
        for q, px in plan:
            if _beyond(order, px) or not self._fill(order, q, px, "taker", t):
                break
        if order.is_open and (order.price is None or order.time_in_force != "GTC"):
            self._close(order, "expired", t)

    def _fill(self, order: SimOrder, q: Decimal, px: Decimal, liquidity: str, t: int) -> bool:
        inst = self.instruments[order.symbol]
        q = rules.executable(self, order, q, px)
        if q <= 0:
            self._close(order, "expired", t)
            return False
        rate = self.config.maker_fee if liquidity == "maker" else self.config.taker_fee
        fee, currency = rules.fee(inst, order.side, q, px, rate)
        fee = self.account.round(currency, fee)
        signed = q if order.side == "buy" else -q
        booked = self.account.fill(inst, signed, px, fee, currency, order.position_side)
        order.filled_qty += q
        order.cost += q * px
        order.status = "filled" if order.filled_qty == order.qty else "partially_filled"
        self._ids += 1
        fill = Fill(
            trade_id=str(self._ids), order_id=order.order_id,
            client_order_id=order.client_order_id, symbol=order.symbol, side=order.side,
            qty=q, price=px, fee=fee, fee_currency=currency, liquidity=liquidity,
            realized=booked.realized, ts_ns=t, position_side=order.position_side,
            exact_realized=booked.exact,
        )
        self.fills.append(fill)
        msg = wire.order_update(order, t, "TRADE", fill)
        self.fill_msgs.append((t, msg))
        self._outbox.append(msg)
        self._changed(t)
        return True

    def _close(self, order: SimOrder, status: str, t: int) -> None:
        order.status = status
        self._outbox.append(wire.order_update(order, t, status.upper()))

    def order_by_cid(self, client_order_id: str) -> SimOrder | None:
        return self._by_cid.get(client_order_id)

    def open_order(self, client_order_id: str, symbol: str) -> SimOrder | None:
        o = self._by_cid.get(client_order_id)
        return o if o is not None and o.symbol == symbol and o.is_open else None

    def open_orders(self) -> list[SimOrder]:
        return sorted((o for o in self.orders.values() if o.is_open), key=SimOrder.seq)

    def mark_msgs(self, t: int) -> list[Msg]:
        rate = {s: i.funding_rate for s, i in self.instruments.items()}
        return [wire.mark_price(t, s, p, rate[s], self._next_funding)
                for s, p in self.prices.items()]

    def flood_marks(self, now_ns: int, n: int) -> list[Msg]:
        """Up to `n` extra marks at the current prices, each symbol's on distinct ms after
        the last tick and no later than `now_ns` (so no two marks share a dedup key)."""
        last_tick = self._next_tick - _ns(self.config.tick_s)
        first = max(self._flood_ms, wire.ms(last_tick)) + 1
        stamps = range(first, min(first + n, wire.ms(now_ns) + 1))
        out = [m for s in stamps for m in self.mark_msgs(s * wire.NS_PER_MS)][:n]
        if stamps:
            self._flood_ms = stamps[-1]
        return out

    def snapshot(self, now_ns: int) -> Msg:
        """A complete account report at `now_ns` (a resync answer, not pushed)."""
        with decimal.localcontext(_CTX):
            self._run_until(now_ns)
            return self._account_msg(self.now, "SNAPSHOT")

    def _account_msg(self, t: int, reason: str) -> Msg:
        msg = wire.account_report(t, reason, self.account, self.config.instruments,
                                  self.prices)
        drift = self.config.drift
        if drift.wallet or drift.position_lots:
            wire.drift(msg, self.config.instruments, drift.wallet, drift.position_lots)
        return msg

    def truth(self) -> Truth:
        a = self.account
        return Truth(
            wallets=dict(a.wallets),
            positions={k: replace(h) for k, h in a.positions.items()},
            holdings={s: replace(h) for s, h in a.holdings.items()},
            open_orders=tuple(replace(o) for o in self.open_orders()),
            fills=tuple(self.fills),
            funding=tuple(self.funding),
            rounding=dict(a.rounding),
        )


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


def _to_tick(x: Decimal, tick: Decimal) -> Decimal:
    return max((x / tick).to_integral_value() * tick, tick)


def _beyond(order: SimOrder, px: Decimal) -> bool:
    """`px` is worse than the order's limit price."""
    if order.price is None:
        return False
    return px > order.price if order.side == "buy" else px < order.price

