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

Every function here returns new values; nothing is mutated after construction.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any, Literal

import msgspec

from events.facts import AssetDefined, InstrumentDefined, OrderFilled, position_key
from kernel.money import ONE, ZERO, q18, round_to
from kernel.position import Booked, Entry, Position, Residual, book, trade

__all__ = ["Booked", "KLedger", "Position", "Valuation", "apply_fill", "refresh", "settle",
           "trade"]


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
    #: What `refresh` marked for `settle` to compute: the symbols whose positions
    #: (or marks, or leverage) changed, None for all; the assets whose wallets changed.
    #: Both empty in every ledger a snapshot, a checkpoint or a reader sees.
    stale_symbols: frozenset[str] | None = frozenset()
    stale_assets: frozenset[str] = frozenset()


def _add(m: dict[str, Decimal], key: str, amount: Decimal) -> dict[str, Decimal]:
    out = dict(m)
    out[key] = out.get(key, ZERO) + amount
    return out


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


def apply_fill(
    k: KLedger,
    fill: OrderFilled,
    inst: InstrumentDefined,
    instruments: dict[str, InstrumentDefined],
    settle_asset: AssetDefined | None = None,
) -> tuple[KLedger, Booked]:
    """K after one admitted fill, and what booking it did (its realized PnL, in the
    settlement asset, and the fills it re-priced). Fills are booked in the venue's order
    (`kernel.position.book`), so a late one also re-prices the fills that followed it.
    `settle_asset` is the venue's precision for the settlement asset, if documented."""
    q = fill.qty if fill.side == "buy" else -fill.qty
    if inst.instrument_kind == "spot":
        wallets = _add(k.wallets, fill.fee_currency, -fill.fee)
        held = k.holdings.get(fill.symbol) or Position(symbol=fill.symbol)
        shrink = fill.fee if fill.fee_currency == inst.base else ZERO  # fee in the base coin
        booked = book(k.journals.get(fill.symbol, ()), held, fill.venue_ts, fill.trade_id, q,
                      fill.price, inst, shrink, fill.venue_realized_pnl)
        journals = dict(k.journals)
        journals[fill.symbol] = booked.journal
        wallets = _add(wallets, inst.base, q)
        wallets = _add(wallets, inst.quote, -q * fill.price)
        holdings = dict(k.holdings)
        if booked.position.qty == 0:
            holdings.pop(fill.symbol, None)
        else:
            holdings[fill.symbol] = booked.position
        return refresh(
            k, instruments, touched=(inst.base, inst.quote, fill.fee_currency), symbols=(),
            wallets=wallets, fees=_add(k.fees, fill.fee_currency, fill.fee),
            holdings=holdings, journals=journals,
            # The sale's cash is in the quote wallet already: realized PnL is reported,
            # not added to it.
            realized_pnl=_add(k.realized_pnl, inst.quote, booked.delta),
            realized_by_symbol=_add(k.realized_by_symbol, fill.symbol, booked.delta),
        ), booked
    key = position_key(fill.symbol, fill.position_side)
    pos = k.positions.get(key) or Position(symbol=fill.symbol, position_side=fill.position_side)
    booked = book(k.journals.get(key, ()), pos, fill.venue_ts, fill.trade_id, q, fill.price,
                  inst, venue=fill.venue_realized_pnl, residual=residual(settle_asset))
    journals = dict(k.journals)
    journals[key] = booked.journal
    positions = dict(k.positions)
    if booked.position.qty == 0:
        positions.pop(key, None)
    else:
        positions[key] = booked.position
    settle = inst.settle
    wallets = dict(k.wallets)
    wallets[fill.fee_currency] = wallets.get(fill.fee_currency, ZERO) + -fill.fee
    if booked.delta:
        wallets[settle] = wallets.get(settle, ZERO) + booked.delta
    rounding = k.venue_rounding
    if booked.residual or settle not in rounding:
        rounding = _add(rounding, settle, booked.residual)
    touched = (settle,) if settle == fill.fee_currency else (settle, fill.fee_currency)
    return refresh(
        k, instruments, touched=touched, symbols=(fill.symbol,),
        wallets=wallets, fees=_add(k.fees, fill.fee_currency, fill.fee), positions=positions,
        journals=journals, realized_pnl=_add(k.realized_pnl, settle, booked.delta),
        venue_rounding=rounding,
        realized_by_symbol=_add(k.realized_by_symbol, fill.symbol, booked.delta),
    ), booked


def apply_cash(
    k: KLedger,
    asset: str,
    amount: Decimal,
    field: Literal["funding", "transfers", "adjustments"],
    instruments: dict[str, InstrumentDefined],
) -> KLedger:
    """A signed cash flow into `asset`'s wallet, accounted under `field`."""
    return refresh(k, instruments, touched=(asset,), symbols=(),
                   wallets=_add(k.wallets, asset, amount),
                   **{field: _add(getattr(k, field), asset, amount)})


def apply_mark(
    k: KLedger, symbol: str, price: Decimal, instruments: dict[str, InstrumentDefined]
) -> KLedger:
    marks = dict(k.marks)
    marks[symbol] = price
    return refresh(k, instruments, touched=(), symbols=(symbol,), marks=marks)


def apply_leverage(
    k: KLedger, symbol: str, leverage: Decimal, instruments: dict[str, InstrumentDefined]
) -> KLedger:
    lev = dict(k.leverage)
    lev[symbol] = leverage
    return refresh(k, instruments, touched=(), symbols=(symbol,), leverage=lev)


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


def refresh(
    k: KLedger,
    instruments: dict[str, InstrumentDefined],
    *,
    touched: tuple[str, ...],
    symbols: tuple[str, ...] | None,
    **changes: Any,
) -> KLedger:
    """K with `changes` (new values of its fields) made, after which the wallets of
    `touched` assets and the positions (or marks, or leverage) of `symbols` changed
    (`symbols=None`: every position, e.g. new instrument rules).

    The peak and drawdown of each touched wallet move now: they remember the path. The
    figures that are a function of K's present alone (valuations, and per asset the
    unrealized PnL, open notional, used margin, equity, available margin) are only
    marked stale, and `settle` computes them: once per event, or once for a whole batch
    of events (the writer's and the replay's way), with the same result."""
    if touched:
        wallets = changes.get("wallets", k.wallets)
        peak, drawdown = dict(k.peak_capital), dict(k.drawdown)
        for a in touched:
            w = wallets.get(a, ZERO)
            if a not in peak or w > peak[a]:
                peak[a] = w
            drawdown[a] = peak[a] - w
        changes["peak_capital"], changes["drawdown"] = peak, drawdown
        stale_assets = k.stale_assets
        if not stale_assets.issuperset(touched):
            changes["stale_assets"] = stale_assets.union(touched)
    stale_symbols = k.stale_symbols
    if symbols is None:
        changes["stale_symbols"] = None
    elif symbols and stale_symbols is not None and not stale_symbols.issuperset(symbols):
        changes["stale_symbols"] = stale_symbols.union(symbols)
    return msgspec.structs.replace(k, **changes)


def settle(k: KLedger, instruments: dict[str, InstrumentDefined]) -> KLedger:
    """K with every figure `refresh` marked stale computed; `k` itself when none is.

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
