"""E: what the venue last reported. A field never reported is None, never zero.

A balance report or a positions report replaces the previous one whole; a position
absent from a positions report (or reported with qty 0) is flat.
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
    balances_ts: int | None = None
    positions: dict[str, ReportedPosition] | None = None
    positions_ts: int | None = None
    #: Σ|qty|·cs·mark of the reported positions at the venue's marks, per settlement
    #: asset; assets with a position reported without a mark are in `unmarked`.
    notional: dict[str, Decimal] | None = None
    unmarked: tuple[str, ...] = ()


def apply_balances(e: VenueView, report: BalanceReported) -> VenueView:
    return msgspec.structs.replace(
        e,
        balances={b.asset: b for b in report.balances},
        margin=report.margin,
        balances_ts=report.venue_ts,
    )


def apply_positions(
    e: VenueView, report: PositionsReported, instruments: dict[str, InstrumentDefined]
) -> VenueView:
    positions = {p.key: p for p in report.positions if p.qty != 0}
    notional: dict[str, Decimal] = {}
    unmarked: set[str] = set()
    for p in positions.values():
        inst = instruments[p.symbol]
        a = inst.settle
        if p.mark_price is None:
            unmarked.add(a)
            continue
        notional[a] = notional.get(a, ZERO) + ledger.notional(p.qty, inst, p.mark_price)
    return msgspec.structs.replace(
        e,
        positions=positions,
        positions_ts=report.venue_ts,
        notional=notional,
        unmarked=tuple(sorted(unmarked)),
    )
