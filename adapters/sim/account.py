"""The simulated venue's own books: a wallet per asset, perpetual positions, spot holdings.

Computed independently of `kernel.ledger` but by the same conventions, so that a quiet
venue and the kernel agree digit for digit (reconcile compares two independent
computations; sharing the code would make it compare one with itself):

* Average cost; a reducing fill realizes `(px - avg) * q * cs` for a long and
  `(avg - px) * q * cs` for a short and leaves `avg` unchanged; a fill that crosses zero
  realizes only the closing part and opens the rest at the fill price. Averages (the
  harmonic one for inverse contracts) are rounded half-even to 18 places; so is every
  figure that needs a division (inverse PnL, notional, margin).
* Like Binance, the venue keeps money at each asset's precision (`SimConfig.precision`,
  8 places by default): every amount booked into a wallet (a fee, a fill's realized PnL,
  a funding payment, a transfer, a spot trade's cash flow) is rounded to it first, one
  fill at a time, so wallets are always at that precision. Positions, entry prices,
  notional and unrealized PnL are not rounded.
* Perpetual fills move the settlement wallet by the (rounded) realized PnL; spot fills
  move the base and quote wallets by the trade's cash flows, and their cost basis lives
  in `holdings`. The fee leaves the fee currency's wallet; a spot fee in the base coin
  also shrinks the holding.
* Positions are keyed as the kernel keys them (`events.facts.position_key`): the symbol
  in one-way mode, `symbol|long` and `symbol|short` in hedge mode.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal

from adapters.sim.config import SimConfig, SimInstrument
from events.facts import position_key
from kernel.money import ONE, ZERO, q18

_MODES = {"half_even": decimal.ROUND_HALF_EVEN, "half_up": decimal.ROUND_HALF_UP,
          "down": decimal.ROUND_DOWN}


def to_places(x: Decimal, places: int, rounding: str) -> Decimal:
    """`x` rounded to `places` decimals, `rounding` as `asset_defined` names the modes."""
    return x.quantize(Decimal(1).scaleb(-places), rounding=_MODES[rounding])


@dataclass
class Holding:
    """One position (or spot holding): signed quantity and average open price."""

    qty: Decimal = ZERO
    avg: Decimal = ZERO
    symbol: str = ""
    side: str = "both"  # "long" / "short" in hedge mode


@dataclass(frozen=True)
class Valuation:
    notional: Decimal
    unrealized: Decimal
    margin: Decimal


@dataclass(frozen=True)
class Booked:
    """One fill as the books took it: its realized PnL exactly and as booked (rounded to
    the settlement asset's precision; what the venue reports as the fill's `rp`)."""

    exact: Decimal
    realized: Decimal


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

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        self.wallets: dict[str, Decimal] = {}
        self.positions: dict[str, Holding] = {}  # by position key
        self.holdings: dict[str, Holding] = {}  # by symbol
        #: Per settlement asset: Σ (booked - exact) realized PnL over the perpetual
        #: fills, what rounding each fill to the asset's precision added to the wallet.
        self.rounding: dict[str, Decimal] = {}

    def round(self, asset: str, amount: Decimal) -> Decimal:
        """`amount` at `asset`'s precision, as the venue books and reports it."""
        return to_places(amount, self._config.precision_of(asset), self._config.rounding)

    def credit(self, asset: str, amount: Decimal) -> None:
        """A signed cash flow (transfer, funding, fee, PnL) into `asset`'s wallet, at its
        precision."""
        self.wallets[asset] = self.wallets.get(asset, ZERO) + self.round(asset, amount)

    def position(self, symbol: str, side: str = "both") -> Holding | None:
        return self.positions.get(position_key(symbol, side))

    def qty(self, symbol: str, side: str = "both") -> Decimal:
        h = self.position(symbol, side) or self.holdings.get(symbol)
        return h.qty if h is not None else ZERO

    def fill(
        self, inst: SimInstrument, q: Decimal, px: Decimal, fee: Decimal, fee_currency: str,
        side: str = "both",
    ) -> Booked:
        """Book one fill of signed quantity `q` on the position `side` (hedge mode: long
        or short), its `fee` already at the fee currency's precision."""
        self.credit(fee_currency, -fee)
        if inst.kind == "spot":
            h = self.holdings.setdefault(inst.symbol, Holding(symbol=inst.symbol))
            exact = trade(h, q, px, inst)
            if fee_currency == inst.base:
                h.qty -= fee
            self.credit(inst.base, q)
            self.credit(inst.quote, -q * px)
            if h.qty == 0:
                del self.holdings[inst.symbol]
            return Booked(exact=exact, realized=self.round(inst.quote, exact))
        key = position_key(inst.symbol, side)
        h = self.positions.setdefault(key, Holding(symbol=inst.symbol, side=side))
        exact = trade(h, q, px, inst)
        realized = self.round(inst.settle, exact)
        if realized:
            self.credit(inst.settle, realized)
        if realized != exact or inst.settle not in self.rounding:
            self.rounding[inst.settle] = self.rounding.get(inst.settle, ZERO) + realized - exact
        if h.qty == 0:
            del self.positions[key]
        return Booked(exact=exact, realized=realized)

    def equity(
        self,
        asset: str,
        instruments: dict[str, SimInstrument],
        marks: dict[str, Decimal],
    ) -> tuple[Decimal, Decimal]:
        """(wallet + unrealized PnL, used margin) of the positions settled in `asset`; in
        hedge mode each side is margined on its own, as on Binance."""
        equity = self.wallets.get(asset, ZERO)
        used = ZERO
        for h in self.positions.values():
            inst = instruments[h.symbol]
            if inst.settle == asset:
                v = value(h, inst, marks[h.symbol], inst.leverage)
                equity += v.unrealized
                used += v.margin
        return equity, used
