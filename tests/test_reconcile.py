"""R1–R6 through `reconcile(state, cfg)`, with hand-checked K and E figures.

The base account: 10000 USDT deposited, leverage 10, bought 2 BTCUSDT @ 30000 paying
12 USDT, marked at 31000. So K has wallet 10000 − 12 = 9988, position 2, open notional
2·31000 = 62000 and used margin 62000 / 10 = 6200. Every event is stamped at
seq · 1 s (venue and receive time) unless a test sets its times.
"""

from __future__ import annotations

import itertools
from decimal import Decimal as D

import msgspec
import pytest

from events.codec import Event
from events.control import VenueConnected
from events.facts import (
    AssetBalance,
    BalanceReported,
    InstrumentDefined,
    LeverageSet,
    MarginReport,
    MarkPriceObserved,
    OrderFilled,
    PositionsReported,
    ReportedPosition,
    TransferCompleted,
)
from kernel.reconcile import Check, ReconcileConfig, ReconcileResult, Verdict, reconcile
from kernel.snapshot import project
from kernel.state import GENESIS, AccountState, fold

S = 1_000_000_000  # one second in ns
CFG = ReconcileConfig()
_ids = itertools.count(1)


# --- builders -------------------------------------------------------------------------


def linear(symbol: str = "BTCUSDT", cs: str = "1") -> InstrumentDefined:
    return InstrumentDefined(
        venue_ts=0, symbol=symbol, instrument_kind="linear", base=symbol[:-4], quote="USDT",
        settle="USDT", tick_size=D("0.1"), lot_size=D("0.001"), min_notional=D("5"),
        contract_size=D(cs),
    )


def fill(
    side: str, qty: str, px: str, *, fee: str = "0", symbol: str = "BTCUSDT",
    ps: str = "both", venue_pnl: str | None = None, ts: int = 0,
) -> OrderFilled:
    n = next(_ids)
    return OrderFilled(
        venue_ts=ts, recv_ts=ts, symbol=symbol, trade_id=f"t{n}", order_id=f"o{n}",
        side=side, qty=D(qty), price=D(px), fee=D(fee), fee_currency="USDT",  # type: ignore[arg-type]
        position_side=ps,  # type: ignore[arg-type]
        venue_realized_pnl=None if venue_pnl is None else D(venue_pnl),
    )


def deposit(amount: str, direction: str = "deposit") -> TransferCompleted:
    return TransferCompleted(venue_ts=0, transfer_id=f"x{next(_ids)}", asset="USDT",
                             direction=direction, amount=D(amount))  # type: ignore[arg-type]


def balances(wallet: str, used: str | None = None, *, ts: int = 0, recv: int = 0
             ) -> BalanceReported:
    margin = None if used is None else MarginReport(asset="USDT", used=D(used))
    return BalanceReported(venue_ts=ts, recv_ts=recv,
                           balances=(AssetBalance(asset="USDT", wallet=D(wallet)),),
                           margin=margin)


def pos(qty: str, mark: str | None = "31000", symbol: str = "BTCUSDT", ps: str = "both"
        ) -> ReportedPosition:
    return ReportedPosition(symbol=symbol, qty=D(qty), position_side=ps,  # type: ignore[arg-type]
                            mark_price=None if mark is None else D(mark))


def positions(*ps: ReportedPosition, ts: int = 0, recv: int = 0) -> PositionsReported:
    return PositionsReported(venue_ts=ts, recv_ts=recv, positions=ps)


def tick(recv: int) -> VenueConnected:
    """An event that moves only the kernel's clock."""
    return VenueConnected(venue_ts=recv, recv_ts=recv, venue="sim", session=str(next(_ids)))


def states(*events: Event) -> list[AccountState]:
    out, s = [], GENESIS
    for seq, e in enumerate(events, 1):
        e = msgspec.structs.replace(e, venue_ts=e.venue_ts or seq * S,
                                    recv_ts=e.recv_ts or seq * S)
        s = fold(s, e, seq)
        out.append(s)
    return out


def replay(*events: Event) -> AccountState:
    return states(*events)[-1]


def base(*more: Event) -> AccountState:
    """The base account (see the module docstring), then `more`."""
    return replay(
        linear(),
        deposit("10000"),
        LeverageSet(venue_ts=0, symbol="BTCUSDT", leverage=D("10")),
        fill("buy", "2", "30000", fee="12", venue_pnl="0"),
        MarkPriceObserved(venue_ts=0, symbol="BTCUSDT", price=D("31000")),
        *more,
    )


def only(result: ReconcileResult, rule: str, subject: str | None = None) -> Check:
    found = [c for c in result.checks
             if c.rule == rule and (subject is None or c.subject == subject)]
    assert len(found) == 1, found
    return found[0]


def verdict_reason(result: ReconcileResult, rule: str, subject: str | None = None
                   ) -> tuple[Verdict, str]:
    c = only(result, rule, subject)
    return c.verdict, c.reason


def num(x: D | str | None) -> D | None:
    """A compared value as a number (the core may carry it as a Decimal or a string)."""
    return None if x is None else D(x)


def seen(c: Check) -> tuple[Verdict, str, D | None, D | None]:
    return c.verdict, c.reason, num(c.kernel), num(c.venue)


def want(verdict: Verdict, reason: str, kernel: str | None, venue: str | None
         ) -> tuple[Verdict, str, D | None, D | None]:
    return verdict, reason, num(kernel), num(venue)


# --- no venue report yet --------------------------------------------------------------


def test_before_any_venue_report_every_rule_is_unknown() -> None:
    r = reconcile(base(), CFG)
    assert r.verdict is Verdict.UNKNOWN
    assert sorted(c.rule for c in r.checks) == ["R1", "R2", "R3", "R4", "R5", "R6"]
    for c in r.checks:
        if c.rule != "R2":
            assert (c.verdict, c.reason, c.venue) == (Verdict.UNKNOWN, "NO_VENUE_REPORT", None)
    # R2 needs no report: the fill itself said 0, and K realized 0 on an opening fill
    assert verdict_reason(r, "R2") == (Verdict.OK, "MATCH")
    assert num(only(r, "R1").kernel) == D("9988")  # 10000 − 12
    assert num(only(r, "R4").kernel) == D("62000")  # 2·31000


def test_an_unreported_balance_is_unknown_even_when_k_is_zero() -> None:
    s = replay(deposit("100"), deposit("100", "withdrawal"))
    assert s.k.wallets == {"USDT": D("0")}
    r = reconcile(s, CFG)
    assert verdict_reason(r, "R1", "USDT") == (Verdict.UNKNOWN, "NO_VENUE_REPORT")
    assert r.verdict is Verdict.UNKNOWN


def test_a_margin_report_without_used_margin_leaves_r5_unknown() -> None:
    s = base(BalanceReported(venue_ts=0, balances=(AssetBalance(asset="USDT", wallet=D("9988")),),
                             margin=MarginReport(asset="USDT", maintenance=D("310"))))
    assert verdict_reason(reconcile(s, CFG), "R5", "USDT") == (Verdict.UNKNOWN, "NO_VENUE_REPORT")


# --- everything agrees -----------------------------------------------------------------


def test_all_rules_ok_when_the_venue_agrees() -> None:
    r = reconcile(base(balances("9988", used="6200"), positions(pos("2"))), CFG)
    assert r.verdict is Verdict.OK
    assert {(c.rule, c.verdict, c.reason) for c in r.checks} == {
        (rule, Verdict.OK, "MATCH") for rule in ("R1", "R2", "R3", "R4", "R5", "R6")
    }
    assert r.expires_at is None


# --- R1 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("venue_wallet", "verdict", "reason"),
    [
        ("9988", Verdict.OK, "MATCH"),
        ("9988.0001", Verdict.OK, "MATCH"),  # |Δ| = 0.0001 = capital_epsilon
        ("9988.0002", Verdict.WARN, "UNSETTLED_FEE"),  # 0.0002 > epsilon
        ("10003", Verdict.WARN, "UNSETTLED_FEE"),  # |9988 − 10003| = 15 ≤ 20
        ("9968", Verdict.WARN, "UNSETTLED_FEE"),  # |9988 − 9968| = 20 = pending_fee_bound
        ("10008.5", Verdict.ERROR, "MISMATCH"),  # 20.5 > 20
        ("0", Verdict.ERROR, "MISMATCH"),  # a reported zero is a zero, not "unknown"
    ],
)
def test_r1_capital_vs_wallet(venue_wallet: str, verdict: Verdict, reason: str) -> None:
    r = reconcile(base(balances(venue_wallet)), CFG)
    c = only(r, "R1", "USDT")
    assert seen(c) == want(verdict, reason, "9988", venue_wallet)


def test_r1_an_asset_missing_from_a_complete_balance_report_is_zero_there() -> None:
    s = base(BalanceReported(venue_ts=0, balances=(AssetBalance(asset="BNB", wallet=D("25")),)))
    r = reconcile(s, CFG)
    assert verdict_reason(r, "R1", "USDT") == (Verdict.ERROR, "MISMATCH")  # 9988 vs 0
    assert verdict_reason(r, "R1", "BNB") == (Verdict.ERROR, "MISMATCH")  # 0 vs 25: 25 > 20


def test_r1_pending_fee_bound_is_one_absolute_amount_for_every_asset() -> None:
    # 0 BNB in K vs 1 BNB reported: |Δ| = 1 ≤ 20, so WARN, as for 1 USDT
    s = base(BalanceReported(venue_ts=0, balances=(AssetBalance(asset="USDT", wallet=D("9988")),
                                                   AssetBalance(asset="BNB", wallet=D("1")))))
    assert verdict_reason(reconcile(s, CFG), "R1", "BNB") == (Verdict.WARN, "UNSETTLED_FEE")


# --- pending reports -------------------------------------------------------------------

# The fill happens (venue and receive time) at 10 s; the venue's reports were taken at
# 9 s, before it, and arrive at 11 s. settle_window_ns = 5 s, so the deadline is 15 s.
FILL_TS = 10 * S
DEADLINE = FILL_TS + 5 * S


def pending_base(*more: Event) -> AccountState:
    return replay(
        linear(),
        deposit("10000"),
        fill("buy", "2", "30000", fee="12", venue_pnl="0", ts=FILL_TS),
        # the report predates the fill: wallet 10000, no position yet
        balances("10000", ts=9 * S, recv=11 * S),
        positions(ts=9 * S, recv=11 * S),
        *more,
    )


@pytest.mark.parametrize(
    ("now", "verdict", "reason"),
    [
        (None, Verdict.WARN, "PENDING_REPORT"),  # now = 11 s
        (DEADLINE, Verdict.WARN, "PENDING_REPORT"),  # now = 10 s + 5 s: still inside
        (DEADLINE + 1, Verdict.ERROR, "PENDING_REPORT_EXPIRED"),
    ],
)
def test_pending_report_r1_r3_r4_r6(now: int | None, verdict: Verdict, reason: str) -> None:
    s = pending_base() if now is None else pending_base(tick(now))
    r = reconcile(s, CFG)
    # K wallet 9988 vs E 10000: |Δ| = 12 would be UNSETTLED_FEE, but the report is stale
    assert verdict_reason(r, "R1", "USDT") == (verdict, reason)
    assert verdict_reason(r, "R3", "BTCUSDT") == (verdict, reason)  # K 2 vs E flat
    assert verdict_reason(r, "R4", "USDT") == (verdict, reason)  # K 2·30000 vs E 0
    assert verdict_reason(r, "R6") == (verdict, reason)  # {BTCUSDT} vs {}
    assert r.verdict is verdict
    assert r.expires_at == (DEADLINE if verdict is Verdict.WARN else None)


def test_the_clock_never_runs_backwards_so_an_expired_window_stays_expired() -> None:
    # a late event received "at 12 s" after one received at 15 s + 1 ns
    s = pending_base(tick(DEADLINE + 1), tick(12 * S))
    assert s.now == DEADLINE + 1  # max(recv_ts), not the last recv_ts
    r = reconcile(s, CFG)
    assert verdict_reason(r, "R1", "USDT") == (Verdict.ERROR, "PENDING_REPORT_EXPIRED")


def test_a_backfilled_older_fill_does_not_hide_a_newer_unreported_one() -> None:
    s = replay(
        linear(),
        fill("buy", "2", "30000", ts=20 * S),  # A: venue 20 s, received 20 s
        # B: venue 10 s, received 21 s (a REST backfill)
        msgspec.structs.replace(fill("buy", "1", "30000", ts=10 * S), recv_ts=21 * S),
        positions(pos("1", "30000"), ts=15 * S, recv=22 * S),  # taken at 15 s: B, not A
    )
    # K 2 + 1 = 3 vs E 1: the 2 missing are fill A (venue 20 s), which the report (15 s)
    # predates; now = 22 s ≤ 20 s + 5 s, so the difference is still pending
    r = reconcile(s, CFG)
    assert verdict_reason(r, "R3", "BTCUSDT") == (Verdict.WARN, "PENDING_REPORT")
    assert verdict_reason(r, "R4", "USDT") == (Verdict.WARN, "PENDING_REPORT")


def test_a_report_after_the_fill_is_not_pending() -> None:
    # the same stale figures, but taken at 12 s, after the fill at 10 s
    s = replay(linear(), deposit("10000"), fill("buy", "2", "30000", fee="12", ts=FILL_TS),
               balances("10000", ts=12 * S, recv=12 * S), positions(ts=12 * S, recv=12 * S))
    r = reconcile(s, CFG)
    assert verdict_reason(r, "R1", "USDT") == (Verdict.WARN, "UNSETTLED_FEE")  # 12 ≤ 20
    assert verdict_reason(r, "R3", "BTCUSDT") == (Verdict.ERROR, "MISMATCH")  # 2 vs 0
    assert verdict_reason(r, "R6") == (Verdict.ERROR, "MISMATCH")
    assert r.expires_at is None


def test_a_fresh_report_that_agrees_settles_the_pending_checks() -> None:
    # K at leverage 1 without a mark: used margin 2·30000 / 1 = 60000
    s = pending_base(balances("9988", used="60000", ts=13 * S, recv=13 * S),
                     positions(pos("2", mark="30000"), ts=13 * S, recv=13 * S),
                     tick(DEADLINE + 1))
    r = reconcile(s, CFG)
    assert r.verdict is Verdict.OK


# --- R2 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("venue_pnl", "verdict", "reason"),
    [
        # K: (31000 − 30000)·1 = 1000
        ("1000", Verdict.OK, "MATCH"),
        ("1000.03", Verdict.WARN, "LOT_STEP_ROUNDING"),  # 0.03 ≤ 0.05
        ("999.95", Verdict.WARN, "LOT_STEP_ROUNDING"),  # 0.05 = realized_rounding
        ("1000.06", Verdict.ERROR, "MISMATCH"),  # 0.06 > 0.05
        (None, Verdict.UNKNOWN, "NO_VENUE_REPORT"),
    ],
)
def test_r2_last_fill_realized(venue_pnl: str | None, verdict: Verdict, reason: str) -> None:
    closing = fill("sell", "1", "31000", venue_pnl=venue_pnl)
    c = only(reconcile(base(closing), CFG), "R2")
    assert c.subject == closing.dedup_key
    assert seen(c) == want(verdict, reason, "1000", venue_pnl)


def test_r2_compares_per_fill_not_cumulative() -> None:
    # first close: (31000 − 30000)·1 = 1000; second: (29000 − 30000)·1 = −1000.
    # Cumulative K realized is 0, but the second fill's own figure is −1000 on both sides.
    s = base(fill("sell", "1", "31000", venue_pnl="1000"),
             fill("sell", "1", "29000", venue_pnl="-1000"))
    assert s.k.realized_pnl == {"USDT": D("0")}
    c = only(reconcile(s, CFG), "R2")
    assert seen(c) == want(Verdict.OK, "MATCH", "-1000", "-1000")


def test_r2_without_a_fill_has_no_check() -> None:
    s = replay(deposit("100"), balances("100"))
    assert [c for c in reconcile(s, CFG).checks if c.rule == "R2"] == []


# --- R3 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("venue_qty", "verdict", "reason"),
    [
        ("2", Verdict.OK, "MATCH"),
        ("2.001", Verdict.WARN, "LOT_STEP_ROUNDING"),  # |2 − 2.001| = 0.001 = one lot
        ("1.999", Verdict.WARN, "LOT_STEP_ROUNDING"),
        ("2.002", Verdict.ERROR, "MISMATCH"),  # two lots
        ("-2", Verdict.ERROR, "MISMATCH"),  # wrong side: |2 − (−2)| = 4
    ],
)
def test_r3_quantity_per_key(venue_qty: str, verdict: Verdict, reason: str) -> None:
    c = only(reconcile(base(positions(pos(venue_qty))), CFG), "R3", "BTCUSDT")
    assert seen(c) == want(verdict, reason, "2", venue_qty)


def test_r3_hedge_mode_checks_each_side_on_its_own_key() -> None:
    s = replay(
        linear(),
        fill("buy", "1", "100", ps="long"),
        fill("sell", "2", "110", ps="short"),
        positions(pos("1", "105", ps="long"), pos("-1", "105", ps="short")),
    )
    r = reconcile(s, CFG)
    assert verdict_reason(r, "R3", "BTCUSDT|long") == (Verdict.OK, "MATCH")
    assert verdict_reason(r, "R3", "BTCUSDT|short") == (Verdict.ERROR, "MISMATCH")  # −2 vs −1
    assert verdict_reason(r, "R6") == (Verdict.OK, "MATCH")


# --- R4 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("venue_mark", "venue_notional", "verdict", "reason"),
    [
        ("31000", "62000", Verdict.OK, "MATCH"),
        # 2·31050 = 62100; |62000 − 62100| = 100 ≤ 62100·0.003 = 186.3
        ("31050", "62100", Verdict.WARN, "MARK_STALENESS"),
        # 2·31093 = 62186; Δ 186 ≤ 62186·0.003 = 186.558
        ("31093", "62186", Verdict.WARN, "MARK_STALENESS"),
        # 2·31100 = 62200; Δ 200 > 62200·0.003 = 186.6
        ("31100", "62200", Verdict.ERROR, "MISMATCH"),
    ],
)
def test_r4_notional_vs_notional(
    venue_mark: str, venue_notional: str, verdict: Verdict, reason: str
) -> None:
    c = only(reconcile(base(positions(pos("2", venue_mark))), CFG), "R4", "USDT")
    assert seen(c) == want(verdict, reason, "62000", venue_notional)


def test_r4_does_not_compare_notional_with_margin() -> None:
    # the seed compared K's notional 62000 with E's used margin 6200: a false ERROR
    r = reconcile(base(balances("9988", used="6200"), positions(pos("2"))), CFG)
    assert verdict_reason(r, "R4", "USDT") == (Verdict.OK, "MATCH")


def test_r4_scales_the_venue_notional_by_contract_size() -> None:
    s = replay(
        linear("XYZUSDT", cs="10"),
        fill("buy", "2", "2000", symbol="XYZUSDT"),
        MarkPriceObserved(venue_ts=0, symbol="XYZUSDT", price=D("2050")),
        positions(pos("2", "2050", symbol="XYZUSDT")),
    )
    c = only(reconcile(s, CFG), "R4", "USDT")
    assert seen(c) == want(Verdict.OK, "MATCH", "41000", "41000")  # 2·10·2050


def test_r4_a_reported_position_without_a_mark_is_unknown() -> None:
    c = only(reconcile(base(positions(pos("2", mark=None))), CFG), "R4", "USDT")
    assert seen(c) == want(Verdict.UNKNOWN, "NO_VENUE_MARK", "62000", None)


# --- R5 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("venue_used", "verdict", "reason"),
    [
        ("6200", Verdict.OK, "MATCH"),  # K: 2·31000 / 10
        ("6201.5", Verdict.WARN, "LEVERAGE_ROUNDING"),  # 1.5 ≤ 2
        ("6198", Verdict.WARN, "LEVERAGE_ROUNDING"),  # 2 = leverage_rounding_band
        ("6203", Verdict.ERROR, "MISMATCH"),  # 3 > 2
        ("620", Verdict.ERROR, "MISMATCH"),  # leverage 100 on the venue, 10 in K
    ],
)
def test_r5_used_margin(venue_used: str, verdict: Verdict, reason: str) -> None:
    c = only(reconcile(base(balances("9988", used=venue_used)), CFG), "R5", "USDT")
    assert seen(c) == want(verdict, reason, "6200", venue_used)


# --- R6 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reported", "venue_keys", "verdict", "reason"),
    [
        ((pos("2"),), "BTCUSDT", Verdict.OK, "MATCH"),
        ((), "", Verdict.ERROR, "MISMATCH"),  # K holds BTCUSDT, the venue nothing
        ((pos("0"),), "", Verdict.ERROR, "MISMATCH"),  # qty 0 is flat
        ((pos("2"), pos("1", "2000", symbol="ETHUSDT")), "BTCUSDT,ETHUSDT",
         Verdict.ERROR, "MISMATCH"),  # the venue holds a key K never opened
    ],
)
def test_r6_open_keys(
    reported: tuple[ReportedPosition, ...], venue_keys: str, verdict: Verdict, reason: str
) -> None:
    s = base(linear("ETHUSDT"), positions(*reported))
    c = only(reconcile(s, CFG), "R6")
    assert (c.verdict, c.reason, c.kernel, c.venue) == (verdict, reason, "BTCUSDT", venue_keys)


# --- the overall verdict ---------------------------------------------------------------


def test_verdicts_are_ordered_ok_unknown_warn_error() -> None:
    assert Verdict.OK < Verdict.UNKNOWN < Verdict.WARN < Verdict.ERROR
    assert max(Verdict.WARN, Verdict.ERROR, Verdict.OK) is Verdict.ERROR
    assert sorted([Verdict.ERROR, Verdict.OK, Verdict.WARN, Verdict.UNKNOWN]) == [
        Verdict.OK, Verdict.UNKNOWN, Verdict.WARN, Verdict.ERROR]


@pytest.mark.parametrize(
    ("more", "verdict"),
    [
        # all OK
        ((balances("9988", used="6200"), positions(pos("2"))), Verdict.OK),
        # R5 UNKNOWN (no margin figure), the rest OK
        ((balances("9988"), positions(pos("2"))), Verdict.UNKNOWN),
        # R1 WARN (Δ 15) beats R5 UNKNOWN
        ((balances("10003"), positions(pos("2"))), Verdict.WARN),
        # R3 ERROR (Δ 1) beats R1 WARN and R5 UNKNOWN
        ((balances("10003"), positions(pos("1"))), Verdict.ERROR),
    ],
)
def test_the_worst_check_wins(more: tuple[Event, ...], verdict: Verdict) -> None:
    r = reconcile(base(*more), CFG)
    assert r.verdict is verdict
    assert r.verdict is max((c.verdict for c in r.checks), key=lambda v: v.rank)


def test_config_bounds_are_honoured() -> None:
    tight = ReconcileConfig(pending_fee_bound=D("10"))
    # |9988 − 10003| = 15: WARN under the default bound 20, ERROR under 10
    assert verdict_reason(reconcile(base(balances("10003")), tight), "R1", "USDT") == (
        Verdict.ERROR, "MISMATCH")


# --- project() reuse ---------------------------------------------------------------------


def test_project_reuse_equals_a_fresh_reconcile_across_a_pending_window() -> None:
    seq = [
        linear(),
        deposit("10000"),
        fill("buy", "2", "30000", fee="12", venue_pnl="0", ts=FILL_TS),
        balances("10000", ts=9 * S, recv=11 * S),  # pending from here
        positions(ts=9 * S, recv=11 * S),
        tick(12 * S),
        tick(DEADLINE),  # still WARN
        tick(DEADLINE + 1),  # expired: ERROR without any change to K or E
        tick(DEADLINE + 2),
        balances("9988", used="60000", ts=16 * S, recv=16 * S),  # 2·30000 / 1
        positions(pos("2", "30000"), ts=16 * S, recv=16 * S),  # settled: OK
        tick(17 * S),
    ]
    encode = msgspec.json.Encoder(decimal_format="string").encode
    prev = None
    seen = []
    for s in states(*seq):
        snap = project(s, CFG, prev)
        fresh = reconcile(s, CFG)
        assert snap.reconcile == fresh
        assert encode(snap) == encode(project(s, CFG))
        seen.append(snap.reconcile.verdict)
        prev = snap
    # the sequence really crosses the window: WARN, then ERROR, then OK
    assert seen[4:] == [Verdict.WARN, Verdict.WARN, Verdict.WARN, Verdict.ERROR,
                        Verdict.ERROR, Verdict.ERROR, Verdict.OK, Verdict.OK]


def test_project_reuse_re_runs_r3_after_a_lot_size_change() -> None:
    seq = [
        linear(),
        fill("buy", "2", "30000", venue_pnl="0"),
        positions(pos("2.001", "30000")),  # |2 − 2.001| = 0.001: one lot of 0.001
        msgspec.structs.replace(linear(), lot_size=D("0.0001")),  # now ten lots
    ]
    prev = None
    for s in states(*seq):
        prev = project(s, CFG, prev)
        assert prev.reconcile == reconcile(s, CFG)
    assert verdict_reason(prev.reconcile, "R3", "BTCUSDT") == (Verdict.ERROR, "MISMATCH")


def test_r5_names_mark_staleness_when_the_venues_marks_explain_the_gap() -> None:
    # The venue reported at mark 31000: used margin 2·31000/10 = 6200. K has since seen
    # mark 31050: 2·31050/10 = 6210. At the venue's marks K's margin is 6200 exactly, and
    # 10 ≤ 6210·0.003 = 18.63: the marks explain it, not the leverage (whose band is 2).
    s = base(balances("9988", used="6200"), positions(pos("2", "31000")),
             MarkPriceObserved(venue_ts=0, symbol="BTCUSDT", price=D("31050")))
    c = only(reconcile(s, CFG), "R5", "USDT")
    assert seen(c) == want(Verdict.WARN, "MARK_STALENESS", "6210", "6200")


def test_r5_a_gap_beyond_the_staleness_band_is_still_an_error() -> None:
    # Mark 31100: K 6220 against 6200; 20 > 6220·0.003 = 18.66, and 20 > 2.
    s = base(balances("9988", used="6200"), positions(pos("2", "31000")),
             MarkPriceObserved(venue_ts=0, symbol="BTCUSDT", price=D("31100")))
    c = only(reconcile(s, CFG), "R5", "USDT")
    assert seen(c) == want(Verdict.ERROR, "MISMATCH", "6220", "6200")
