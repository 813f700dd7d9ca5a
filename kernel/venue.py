"""E: what the venue last reported. A field never reported is None, never zero.

A balance report or a positions report replaces the previous one whole; a position
absent from a positions report (or reported with qty 0) is flat. A report older (by
venue time) than the one E holds of the same kind is ignored and counted: a resync
racing the stream can deliver an old report after a newer one, and letting it win would
turn a true OK into an ERROR.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from events.facts import (
    AssetBalance,
    BalanceReported,
    InstrumentDefined,
    MarginReport,
    PositionsReported,
    ReportedPosition,
)
from kernel import ledger
from kernel.money import ZERO


class VenueView(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    balances: dict[str, AssetBalance] | None = None
    margin: MarginReport | None = None
    #: Margin figures by asset: the account-level `margin` and the per-asset `margins`.
    margins: dict[str, MarginReport] | None = None
    balances_ts: int | None = None
    positions: dict[str, ReportedPosition] | None = None
    positions_ts: int | None = None
    #: Open notional of the reported positions per settlement asset: Σ|notional| as the
    #: venue reports it per position; where it reports none, |qty|·cs·mark computed with
    #: K's instrument (those assets are in `notional_computed`). Assets with a position
    #: reported with neither a notional nor a mark are in `unmarked`.
    notional: dict[str, Decimal] | None = None
    notional_computed: tuple[str, ...] = ()
    unmarked: tuple[str, ...] = ()
    #: Reports ignored because E already held a newer one of the same kind.
    stale_reports: int = 0


def apply_balances(e: VenueView, report: BalanceReported) -> VenueView:
    if e.balances_ts is not None and report.venue_ts < e.balances_ts:
        return msgspec.structs.replace(e, stale_reports=e.stale_reports + 1)
    return msgspec.structs.replace(
        e,
        balances={b.asset: b for b in report.balances},
        margin=report.margin,
        margins={m.asset: m for m in (*(() if report.margin is None else (report.margin,)),
                                      *report.margins)},
        balances_ts=report.venue_ts,
    )


def apply_positions(
    e: VenueView, report: PositionsReported, instruments: dict[str, InstrumentDefined]
) -> VenueView:
    if e.positions_ts is not None and report.venue_ts < e.positions_ts:
        return msgspec.structs.replace(e, stale_reports=e.stale_reports + 1)
    positions = {p.key: p for p in report.positions if p.qty != 0}
    notional: dict[str, Decimal] = {}
    computed: set[str] = set()
    unmarked: set[str] = set()
    for p in positions.values():
        inst = instruments[p.symbol]
        a = inst.settle
        if p.notional is not None:
            n = abs(p.notional)
        elif p.mark_price is not None:
            n = ledger.notional(p.qty, inst, p.mark_price)
            computed.add(a)
        else:
            unmarked.add(a)
            continue
        notional[a] = notional.get(a, ZERO) + n
    return msgspec.structs.replace(
        e,
        positions=positions,
        positions_ts=report.venue_ts,
        notional=notional,
        notional_computed=tuple(sorted(computed)),
        unmarked=tuple(sorted(unmarked)),
    )
