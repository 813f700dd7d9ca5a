"""A peer, side by side: the same fills through this kernel and NautilusTrader's position
models. `python -m bench.peer [--events N]`.

Bench only: NautilusTrader is not in the lock. Install it into the project's virtualenv
first (`.venv/bin/pip install nautilus_trader==1.221.0`, the last release for CPython
3.11; about 100 MB), and `pip install -r requirements.lock` afterwards to go back.

The fills of `workload.events(N)` (four linear perpetuals, one-way, in venue order) are
booked four ways, each timed per fill, best of `ROUNDS`:

* **kernel fold**: `kernel.state.fold` of the instrument definitions, then of the fills
  alone, K settled once per 1,000 fills (as the writer and the replay fold);
* **kernel position**: `kernel.position.book` alone, per position key (what the fold
  does for a fill's average cost and realized PnL, without the ledger around it);
* **Nautilus Cython `Position.apply`** (`nautilus_trader.model.position.Position`);
* **Nautilus Rust `Position.apply`** (`nautilus_trader.core.nautilus_pyo3.Position`).

Nautilus's events are built before the clock starts. `Position.apply` does not split a
fill that crosses zero: Nautilus's `ExecutionEngine` does that before it (a closing fill,
then an opening one, for a NETTING account), so this bench splits them the same way, the
commission pro rata. Then the books must agree, and the bench checks that they do: per
symbol, the signed quantity exactly, the average open price within 1e-9 (Nautilus keeps
it as a float), and the realized PnL since the position last went flat less the
commissions in that time (Nautilus's `realized_pnl`) within 1e-6. The exit status is
1 if the Cython model, the one Nautilus's Python engine books with, disagrees. The Rust
model is timed, and where its book differs it is printed, but it is no check of the
kernel: on these fills its realized PnL is not the Cython model's either.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from bench import workload
from events.facts import InstrumentDefined, OrderFilled
from kernel import money
from kernel.position import Booked, Entry, Position, book, trade
from kernel.state import GENESIS, AccountState, fold, settled

ROUNDS = 3

try:
    from nautilus_trader import __version__ as NAUTILUS_VERSION
    from nautilus_trader.core import nautilus_pyo3 as rs
    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.model import currencies, enums, events, identifiers, objects
    from nautilus_trader.model.instruments import CryptoPerpetual
    from nautilus_trader.model.position import Position as CyPosition
except ImportError:  # pragma: no cover (the message is the point)
    NAUTILUS_VERSION = None


def kernel_fills(n: int) -> tuple[list[InstrumentDefined], list[OrderFilled]]:
    head: list[InstrumentDefined] = []
    fills: list[OrderFilled] = []
    for ev in workload.events(n):
        if isinstance(ev, InstrumentDefined):
            head.append(ev)
        elif isinstance(ev, OrderFilled):
            fills.append(ev)
    return head, fills


def split_flips(fills: Iterable[OrderFilled]) -> list[tuple[OrderFilled, Decimal, Decimal, str]]:
    """Each fill as (fill, qty, commission, trade id), a fill that crosses zero as two:
    what Nautilus's ExecutionEngine hands its positions."""
    held: dict[str, Decimal] = {}
    out: list[tuple[OrderFilled, Decimal, Decimal, str]] = []
    for f in fills:
        q = f.qty if f.side == "buy" else -f.qty
        old = held.get(f.symbol, Decimal(0))
        if old and (old > 0) != (q > 0) and abs(q) > abs(old):
            closing = abs(old)
            fee = f.fee * closing / f.qty
            out.append((f, closing, fee, f"{f.trade_id}-close"))
            out.append((f, f.qty - closing, f.fee - fee, f"{f.trade_id}-open"))
        else:
            out.append((f, f.qty, f.fee, f.trade_id))
        held[f.symbol] = old + q
    return out


def time_best(run: Callable[[], Any], per: int) -> tuple[float, Any]:
    """Seconds per item of the fastest of `ROUNDS` runs of `run`, and its last result."""
    best, result = float("inf"), None
    for _ in range(ROUNDS):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best / per, result


def kernel_fold(head: list[InstrumentDefined], fills: list[OrderFilled]
                ) -> Callable[[], AccountState]:
    state = GENESIS
    for ev in head:
        state = fold(state, ev, state.seq + 1)
    start = state
    keys = [f.dedup_key for f in fills]

    def run() -> AccountState:
        s = start
        for i, (f, key) in enumerate(zip(fills, keys, strict=True), 1):
            s = fold(s, f, s.seq + 1, key, settle=False)
            if i % 1000 == 0:
                s = settled(s)
        return settled(s)

    return run


def kernel_position(head: list[InstrumentDefined], fills: list[OrderFilled]
                    ) -> Callable[[], dict[str, Booked]]:
    instruments = {i.symbol: i for i in head}

    def run() -> dict[str, Booked]:
        journals: dict[str, tuple[Entry, ...]] = {}
        positions: dict[str, Position] = {}
        last: dict[str, Booked] = {}
        for f in fills:
            pos = positions.get(f.symbol) or Position(symbol=f.symbol)
            q = f.qty if f.side == "buy" else -f.qty
            b = book(journals.get(f.symbol, ()), pos, f.venue_ts, f.trade_id, q, f.price,
                     instruments[f.symbol])
            journals[f.symbol], positions[f.symbol], last[f.symbol] = b.journal, b.position, b
        return last

    return run


class Nautilus:
    """The fills as Nautilus events (Cython and Rust), built once."""

    def __init__(self, head: list[InstrumentDefined], fills: list[OrderFilled]) -> None:
        self.cy_inst = {i.symbol: self._cy_instrument(i.symbol) for i in head}
        self.rs_inst = {i.symbol: self._rs_instrument(i.symbol) for i in head}
        parts = split_flips(fills)
        self.cy = [(f.symbol, self._cy_fill(f, q, fee, tid)) for f, q, fee, tid in parts]
        self.rs = [(f.symbol, self._rs_fill(f, q, fee, tid)) for f, q, fee, tid in parts]

    @staticmethod
    def _cy_instrument(symbol: str) -> Any:
        return CryptoPerpetual(
            instrument_id=identifiers.InstrumentId(identifiers.Symbol(symbol),
                                                   identifiers.Venue("SIM")),
            raw_symbol=identifiers.Symbol(symbol),
            base_currency=objects.Currency.from_str(symbol[:-4]),
            quote_currency=currencies.USDT, settlement_currency=currencies.USDT,
            is_inverse=False, price_precision=2, price_increment=objects.Price.from_str("0.01"),
            size_precision=3, size_increment=objects.Quantity.from_str("0.001"),
            margin_init=Decimal("0.05"), margin_maint=Decimal("0.025"),
            maker_fee=Decimal("0.0002"), taker_fee=Decimal("0.0004"), ts_event=0, ts_init=0)

    @staticmethod
    def _rs_instrument(symbol: str) -> Any:
        return rs.CryptoPerpetual(
            rs.InstrumentId.from_str(f"{symbol}.SIM"), rs.Symbol(symbol),
            rs.Currency.from_str(symbol[:-4]), rs.Currency.from_str("USDT"),
            rs.Currency.from_str("USDT"), False, 2, 3, rs.Price.from_str("0.01"),
            rs.Quantity.from_str("0.001"), 0, 0)

    def _cy_fill(self, f: OrderFilled, qty: Decimal, fee: Decimal, trade_id: str) -> Any:
        return events.OrderFilled(
            trader_id=identifiers.TraderId("BENCH-001"),
            strategy_id=identifiers.StrategyId("S-001"),
            instrument_id=self.cy_inst[f.symbol].id,
            client_order_id=identifiers.ClientOrderId(f.order_id),
            venue_order_id=identifiers.VenueOrderId(f.order_id),
            account_id=identifiers.AccountId("SIM-001"), trade_id=identifiers.TradeId(trade_id),
            position_id=identifiers.PositionId(f.symbol),
            order_side=enums.OrderSide.BUY if f.side == "buy" else enums.OrderSide.SELL,
            order_type=enums.OrderType.MARKET, last_qty=objects.Quantity.from_str(str(qty)),
            last_px=objects.Price.from_str(str(f.price)), currency=currencies.USDT,
            commission=objects.Money(fee, currencies.USDT),
            liquidity_side=enums.LiquiditySide.TAKER, event_id=UUID4(),
            ts_event=f.venue_ts, ts_init=f.venue_ts)

    def _rs_fill(self, f: OrderFilled, qty: Decimal, fee: Decimal, trade_id: str) -> Any:
        return rs.OrderFilled(
            rs.TraderId("BENCH-001"), rs.StrategyId("S-001"),
            rs.InstrumentId.from_str(f"{f.symbol}.SIM"), rs.ClientOrderId(f.order_id),
            rs.VenueOrderId(f.order_id), rs.AccountId("SIM-001"), rs.TradeId(trade_id),
            rs.OrderSide.BUY if f.side == "buy" else rs.OrderSide.SELL, rs.OrderType.MARKET,
            rs.Quantity.from_str(str(qty)), rs.Price.from_str(str(f.price)),
            rs.Currency.from_str("USDT"), rs.LiquiditySide.TAKER, rs.UUID4(), f.venue_ts,
            f.venue_ts, False, rs.PositionId(f.symbol),
            rs.Money(float(fee), rs.Currency.from_str("USDT")))

    def cython(self) -> dict[str, Any]:
        positions: dict[str, Any] = {}
        for symbol, fill in self.cy:
            p = positions.get(symbol)
            if p is None:
                positions[symbol] = CyPosition(self.cy_inst[symbol], fill)
            else:
                p.apply(fill)
        return positions

    def rust(self) -> dict[str, Any]:
        positions: dict[str, Any] = {}
        for symbol, fill in self.rs:
            p = positions.get(symbol)
            if p is None:
                positions[symbol] = rs.Position(self.rs_inst[symbol], fill)
            else:
                p.apply(fill)
        return positions


def cycles(head: list[InstrumentDefined], fills: list[OrderFilled]
           ) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """Per symbol: the kernel's signed quantity and average open price, and its realized
    PnL less commissions since the position was last flat, counted as Nautilus counts
    them once the engine has split each fill that crosses zero (a new position from the
    opening part on, its commission pro rata)."""
    instruments = {i.symbol: i for i in head}
    positions: dict[str, Position] = {}
    out: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
    for f, qty, fee, _ in split_flips(fills):
        pos = positions.get(f.symbol) or Position(symbol=f.symbol)
        since = out[f.symbol][2] if pos.qty else Decimal(0)  # flat: Nautilus resets
        after, realized = trade(pos, qty if f.side == "buy" else -qty, f.price,
                                instruments[f.symbol])
        positions[f.symbol] = after
        out[f.symbol] = (after.qty, after.avg_open, since + realized - fee)
    return out


def agree(state: AccountState, expected: dict[str, tuple[Decimal, Decimal, Decimal]],
          nautilus: dict[str, dict[str, Any]]) -> list[str]:
    """Where the books disagree (empty: nowhere)."""
    faults = []
    for symbol, pos in sorted(state.k.positions.items()):
        qty, avg, realized = expected[symbol]
        if (pos.qty, pos.avg_open) != (qty, avg):
            faults.append(f"kernel {symbol}: the fold holds {pos.qty} at {pos.avg_open}, the"
                          f" split fills {qty} at {avg}")
        for name, positions in nautilus.items():
            p = positions[symbol]
            n_qty = Decimal(str(p.signed_qty))
            n_avg = float(p.avg_px_open)
            n_realized = Decimal(str(p.realized_pnl).split()[0])
            if abs(n_qty - qty) > Decimal("1e-9"):  # the Rust model sums floats
                faults.append(f"{name} {symbol}: qty {n_qty} vs kernel {qty}")
            if abs(n_avg - float(avg)) > 1e-9 * float(avg):
                faults.append(f"{name} {symbol}: avg open {n_avg} vs kernel {avg}")
            if abs(n_realized - realized) > Decimal("1e-6"):
                faults.append(f"{name} {symbol}: realized less commissions {n_realized}"
                              f" vs kernel {realized}")
    return faults


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__)
    p.add_argument("--events", type=int, default=50_000,
                   help="workload events whose fills are booked (default 50,000)")
    args = p.parse_args()
    if NAUTILUS_VERSION is None:
        print("bench.peer needs NautilusTrader: .venv/bin/pip install nautilus_trader==1.221.0",
              file=sys.stderr)
        return 2
    money.install()
    head, fills = kernel_fills(args.events)
    n = len(fills)
    naut = Nautilus(head, fills)
    with money.context():
        k_fold, state = time_best(kernel_fold(head, fills), n)
        k_pos, _ = time_best(kernel_position(head, fills), n)
    cy, cy_pos = time_best(naut.cython, n)
    r, rs_pos = time_best(naut.rust, n)
    print(f"- command: `python -m bench.peer --events {args.events}`; NautilusTrader"
          f" {NAUTILUS_VERSION}; {n:,} fills ({len(naut.cy) - n} split where they cross zero)")
    print("\n| path | µs per fill | ÷ kernel fold |\n|---|---:|---:|")
    for label, t in (("kernel `fold` (settled per 1,000)", k_fold),
                     ("kernel `position.book` alone", k_pos),
                     ("Nautilus Cython `Position.apply`", cy),
                     ("Nautilus Rust `Position.apply`", r)):
        print(f"| {label} | {t * 1e6:.2f} | {t / k_fold:.2f}× |")
    with money.context():
        expected = cycles(head, fills)
    faults = agree(state, expected, {"Nautilus Cython": cy_pos})
    print(f"\nthe kernel's and Nautilus Cython's books agree: {'yes' if not faults else 'NO'}")
    for fault in faults:
        print(f"- {fault}")
    rust = agree(state, expected, {"Nautilus Rust": rs_pos})
    print(f"the kernel's and Nautilus Rust's books agree: {'yes' if not rust else 'no'}"
          " (timed only: not a check of the kernel)")
    for fault in rust:
        print(f"- {fault}")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
