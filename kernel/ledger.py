"""K: the ledger the kernel computes from facts alone.

Conventions (docs/ledger.md has worked examples):

* Average cost per position key (the symbol; `symbol|long` / `symbol|short` in hedge
  mode). Increasing a position moves `avg_open` to the quantity-weighted average
  (for inverse contracts, the harmonic average, which keeps cost in coin exact),
  rounded half-even to 18 decimal places.
* A reducing fill realizes `(px - avg_open) * q` for a long and `(avg_open - px) * q`
  for a short, times the contract size, rounded to 18 places (no venue reports more);
  `avg_open` is unchanged. Inverse contracts
  realize `(1/avg_open - 1/px) * q * cs` (long) in the base coin. A fill that crosses
  zero realizes only the closing part and opens the rest at the fill price.
* `realized_pnl` is gross (price only); fees accumulate per currency; funding is signed
  from the account's view. `wallets[a]` is K's capital in asset `a`: transfers +
  adjustments + realized - fees + funding, plus spot trade cash flows.
* Spot fills move the base and quote wallets; their cost basis lives in `holdings`,
  with the same average-cost rules, and a sale realizes PnL into `realized_pnl[quote]`
  and `realized_by_symbol` (not into the wallet: the sale's cash is already there).
  A spot fee paid in the base coin reduces the base quantity.
* `venue_rounding[a]` is what the venue's documented per-fill rounding of realized PnL
  (`asset_defined`) adds to K's exact figures: Σ (rounded − exact) over the fills that
  settle in `a`. K's capital plus it is what a venue that rounds each fill reports.
* Fills are booked in the venue's order (venue time, then trade id), whatever order they
  arrive in: a late fill re-prices the fills after it (`kernel.position`).

A `KLedger` is never mutated once built. Facts are booked through a `LedgerDraft`, which
changes only its own copies of the mappings a batch writes, and freezes them into the
next `KLedger` (kernel.state.Draft holds one for a batch).
"""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any, Literal

import msgspec

from events.facts import AssetDefined, InstrumentDefined, OrderFilled, position_key
from kernel.money import ONE, ZERO, q18, round_to
from kernel.position import Booked, Entry, Position, Residual, book, trade

__all__ = ["Booked", "KLedger", "LedgerDraft", "Position", "Valuation", "settle", "trade"]


class Valuation(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One position at K's mark and leverage, in its settlement asset."""

    asset: str
    notional: Decimal
    unrealized_pnl: Decimal
    margin: Decimal


class KLedger(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """Every mapping is copied on write and never mutated once the ledger is built."""

    wallets: dict[str, Decimal] = {}
    realized_pnl: dict[str, Decimal] = {}
    #: Cumulative realized PnL per symbol, derivatives and spot, across every cycle.
    realized_by_symbol: dict[str, Decimal] = {}
    #: Σ (venue-rounded − exact) realized PnL per settlement asset (see the docstring).
    venue_rounding: dict[str, Decimal] = {}
    fees: dict[str, Decimal] = {}
    funding: dict[str, Decimal] = {}
    transfers: dict[str, Decimal] = {}
    adjustments: dict[str, Decimal] = {}
    positions: dict[str, Position] = {}
    #: Each position key's (and spot holding's) recent fills in venue order (kernel.position).
    journals: dict[str, tuple[Entry, ...]] = {}
    holdings: dict[str, Position] = {}
    marks: dict[str, Decimal] = {}
    leverage: dict[str, Decimal] = {}
    peak_capital: dict[str, Decimal] = {}
    # Derived: each position valued at K's mark (by key), and totals per settlement asset.
    valuations: dict[str, Valuation] = {}
    unrealized_pnl: dict[str, Decimal] = {}
    open_notional: dict[str, Decimal] = {}
    used_margin: dict[str, Decimal] = {}
    equity: dict[str, Decimal] = {}
    available_margin: dict[str, Decimal] = {}
    drawdown: dict[str, Decimal] = {}
    open_positions: int = 0
    #: What a `LedgerDraft` marked for `settle` to compute: the symbols whose positions
    #: (or marks, or leverage) changed, None for all; the assets whose wallets changed.
    #: Both empty in every ledger a snapshot, a checkpoint or a reader sees.
    stale_symbols: frozenset[str] | None = frozenset()
    stale_assets: frozenset[str] = frozenset()


def residual(asset: AssetDefined | None) -> Residual:
    """`x -> venue_rounded(x) - x` for amounts of `asset`; zero where the venue has not
    documented its precision."""
    if asset is None:
        return _no_residual
    return _residuals(asset.precision, asset.rounding)


@functools.cache
def _residuals(places: int, mode: str) -> Residual:
    return lambda x: round_to(x, places, mode) - x


def _no_residual(_: Decimal) -> Decimal:
    return ZERO


#: KLedger's mappings that the facts change (the rest are derived by `settle`).
_BOOKED = frozenset({"wallets", "realized_pnl", "realized_by_symbol", "venue_rounding", "fees",
                     "funding", "transfers", "adjustments", "positions", "journals", "holdings",
                     "marks", "leverage", "peak_capital", "drawdown"})

#: Those that every fill writes.
_FILLED = ("wallets", "journals", "fees", "realized_pnl", "realized_by_symbol", "peak_capital",
           "drawdown")


class LedgerDraft:
    """K being changed by a run of events: each mapping is copied on its first write and
    then changed in place, so a batch of events copies it once, not once per event.
    `freeze()` gives the KLedger. The ledger it started from, and every ledger it froze,
    are never written to: the draft starts copying afresh after each `freeze()`.

    Each method books one kind of fact, in the conventions of this module's docstring.
    The wallets a fact moved and the positions (or marks, or leverage) it changed are
    remembered: the peak and drawdown of each moved wallet move now (they remember the
    path), while the figures that are a function of K's present alone (valuations, and
    per asset the unrealized PnL, open notional, used margin, equity, available margin)
    are only marked stale, and `settle` computes them, once per event or once for a
    whole batch, with the same result.

    Each attribute named for a mapping of K is None until the draft first writes it,
    then the draft's own copy. (`freeze` passes the copies in their own order of first
    write: KLedger's field order is its own, whatever the order of the keywords.)"""

    # No __slots__: each mapping attribute is the class's None until the draft writes
    # it, and `_start` forgets every copy at once by clearing the instance's dict.
    wallets: dict[str, Decimal] | None = None
    realized_pnl: dict[str, Decimal] | None = None
    realized_by_symbol: dict[str, Decimal] | None = None
    venue_rounding: dict[str, Decimal] | None = None
    fees: dict[str, Decimal] | None = None
    funding: dict[str, Decimal] | None = None
    transfers: dict[str, Decimal] | None = None
    adjustments: dict[str, Decimal] | None = None
    positions: dict[str, Position] | None = None
    journals: dict[str, tuple[Entry, ...]] | None = None
    holdings: dict[str, Position] | None = None
    marks: dict[str, Decimal] | None = None
    leverage: dict[str, Decimal] | None = None
    peak_capital: dict[str, Decimal] | None = None
    drawdown: dict[str, Decimal] | None = None
    #: What the draft marked stale beyond K's own marks (`settle` computes them).
    _all_stale: bool = False
    _symbols: set[str] | None = None
    _assets: set[str] | None = None

    def __init__(self, k: KLedger) -> None:
        self._start(k)

    def _start(self, k: KLedger) -> None:
        self.__dict__.clear()
        self._base = k

    def get(self, name: str) -> Any:
        """The current value of K's mapping `name` (read it, never write it)."""
        d = getattr(self, name)
        return getattr(self._base, name) if d is None else d

    def _mine(self, name: str) -> dict[str, Any]:
        d: dict[str, Any] | None = getattr(self, name)
        if d is None:
            d = dict(getattr(self._base, name))
            setattr(self, name, d)
        return d

    def _add(self, name: str, key: str, amount: Decimal) -> None:
        m = self._mine(name)
        m[key] = m.get(key, ZERO) + amount

    def freeze(self, *, last: bool = False) -> KLedger:
        """K as the draft has it now. With `last`, the draft is done: it need not ready
        itself to go on."""
        k = self._base
        changes = {n: d for n, d in self.__dict__.items() if n in _BOOKED}
        stale, symbols, assets = k.stale_symbols, self._symbols, self._assets
        if stale is not None:
            if self._all_stale:
                changes["stale_symbols"] = None
            elif symbols and not stale.issuperset(symbols):
                changes["stale_symbols"] = stale.union(symbols)
        if assets and not k.stale_assets.issuperset(assets):
            changes["stale_assets"] = k.stale_assets.union(assets)
        if changes:
            k = msgspec.structs.replace(k, **changes)
            if not last:
                self._start(k)
        return k

    def fill(self, fill: OrderFilled, inst: InstrumentDefined,
             settle_asset: AssetDefined | None = None) -> Booked:
        """Book one admitted fill; what booking it did (its realized PnL, in the
        settlement asset, and the fills it re-priced). Fills are booked in the venue's
        order (`kernel.position.book`), so a late one also re-prices the fills that
        followed it. `settle_asset` is the venue's precision for the settlement asset,
        if documented."""
        # The fills' hot path: the mappings every fill writes, owned once, then local.
        if self.fees is None:  # (another fact may have written some of them already)
            for name in _FILLED:
                self._mine(name)
        wallets: dict[str, Decimal] = self.wallets  # type: ignore[assignment]
        journals: dict[str, tuple[Entry, ...]] = self.journals  # type: ignore[assignment]
        fees: dict[str, Decimal] = self.fees  # type: ignore[assignment]
        realized_pnl: dict[str, Decimal] = self.realized_pnl  # type: ignore[assignment]
        by_symbol: dict[str, Decimal] = self.realized_by_symbol  # type: ignore[assignment]
        q = fill.qty if fill.side == "buy" else -fill.qty
        fee_ccy, symbol = fill.fee_currency, fill.symbol
        if inst.instrument_kind == "spot":
            wallets[fee_ccy] = wallets.get(fee_ccy, ZERO) + -fill.fee
            holdings = self._mine("holdings")
            held = holdings.get(symbol) or Position(symbol=symbol)
            shrink = fill.fee if fee_ccy == inst.base else ZERO  # fee in the base coin
            booked = book(journals.get(symbol, ()), held, fill.venue_ts, fill.trade_id,
                          q, fill.price, inst, shrink, fill.venue_realized_pnl)
            journals[symbol] = booked.journal
            wallets[inst.base] = wallets.get(inst.base, ZERO) + q
            wallets[inst.quote] = wallets.get(inst.quote, ZERO) + -q * fill.price
            if booked.position.qty == 0:
                holdings.pop(symbol, None)
            else:
                holdings[symbol] = booked.position
            fees[fee_ccy] = fees.get(fee_ccy, ZERO) + fill.fee
            # The sale's cash is in the quote wallet already: realized PnL is reported,
            # not added to it.
            realized_pnl[inst.quote] = realized_pnl.get(inst.quote, ZERO) + booked.delta
            by_symbol[symbol] = by_symbol.get(symbol, ZERO) + booked.delta
            self._moved((inst.base, inst.quote, fee_ccy))
            return booked
        key = position_key(symbol, fill.position_side)
        positions = self.positions
        if positions is None:
            positions = self.positions = dict(self._base.positions)
        pos = positions.get(key) or Position(symbol=symbol, position_side=fill.position_side)
        booked = book(journals.get(key, ()), pos, fill.venue_ts, fill.trade_id, q, fill.price,
                      inst, venue=fill.venue_realized_pnl, residual=residual(settle_asset))
        journals[key] = booked.journal
        if booked.position.qty == 0:
            positions.pop(key, None)
        else:
            positions[key] = booked.position
        settle = inst.settle
        wallets[fee_ccy] = wallets.get(fee_ccy, ZERO) + -fill.fee
        if booked.delta:
            wallets[settle] = wallets.get(settle, ZERO) + booked.delta
        if booked.residual or settle not in self.get("venue_rounding"):
            self._add("venue_rounding", settle, booked.residual)
        fees[fee_ccy] = fees.get(fee_ccy, ZERO) + fill.fee
        realized_pnl[settle] = realized_pnl.get(settle, ZERO) + booked.delta
        by_symbol[symbol] = by_symbol.get(symbol, ZERO) + booked.delta
        self._moved((settle,) if settle == fee_ccy else (settle, fee_ccy))
        self._stale((symbol,), ())
        return booked

    def cash(self, asset: str, amount: Decimal,
             field: Literal["funding", "transfers", "adjustments"]) -> None:
        """A signed cash flow into `asset`'s wallet, accounted under `field`."""
        self._add("wallets", asset, amount)
        self._add(field, asset, amount)
        self._moved((asset,))

    def mark(self, symbol: str, price: Decimal) -> None:
        marks = self.marks
        if marks is None:
            marks = self.marks = dict(self._base.marks)
        marks[symbol] = price
        self._stale((symbol,), ())

    def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        self._mine("leverage")[symbol] = leverage
        self._stale((symbol,), ())

    def instruments_changed(self) -> None:
        """Instrument rules changed: every position is stale, and the positions mapping
        is a new one, so that the reconcile rules that read instrument rules run again."""
        self._mine("positions")
        self._all_stale = True

    def _moved(self, touched: tuple[str, ...]) -> None:
        """The wallets of `touched` moved: their peak and drawdown move now."""
        wallets = self.get("wallets")
        peak, drawdown = self._mine("peak_capital"), self._mine("drawdown")
        for a in touched:
            w = wallets.get(a, ZERO)
            if a not in peak or w > peak[a]:
                peak[a] = w
            drawdown[a] = peak[a] - w
        self._stale((), touched)

    def _stale(self, symbols: tuple[str, ...], assets: tuple[str, ...]) -> None:
        """Mark the positions of `symbols` and the wallets of `assets` for `settle`."""
        if symbols:
            if self._symbols is None:
                self._symbols = set()
            self._symbols.update(symbols)
        if assets:
            if self._assets is None:
                self._assets = set()
            self._assets.update(assets)


def notional(qty: Decimal, inst: InstrumentDefined, mark: Decimal) -> Decimal:
    """Open notional of `qty` contracts at `mark`, in the settlement asset: |q|·cs·mark,
    or |q|·cs/mark for an inverse contract (the same formula for K and for E)."""
    if inst.instrument_kind == "inverse":
        return q18(abs(qty) * inst.contract_size / mark)
    return abs(qty) * inst.contract_size * mark


def value(
    pos: Position, inst: InstrumentDefined, mark: Decimal | None, leverage: Decimal | None
) -> Valuation:
    """`pos` at `mark` (its `avg_open` when no mark is known yet: no unrealized PnL) and
    `leverage` (1 when never set)."""
    m = pos.avg_open if mark is None else mark
    cs = inst.contract_size
    if inst.instrument_kind == "inverse":
        unrealized = q18((ONE / pos.avg_open - ONE / m) * pos.qty * cs)
    else:
        unrealized = q18((m - pos.avg_open) * pos.qty * cs)
    n = notional(pos.qty, inst, m)
    margin = n if leverage is None else q18(n / leverage)
    return Valuation(asset=inst.settle, notional=n, unrealized_pnl=unrealized, margin=margin)


def settle(k: KLedger, instruments: dict[str, InstrumentDefined]) -> KLedger:
    """K with every figure a `LedgerDraft` marked stale computed; `k` itself when none is.

    Only what the stale marks reach is recomputed. The result depends on K's present
    alone, not on how many events were settled at once: valuations follow the positions
    mapping's order, per-asset figures are in asset order."""
    symbols, touched = k.stale_symbols, k.stale_assets
    if symbols is not None and not symbols and not touched:
        return k
    old = k.valuations
    assets = set(touched)
    valuations = old
    if symbols is None or symbols:
        valuations = {}
        changed = False
        for key, pos in k.positions.items():
            v = old.get(key)
            if v is None or symbols is None or pos.symbol in symbols:
                v = value(pos, instruments[pos.symbol], k.marks.get(pos.symbol),
                          k.leverage.get(pos.symbol))
                assets.add(v.asset)
                changed = True
            valuations[key] = v
        for key, v in old.items():
            if key not in valuations:  # closed
                assets.add(v.asset)
                changed = True
        if not changed:
            # Marks of symbols K holds no position in: every mapping is kept (and so is
            # every R4/R5 check that reads them).
            valuations = old
    unrealized, notional, margin = k.unrealized_pnl, k.open_notional, k.used_margin
    if valuations is not old:
        totals: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
        for a in assets:
            u = n = mg = ZERO
            held = False
            for v in valuations.values():
                if v.asset == a:
                    u += v.unrealized_pnl
                    n += v.notional
                    mg += v.margin
                    held = True
            if held:
                totals[a] = (u, n, mg)
        keys = sorted((unrealized.keys() - assets) | totals.keys())
        unrealized = {a: totals[a][0] if a in totals else unrealized[a] for a in keys}
        notional = {a: totals[a][1] if a in totals else notional[a] for a in keys}
        margin = {a: totals[a][2] if a in totals else margin[a] for a in keys}
    equity, available = k.equity, k.available_margin
    if assets:
        equity, available = {}, {}
        for a in sorted(k.equity.keys() | assets):
            if a in assets:
                equity[a] = k.wallets.get(a, ZERO) + unrealized.get(a, ZERO)
                available[a] = equity[a] - margin.get(a, ZERO)
            else:
                equity[a], available[a] = k.equity[a], k.available_margin[a]
    return msgspec.structs.replace(
        k,
        valuations=valuations,
        unrealized_pnl=unrealized,
        open_notional=notional,
        used_margin=margin,
        equity=equity,
        available_margin=available,
        open_positions=len(k.positions),
        stale_symbols=_NONE_STALE,
        stale_assets=_NONE_STALE,
    )


_NONE_STALE: frozenset[str] = frozenset()
