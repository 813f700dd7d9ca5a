"""AccountSnapshotV2: the immutable unit of account truth, one per folded event."""

from __future__ import annotations

import msgspec

from events.facts import AssetDefined, InstrumentDefined
from kernel.ledger import KLedger
from kernel.reconcile import ReconcileConfig, ReconcileResult, reconcile
from kernel.state import AccountState
from kernel.venue import VenueView


class AccountSnapshotV2(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    seq: int
    #: The dedup key of the event this snapshot follows.
    source_event_id: str
    event_kind: str
    #: The venue time of that event, and the kernel's event-time clock (ns).
    event_ts: int
    now: int
    k: KLedger
    e: VenueView
    reconcile: ReconcileResult
    connected: bool | None
    halted: bool
    quarantined: int
    #: The venue's rules the figures are read with: ticks and lots per symbol, precision
    #: per asset (for showing money at the asset's precision and prices at the tick).
    instruments: dict[str, InstrumentDefined] = {}
    assets: dict[str, AssetDefined] = {}


def project(
    state: AccountState, cfg: ReconcileConfig, prev: AccountSnapshotV2 | None = None
) -> AccountSnapshotV2:
    """The snapshot of `state`. Passing the previous snapshot lets unchanged rules keep
    their checks (see `reconcile`)."""
    if prev is not None and prev.k is state.k and prev.e is state.e and (
        prev.assets is state.assets
    ) and (prev.reconcile.expires_at is None or state.now <= prev.reconcile.expires_at):
        result = prev.reconcile
    else:
        result = reconcile(state, cfg, None if prev is None
                           else (prev.k, prev.e, prev.assets, prev.reconcile))
    return AccountSnapshotV2(
        seq=state.seq,
        source_event_id=state.event_id,
        event_kind=state.event_kind,
        event_ts=state.event_ts,
        now=state.now,
        k=state.k,
        e=state.e,
        reconcile=result,
        connected=state.connected,
        halted=state.halted,
        quarantined=state.quarantined,
        instruments=state.instruments,
        assets=state.assets,
    )

