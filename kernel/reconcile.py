"""R1–R6: how far K (the kernel's ledger) is from E (the venue's reports).

Each rule is a small pure function yielding typed `Check`s. A check's verdict is
OK, UNKNOWN (the venue has not reported the value), WARN (explained, with a reason
code) or ERROR; the snapshot's verdict is the worst. docs/reconcile.md is the
reference for every rule, band and reason code.

Pending reports: when a difference exists only because the venue's last report
predates a fact that moved K (its venue time is older than the fact's), the check is
WARN `PENDING_REPORT` until `settle_window_ns` after the kernel received that fact,
and ERROR `PENDING_REPORT_EXPIRED` after. Time is the kernel's event-time clock
(`AccountState.now`), so replays reach the same verdicts.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Literal

import msgspec

from kernel.ledger import KLedger, value
from kernel.money import ZERO
from kernel.state import AccountState, Moment
from kernel.venue import VenueView

Rule = Literal["R1", "R2", "R3", "R4", "R5", "R6"]


class Verdict(enum.Enum):
    OK = "OK"
    UNKNOWN = "UNKNOWN"
    WARN = "WARN"
    ERROR = "ERROR"

    # Members are singletons: hash by identity, in C, instead of Enum's hash of the name.
    __hash__ = object.__hash__

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self.rank < other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self.rank > other.rank


_RANK = {Verdict.OK: 0, Verdict.UNKNOWN: 1, Verdict.WARN: 2, Verdict.ERROR: 3}
_BY_RANK = {rank: v for v, rank in _RANK.items()}


class ReconcileConfig(
    msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True
):
    """Bounds of the rules. Amounts are in the compared asset's units."""

    capital_epsilon: Decimal = Decimal("0.0001")
    pending_fee_bound: Decimal = Decimal("20")
    realized_rounding: Decimal = Decimal("0.05")
    mark_staleness_factor: Decimal = Decimal("0.003")
    leverage_rounding_band: Decimal = Decimal("2")
    settle_window_ns: int = 5_000_000_000


class Check(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    rule: Rule
    subject: str
    verdict: Verdict
    #: The compared values (a set of keys, for R6); None where the venue has not reported.
    kernel: Decimal | str | None
    venue: Decimal | str | None
    reason: str
    #: For a WARN `PENDING_REPORT`: the event time at which it becomes ERROR.
    expires_at: int | None = None


class ReconcileResult(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    verdict: Verdict
    #: The earliest event time at which a WARN `PENDING_REPORT` turns into ERROR.
    expires_at: int | None
    r1: tuple[Check, ...]
    r2: tuple[Check, ...]
    r3: tuple[Check, ...]
    r4: tuple[Check, ...]
    r5: tuple[Check, ...]
    r6: tuple[Check, ...]

    @property
    def checks(self) -> tuple[Check, ...]:
        return self.r1 + self.r2 + self.r3 + self.r4 + self.r5 + self.r6


Pending = tuple[Verdict, str, int | None]


def pending(moved: Moment | None, report_ts: int | None, now: int, window: int) -> Pending | None:
    """WARN (until the deadline) or ERROR if K moved after the venue's report, else None."""
    if moved is None or report_ts is None or report_ts >= moved.venue_ts:
        return None
    deadline = moved.recv_ts + window
    if now > deadline:
        return Verdict.ERROR, "PENDING_REPORT_EXPIRED", None
    return Verdict.WARN, "PENDING_REPORT", deadline


def _unknown(rule: Rule, subject: str, kernel: Decimal | str | None) -> Check:
    return Check(
        rule=rule,
        subject=subject,
        verdict=Verdict.UNKNOWN,
        kernel=kernel,
        venue=None,
        reason="NO_VENUE_REPORT",
    )


def _banded(
    rule: Rule,
    subject: str,
    k: Decimal,
    e: Decimal,
    eps: Decimal,
    late: Pending | None,
    band: Decimal,
    band_reason: str,
) -> Check:
    d = abs(k - e)
    expires_at = None
    if d <= eps:
        verdict, reason = Verdict.OK, "MATCH"
    elif late is not None:
        verdict, reason, expires_at = late
    elif d <= band:
        verdict, reason = Verdict.WARN, band_reason
    else:
        verdict, reason = Verdict.ERROR, "MISMATCH"
    return Check(
        rule=rule,
        subject=subject,
        verdict=verdict,
        kernel=k,
        venue=e,
        reason=reason,
        expires_at=expires_at,
    )


def r1_capital(s: AccountState, cfg: ReconcileConfig) -> tuple[Check, ...]:
    """K capital vs the venue's wallet balance, per asset."""
    balances = s.e.balances
    assets = sorted(s.k.wallets.keys() | (balances or {}).keys())
    if balances is None:
        return tuple(_unknown("R1", a, s.k.wallets.get(a)) for a in assets)
    out: list[Check] = []
    for a in assets:
        k = s.k.wallets.get(a, ZERO)
        b = balances.get(a)
        e = b.wallet if b is not None else ZERO
        late = pending(s.wallet_moved.get(a), s.e.balances_ts, s.now, cfg.settle_window_ns)
        out.append(
            _banded(
                "R1", a, k, e, cfg.capital_epsilon, late, cfg.pending_fee_bound, "UNSETTLED_FEE"
            )
        )
    return tuple(out)


def r2_fill_pnl(s: AccountState, cfg: ReconcileConfig) -> tuple[Check, ...]:
    """K's realized PnL of the last fill vs the venue's figure for that same fill."""
    f = s.last_fill
    if f is None:
        return ()
    if f.venue is None:
        return (_unknown("R2", f.dedup_key, f.kernel),)
    return (
        _banded(
            "R2",
            f.dedup_key,
            f.kernel,
            f.venue,
            cfg.capital_epsilon,
            None,
            cfg.realized_rounding,
            "LOT_STEP_ROUNDING",
        ),
    )


def r3_quantity(s: AccountState, cfg: ReconcileConfig) -> tuple[Check, ...]:
    """K position quantity vs the venue's, per position key, within one lot step."""
    reported = s.e.positions
    keys = sorted(s.k.positions.keys() | (reported or {}).keys())
    if reported is None:
        return tuple(_unknown("R3", key, s.k.positions[key].qty) for key in keys)
    out: list[Check] = []
    for key in keys:
        kp = s.k.positions.get(key)
        ep = reported.get(key)
        k = kp.qty if kp is not None else ZERO
        e = ep.qty if ep is not None else ZERO
        symbol = (kp or ep).symbol  # type: ignore[union-attr]
        late = pending(s.position_moved.get(key), s.e.positions_ts, s.now, cfg.settle_window_ns)
        lot = s.instruments[symbol].lot_size
        out.append(_banded("R3", key, k, e, ZERO, late, lot, "LOT_STEP_ROUNDING"))
    return tuple(out)


def r4_notional(s: AccountState, cfg: ReconcileConfig) -> tuple[Check, ...]:
    """K open notional (Σ|qty|·mark at K's marks) vs the venue's, per settlement asset."""
    venue, missing = s.e.notional, s.e.unmarked
    if venue is None:
        return tuple(_unknown("R4", a, n) for a, n in sorted(s.k.open_notional.items()))
    out: list[Check] = []
    for a in sorted(s.k.open_notional.keys() | venue.keys() | set(missing)):
        k = s.k.open_notional.get(a, ZERO)
        if a in missing:
            out.append(
                Check(
                    rule="R4",
                    subject=a,
                    verdict=Verdict.UNKNOWN,
                    kernel=k,
                    venue=None,
                    reason="NO_VENUE_MARK",
                )
            )
            continue
        e = venue.get(a, ZERO)
        late = pending(s.asset_moved.get(a), s.e.positions_ts, s.now, cfg.settle_window_ns)
        band = max(k, e) * cfg.mark_staleness_factor
        out.append(_banded("R4", a, k, e, cfg.capital_epsilon, late, band, "MARK_STALENESS"))
    return tuple(out)


def r5_margin(s: AccountState, cfg: ReconcileConfig) -> tuple[Check, ...]:
    """K used margin (Σ notional/leverage) vs the venue's, in the venue's margin asset."""
    m = s.e.margin
    if m is None or m.used is None:
        return tuple(_unknown("R5", a, v) for a, v in sorted(s.k.used_margin.items()))
    k = s.k.used_margin.get(m.asset, ZERO)
    late = pending(s.asset_moved.get(m.asset), s.e.balances_ts, s.now, cfg.settle_window_ns)
    d = abs(k - m.used)
    if d > cfg.capital_epsilon and late is None and d <= max(k, m.used) * cfg.mark_staleness_factor:
        # K values margin at its own, newer marks. If K's positions at the venue's marks
        # give the venue's figure, the marks explain the difference, not the leverage.
        at_venue = _margin_at_venue_marks(s, m.asset)
        if at_venue is not None and abs(at_venue - m.used) <= cfg.capital_epsilon:
            return (Check(rule="R5", subject=m.asset, verdict=Verdict.WARN, kernel=k,
                          venue=m.used, reason="MARK_STALENESS"),)
    return (
        _banded(
            "R5",
            m.asset,
            k,
            m.used,
            cfg.capital_epsilon,
            late,
            cfg.leverage_rounding_band,
            "LEVERAGE_ROUNDING",
        ),
    )


def _margin_at_venue_marks(s: AccountState, asset: str) -> Decimal | None:
    """K's used margin in `asset` with each position at the venue's reported mark; None
    when the venue has not reported a mark for one of them."""
    reported = s.e.positions
    if reported is None:
        return None
    total = ZERO
    for key, pos in s.k.positions.items():
        inst = s.instruments[pos.symbol]
        if inst.settle != asset:
            continue
        ep = reported.get(key)
        if ep is None or ep.mark_price is None:
            return None
        total += value(pos, inst, ep.mark_price, s.k.leverage.get(pos.symbol)).margin
    return total


def r6_open_keys(s: AccountState, cfg: ReconcileConfig) -> tuple[Check, ...]:
    """The set of open position keys in K vs in E."""
    k_keys = sorted(s.k.positions)
    if s.e.positions is None:
        return (_unknown("R6", "open_keys", ",".join(k_keys)),) if k_keys else ()
    e_keys = sorted(s.e.positions)
    kernel, venue = ",".join(k_keys), ",".join(e_keys)
    differ = set(k_keys) ^ set(e_keys)
    expires_at = None
    if not differ:
        verdict, reason = Verdict.OK, "MATCH"
    else:
        lates = [
            pending(s.position_moved.get(key), s.e.positions_ts, s.now, cfg.settle_window_ns)
            for key in sorted(differ)
        ]
        if any(late is None for late in lates):
            verdict, reason = Verdict.ERROR, "MISMATCH"
        else:
            worst = max((late for late in lates if late is not None), key=_severity)
            verdict, reason, expires_at = worst
    return (
        Check(
            rule="R6",
            subject="open_keys",
            verdict=verdict,
            kernel=kernel,
            venue=venue,
            reason=reason,
            expires_at=expires_at,
        ),
    )


def _severity(late: Pending) -> tuple[int, int]:
    # The worst verdict; among pending WARNs, the earliest deadline.
    return late[0].rank, -(late[2] or 0)


def _live(checks: tuple[Check, ...], now: int) -> bool:
    return all(c.expires_at is None or now <= c.expires_at for c in checks)


def reconcile(
    s: AccountState,
    cfg: ReconcileConfig,
    prev: tuple[KLedger, VenueView, ReconcileResult] | None = None,
) -> ReconcileResult:
    """Every rule's checks for `s`. With `prev` (the K, E and result of an earlier state
    under the same `cfg`), a rule whose inputs are the very same objects, and none of
    whose pending windows expired, keeps its earlier checks: they are what it would
    compute again. (Every fact that moves the last fill or a pending-report clock also
    replaces the K wallets or positions mapping named below.)"""
    k, e, now = s.k, s.e, s.now
    if prev is None:
        r1, r2, r3 = r1_capital(s, cfg), r2_fill_pnl(s, cfg), r3_quantity(s, cfg)
        r4, r5, r6 = r4_notional(s, cfg), r5_margin(s, cfg), r6_open_keys(s, cfg)
    else:
        pk, pe, p = prev
        same_wallets = k.wallets is pk.wallets
        same_positions = k.positions is pk.positions and e.positions is pe.positions
        r1 = (
            p.r1
            if same_wallets and e.balances is pe.balances and _live(p.r1, now)
            else r1_capital(s, cfg)
        )
        r2 = p.r2 if same_wallets else r2_fill_pnl(s, cfg)
        r3 = p.r3 if same_positions and _live(p.r3, now) else r3_quantity(s, cfg)
        r4 = (
            p.r4
            if same_positions and k.open_notional is pk.open_notional and _live(p.r4, now)
            else r4_notional(s, cfg)
        )
        r5 = (
            p.r5
            if same_positions
            and k.used_margin is pk.used_margin
            and e.balances is pe.balances
            and _live(p.r5, now)
            else r5_margin(s, cfg)
        )
        r6 = p.r6 if same_positions and _live(p.r6, now) else r6_open_keys(s, cfg)
    worst = 0
    deadline = None
    for group in (r1, r2, r3, r4, r5, r6):
        for c in group:
            rank = _RANK[c.verdict]
            if rank > worst:
                worst = rank
            if c.expires_at is not None and (deadline is None or c.expires_at < deadline):
                deadline = c.expires_at
    return ReconcileResult(
        verdict=_BY_RANK[worst], expires_at=deadline, r1=r1, r2=r2, r3=r3, r4=r4, r5=r5, r6=r6
    )


__all__ = ["Check", "ReconcileConfig", "ReconcileResult", "Verdict", "reconcile"]
