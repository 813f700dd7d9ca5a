"""E: what the venue last reported. A field never reported is None, never zero.

A balance report or a positions report replaces the previous one whole; a position
absent from a positions report (or reported with qty 0) is flat.
"""

from __future__ import annotations

import msgspec

from events.facts import AssetBalance, BalanceReported, MarginReport, PositionsReported, ReportedPosition


class VenueView(msgspec.Struct, frozen=True, kw_only=True):
    balances: dict[str, AssetBalance] | None = None
    margin: MarginReport | None = None
    balances_ts: int | None = None
    positions: dict[str, ReportedPosition] | None = None
    positions_ts: int | None = None


def apply_balances(e: VenueView, report: BalanceReported) -> VenueView:
    return msgspec.structs.replace(
        e,
        balances={b.asset: b for b in report.balances},
        margin=report.margin,
        balances_ts=report.venue_ts,
    )


def apply_positions(e: VenueView, report: PositionsReported) -> VenueView:
    return msgspec.structs.replace(
        e,
        positions={p.key: p for p in report.positions if p.qty != 0},
        positions_ts=report.venue_ts,
    )
