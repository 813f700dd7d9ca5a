"""The simulated venue's own books: a wallet per asset, perpetual positions, spot holdings.

Computed independently of `kernel.ledger` but by the same conventions, so that a quiet
venue and the kernel agree digit for digit:

* Average cost; a reducing fill realizes `(px - avg) * q * cs` for a long and
  `(avg - px) * q * cs` for a short and leaves `avg` unchanged; a fill that crosses zero
  realizes only the closing part and opens the rest at the fill price. Averages (the
  harmonic one for inverse contracts) are rounded half-even to 18 places; so is every
  figure that needs a division (inverse PnL, notional, margin).
* Perpetual fills move the settlement wallet by the realized PnL; spot fills move the base
  and quote wallets by the trade's cash flows, and their cost basis lives in `holdings`.
  The fee leaves the fee currency's wallet; a spot fee in the base coin also shrinks the
  holding.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from adapters.sim.config import SimInstrument
from kernel.money import ONE, ZERO, q18


@dataclass
class Holding:
    """One position (or spot holding): signed quantity and average open price."""

    qty: Decimal = ZERO
    avg: Decimal = ZERO


@dataclass(frozen=True)
class Valuation:
    notional: Decimal
    unrealized: Decimal
    margin: Decimal


def trade(h: Holding, q: Decimal, px: Decimal, inst: SimInstrument) -> Decimal:
    """Apply the signed quantity `q` at `px` to `h` in place; return the realized PnL."""
    old = h.qty
    inverse = inst.kind == "inverse"
    cs = inst.contract_size
    if old == 0 or (old > 0) == (q > 0):
        new = old + q
        if old == 0:
            h.avg = px
        elif inverse:
            h.avg = q18(abs(new) / (abs(old) / h.avg + abs(q) / px))
        else:
            h.avg = q18((h.avg * abs(old) + px * abs(q)) / abs(new))
        h.qty = new
        return ZERO
    closing = min(abs(q), abs(old))
    sign = ONE if old > 0 else -ONE
    if inverse:
        realized = q18((ONE / h.avg - ONE / px) * closing * cs * sign)
    else:
        realized = q18((px - h.avg) * closing * cs * sign)
    new = old + q
    if new == 0:
        h.avg = ZERO
    elif (new > 0) != (old > 0):
        h.avg = px
    h.qty = new
    return realized


def value(h: Holding, inst: SimInstrument, mark: Decimal, leverage: Decimal) -> Valuation:
    """A perpetual position at `mark` and `leverage`, in its settlement asset."""
    cs = inst.contract_size
    if inst.kind == "inverse":
        notional = q18(abs(h.qty) * cs / mark)
        unrealized = q18((ONE / h.avg - ONE / mark) * h.qty * cs)
    else:
        notional = abs(h.qty) * cs * mark
        unrealized = q18((mark - h.avg) * h.qty * cs)
    return Valuation(notional=notional, unrealized=unrealized, margin=q18(notional / leverage))


class Account:
    """Wallets, positions and holdings; mutated in place by the engine that owns it."""

    def __init__(self) -> None:
        self.wallets: dict[str, Decimal] = {}
        self.positions: dict[str, Holding] = {}
        self.holdings: dict[str, Holding] = {}

    def credit(self, asset: str, amount: Decimal) -> None:
        """A signed cash flow (transfer, funding) into `asset`'s wallet."""
        self.wallets[asset] = self.wallets.get(asset, ZERO) + amount

    def qty(self, symbol: str) -> Decimal:
        h = self.positions.get(symbol) or self.holdings.get(symbol)
        return h.qty if h is not None else ZERO

    def fill(
        self, inst: SimInstrument, q: Decimal, px: Decimal, fee: Decimal, fee_currency: str
    ) -> Decimal:
        """Book one fill of signed quantity `q`; return its realized PnL."""
        self.credit(fee_currency, -fee)
        if inst.kind == "spot":
            h = self.holdings.setdefault(inst.symbol, Holding())
            realized = trade(h, q, px, inst)
            if fee_currency == inst.base:
                h.qty -= fee
            self.credit(inst.base, q)
            self.credit(inst.quote, -q * px)
            if h.qty == 0:
                del self.holdings[inst.symbol]
            return realized
        h = self.positions.setdefault(inst.symbol, Holding())
        realized = trade(h, q, px, inst)
        if realized:
            self.credit(inst.settle, realized)
        if h.qty == 0:
            del self.positions[inst.symbol]
        return realized

    def equity(
        self,
        asset: str,
        instruments: dict[str, SimInstrument],
        marks: dict[str, Decimal],
    ) -> tuple[Decimal, Decimal]:
        """(wallet + unrealized PnL, used margin) of the positions settled in `asset`."""
        equity = self.wallets.get(asset, ZERO)
        used = ZERO
        for symbol, h in self.positions.items():
            inst = instruments[symbol]
            if inst.settle == asset:
                v = value(h, inst, marks[symbol], inst.leverage)
                equity += v.unrealized
                used += v.margin
        return equity, used
