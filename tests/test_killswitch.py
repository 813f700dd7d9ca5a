"""kernel/killswitch.py: each trigger, fed snapshots the way the reconciler feeds them."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec

from events.control import TradingHalted, TradingResumed
from events.facts import AssetBalance, BalanceReported, TransferCompleted
from kernel.killswitch import KillSwitch, KillSwitchConfig
from kernel.reconcile import ReconcileConfig
from kernel.snapshot import AccountSnapshotV2, project
from kernel.state import GENESIS, fold

S = 1_000_000_000


def snaps(*events: object) -> list[AccountSnapshotV2]:
    out, s = [], GENESIS
    for seq, e in enumerate(events, 1):
        e = msgspec.structs.replace(e, recv_ts=e.venue_ts)  # type: ignore[type-var]
        s = fold(s, e, seq)  # type: ignore[arg-type]
        out.append(project(s, ReconcileConfig()))
    return out


def deposit(ts: int, amount: str, direction: str = "deposit") -> TransferCompleted:
    return TransferCompleted(venue_ts=ts, transfer_id=f"x{ts}", asset="USDT",
                             direction=direction, amount=D(amount))  # type: ignore[arg-type]


def wallet(ts: int, amount: str) -> BalanceReported:
    return BalanceReported(venue_ts=ts, balances=(AssetBalance(asset="USDT",
                                                               wallet=D(amount)),))


def reasons(ks: KillSwitch, run: list[AccountSnapshotV2]) -> list[str | None]:
    return [ks.snapshot(s) for s in run]


def test_an_error_halts_only_after_its_grace() -> None:
    ks = KillSwitch(KillSwitchConfig(error_grace_ns=10 * S))
    run = snaps(deposit(1 * S, "100"), wallet(2 * S, "90"), wallet(5 * S, "90"),
                wallet(13 * S, "90"))
    got = reasons(ks, run)
    assert got[:3] == [None, None, None]  # ERROR since 2 s: not yet 10 s
    assert got[3] is not None and got[3].startswith("reconcile R1 USDT ERROR MISMATCH for 11 s")


def test_an_error_that_clears_resets_its_clock() -> None:
    ks = KillSwitch(KillSwitchConfig(error_grace_ns=10 * S))
    run = snaps(deposit(1 * S, "100"), wallet(2 * S, "90"), wallet(8 * S, "100"),
                wallet(9 * S, "90"), wallet(15 * S, "90"))
    assert reasons(ks, run) == [None] * 5  # the second ERROR is only 6 s old


def test_an_error_acknowledged_by_a_resume_does_not_halt_again_until_it_returns() -> None:
    ks = KillSwitch(KillSwitchConfig(error_grace_ns=0))
    run = snaps(deposit(1 * S, "100"), wallet(2 * S, "90"),
                TradingHalted(venue_ts=3 * S, reason="kill switch"),
                TradingResumed(venue_ts=4 * S, reason="explained"), wallet(5 * S, "90"),
                wallet(6 * S, "100"), wallet(7 * S, "90"))
    got = reasons(ks, run)
    assert got[1] is not None and got[2:6] == [None] * 4
    assert got[6] is not None  # cleared at 6 s, back at 7 s


def test_a_loss_over_the_window_halts() -> None:
    ks = KillSwitch(KillSwitchConfig(halt_on_rules=(), max_loss={"USDT": D("50")},
                                     loss_window_ns=60 * S))
    run = snaps(deposit(1 * S, "1000"), deposit(2 * S, "30", "withdrawal"),
                deposit(3 * S, "30", "withdrawal"))
    got = reasons(ks, run)
    assert got[:2] == [None, None]
    assert got[2] == ("loss limit: USDT capital 940 is 60 below its peak 1000 within 60 s"
                      " (limit 50)")


def test_a_storm_of_bad_outcomes_halts() -> None:
    ks = KillSwitch(KillSwitchConfig(storm_count=3, storm_window_ns=10 * S))
    assert [ks.outcome(t * S, True) for t in (1, 20, 21)] == [None, None, None]
    assert ks.outcome(22 * S, True) == ("venue error storm: 3 commands rejected or"
                                        " unanswered within 10 s")
    assert ks.outcome(23 * S, False) is None


