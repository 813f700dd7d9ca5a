"""The daemon against a faulty venue: duplicates, reorders, drops, malformed pushes, stale
reports and disconnects. Once the venue goes quiet, K is the venue's books exactly and
every rule is back to OK. In process (a real SQLite file, the real daemon and writer),
so the test can read the venue's ground truth.

Some seeds run the venue in hedge mode (a long and a short position per symbol, funding
per side), every fault on, so K's hedge path is exercised end to end. The venue keeps
money at 8 places and rounds each fill's realized PnL; K books it exactly, so K's wallet
plus what that rounding added (the venue's own tally) is the venue's wallet."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from adapters.sim.config import SimConfig, SimFaults, SimTrader
from adapters.sim.venue import SimVenue
from kernel.daemon.config import Config, load_config
from kernel.daemon.service import Daemon
from kernel.reconcile import Verdict


def campaign_config(seed: int, hedge_mode: bool = False) -> Config:
    base = load_config(None)
    sim = SimConfig(
        seed=seed, hedge_mode=hedge_mode, tick_s=0.05, funding_interval_s=1.0,
        report_delay_ms=50,
        trader=SimTrader(every_s=0.1),
        faults=SimFaults(duplicate=0.1, reorder=0.1, drop=0.1, malformed=0.05,
                         stale_reports=0.3, disconnect_every_s=1.5),
    )
    return msgspec.structs.replace(
        base,
        kernel=msgspec.structs.replace(base.kernel, resync_every_s=0.5, status_every_s=1.0),
        venue=msgspec.structs.replace(base.venue, sim=sim),
    )


def differences(daemon: Daemon, venue: SimVenue) -> list[str]:
    """What still separates K from the venue's books, and the rules not OK."""
    assert daemon._writer is not None
    snap = daemon._writer.snapshot
    k, truth = snap.k, venue.engine.truth()
    out = []
    assets = k.wallets.keys() | truth.wallets.keys()
    for a in sorted(assets):
        rounded = k.wallets.get(a, Decimal(0)) + truth.rounding.get(a, Decimal(0))
        if rounded != truth.wallets.get(a, Decimal(0)):
            out.append(f"wallet {a}: K {k.wallets.get(a)} (+ venue rounding {rounded})"
                       f" venue {truth.wallets.get(a)}")
    kp = {s: (p.qty, p.avg_open) for s, p in k.positions.items()}
    tp = {s: (h.qty, h.avg) for s, h in truth.positions.items()}
    if kp != tp:
        out.append(f"positions: K {kp} venue {tp}")
    kh = {s: (p.qty, p.avg_open) for s, p in k.holdings.items()}
    th = {s: (h.qty, h.avg) for s, h in truth.holdings.items()}
    if kh != th:
        out.append(f"holdings: K {kh} venue {th}")
    out += [f"{c.rule} {c.subject} {c.verdict.value} {c.reason}"
            for c in snap.reconcile.checks if c.verdict is not Verdict.OK]
    return out


@pytest.mark.parametrize(("seed", "hedge_mode"), [(11, False), (12, False), (13, True),
                                                  (14, True)])
async def test_after_the_venue_goes_quiet_k_is_its_books_and_every_rule_is_ok(
    tmp_path: Path, seed: int, hedge_mode: bool
) -> None:
    cfg = campaign_config(seed, hedge_mode)
    venue = SimVenue(cfg.venue.sim)
    daemon = Daemon(cfg, venue, tmp_path)
    run = asyncio.create_task(daemon.run())
    try:
        await asyncio.sleep(6.0)  # trading, funding, and a disconnect every ~1.5 s
        assert daemon._writer is not None
        state = daemon._writer.state
        assert state.quarantined > 0, "malformed pushes were quarantined"
        assert state.k.positions or state.k.holdings, "the trader traded"
        if hedge_mode:
            sides = {p.position_side for p in state.k.positions.values()}
            assert sides <= {"long", "short"} and sides, "K keys hedge positions by side"
            truth = venue.engine.truth()
            times = [f.ts_ns for f in truth.funding]
            assert any(times.count(t) > 1 for t in times), "both sides paid at one time"
        venue.engine.quiet()
        left: list[str] = []
        for _ in range(60):  # a resync every 0.5 s; reconnects back off up to a few s
            await asyncio.sleep(0.25)
            left = differences(daemon, venue)
            if not left and daemon.connected and daemon.queue.empty():
                break
        assert not left, left
    finally:
        daemon.stop()
        assert await asyncio.wait_for(run, 10) == 0
