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

from events.facts import key_symbol
from kernel.money import ZERO
from kernel.state import AccountState, Moment

Rule = Literal["R1", "R2", "R3", "R4", "R5", "R6"]


class Verdict(enum.Enum):
    OK = "OK"
    UNKNOWN = "UNKNOWN"
    WARN = "WARN"
    ERROR = "ERROR"

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


class ReconcileConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Bounds of the rules. Amounts are in the compared asset's units."""

    capital_epsilon: Decimal = Decimal("0.0001")
    pending_fee_bound: Decimal = Decimal("20")
    realized_rounding: Decimal = Decimal("0.05")
    mark_staleness_factor: Decimal = Decimal("0.003")
    leverage_rounding_band: Decimal = Decimal("2")
    settle_window_ns: int = 5_000_000_000


class Check(msgspec.Struct, frozen=True, kw_only=True):
    rule: Rule
    subject: str
    verdict: Verdict
    kernel: str | None
    venue: str | None
    reason: str


class ReconcileResult(msgspec.Struct, frozen=True, kw_only=True):
    verdict: Verdict
    checks: tuple[Check, ...]
    #: The earliest event time at which a WARN `PENDING_REPORT` turns into ERROR.
    expires_at: int | None = None


class _Pending(msgspec.Struct):
    """Collects the deadlines of the pending-report checks of one reconcile pass."""

    now: int
    window: int
    expires_at: int | None = None

    def classify(self, moved: Moment | None, report_ts: int | None) -> tuple[Verdict, str] | None:
        """WARN/ERROR if K moved after the venue's report, else None (not pending)."""
        if moved is None or report_ts is None or report_ts >= moved.venue_ts:
            return None
        deadline = moved.recv_ts + self.window
        if self.now > deadline:
            return Verdict.ERROR, "PENDING_REPORT_EXPIRED"
        if self.expires_at is None or deadline < self.expires_at:
            self.expires_at = deadline
        return Verdict.WARN, "PENDING_REPORT"


def _s(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def _unknown(rule: Rule, subject: str, kernel: Decimal | str | None) -> Check:
    k = kernel if isinstance(kernel, str) or kernel is None else str(kernel)
    return Check(rule=rule, subject=subject, verdict=Verdict.UNKNOWN, kernel=k, venue=None,
                 reason="NO_VENUE_REPORT")


def _latest(moments: list[Moment | None]) -> Moment | None:
    present = [m for m in moments if m is not None]
    return max(present, key=lambda m: m.venue_ts) if present else None


def _banded(
    rule: Rule,
    subject: str,
    k: Decimal,
    e: Decimal,
    eps: Decimal,
    pending: tuple[Verdict, str] | None,
    band: Decimal,
    band_reason: str,
) -> Check:
    d = abs(k - e)
    if d <= eps:
        verdict, reason = Verdict.OK, "MATCH"
    elif pending is not None:
        verdict, reason = pending
    elif d <= band:
        verdict, reason = Verdict.WARN, band_reason
    else:
        verdict, reason = Verdict.ERROR, "MISMATCH"
    return Check(rule=rule, subject=subject, verdict=verdict, kernel=str(k), venue=str(e),
                 reason=reason)


def r1_capital(s: AccountState, cfg: ReconcileConfig, p: _Pending) -> list[Check]:
    """K capital vs the venue's wallet balance, per asset."""
    balances = s.e.balances
    assets = sorted(s.k.wallets.keys() | (balances or {}).keys())
    if balances is None:
        return [_unknown("R1", a, s.k.wallets.get(a)) for a in assets]
    out = []
    for a in assets:
        k = s.k.wallets.get(a, ZERO)
        b = balances.get(a)
        e = b.wallet if b is not None else ZERO
        pending = p.classify(s.wallet_moved.get(a), s.e.balances_ts)
        out.append(_banded("R1", a, k, e, cfg.capital_epsilon, pending,
                           cfg.pending_fee_bound, "UNSETTLED_FEE"))
    return out


def r2_fill_pnl(s: AccountState, cfg: ReconcileConfig) -> list[Check]:
    """K's realized PnL of the last fill vs the venue's figure for that same fill."""
    f = s.last_fill
    if f is None:
        return []
    if f.venue is None:
        return [_unknown("R2", f.dedup_key, f.kernel)]
    return [_banded("R2", f.dedup_key, f.kernel, f.venue, cfg.capital_epsilon, None,
                    cfg.realized_rounding, "LOT_STEP_ROUNDING")]


def r3_quantity(s: AccountState, cfg: ReconcileConfig, p: _Pending) -> list[Check]:
    """K position quantity vs the venue's, per position key, within one lot step."""
    reported = s.e.positions
    keys = sorted(s.k.positions.keys() | (reported or {}).keys())
    if reported is None:
        return [_unknown("R3", key, s.k.positions[key].qty) for key in keys]
    out = []
    for key in keys:
        kp = s.k.positions.get(key)
        ep = reported.get(key)
        k = kp.qty if kp is not None else ZERO
        e = ep.qty if ep is not None else ZERO
        symbol = (kp or ep).symbol  # type: ignore[union-attr]
        pending = p.classify(s.position_moved.get(key), s.e.positions_ts)
        lot = s.instruments[symbol].lot_size
        out.append(_banded("R3", key, k, e, ZERO, pending, lot, "LOT_STEP_ROUNDING"))
    return out


def _venue_notional(s: AccountState) -> tuple[dict[str, Decimal], set[str]]:
    """The venue's open notional per settlement asset, and the assets where a mark is missing."""
    out: dict[str, Decimal] = {}
    missing: set[str] = set()
    for ep in (s.e.positions or {}).values():
        inst = s.instruments[ep.symbol]
        a = inst.settle
        if ep.mark_price is None:
            missing.add(a)
            continue
        if inst.instrument_kind == "inverse":
            n = abs(ep.qty) * inst.contract_size / ep.mark_price
        else:
            n = abs(ep.qty) * inst.contract_size * ep.mark_price
        out[a] = out.get(a, ZERO) + n
    return out, missing


def _asset_moved(s: AccountState, asset: str) -> Moment | None:
    return _latest([
        m for key, m in s.position_moved.items()
        if s.instruments[key_symbol(key)].settle == asset
    ])


def r4_notional(s: AccountState, cfg: ReconcileConfig, p: _Pending) -> list[Check]:
    """K open notional (Σ|qty|·mark at K's marks) vs the venue's, per settlement asset."""
    if s.e.positions is None:
        return [_unknown("R4", a, n) for a, n in sorted(s.k.open_notional.items())]
    venue, missing = _venue_notional(s)
    out = []
    for a in sorted(s.k.open_notional.keys() | venue.keys() | missing):
        k = s.k.open_notional.get(a, ZERO)
        if a in missing:
            out.append(Check(rule="R4", subject=a, verdict=Verdict.UNKNOWN, kernel=str(k),
                             venue=None, reason="NO_VENUE_MARK"))
            continue
        e = venue.get(a, ZERO)
        pending = p.classify(_asset_moved(s, a), s.e.positions_ts)
        band = max(k, e) * cfg.mark_staleness_factor
        out.append(_banded("R4", a, k, e, cfg.capital_epsilon, pending, band,
                           "MARK_STALENESS"))
    return out


def r5_margin(s: AccountState, cfg: ReconcileConfig, p: _Pending) -> list[Check]:
    """K used margin (Σ notional/leverage) vs the venue's, in the venue's margin asset."""
    m = s.e.margin
    if m is None or m.used is None:
        return [_unknown("R5", a, v) for a, v in sorted(s.k.used_margin.items())]
    k = s.k.used_margin.get(m.asset, ZERO)
    pending = p.classify(_asset_moved(s, m.asset), s.e.balances_ts)
    return [_banded("R5", m.asset, k, m.used, cfg.capital_epsilon, pending,
                    cfg.leverage_rounding_band, "LEVERAGE_ROUNDING")]


def r6_open_keys(s: AccountState, cfg: ReconcileConfig, p: _Pending) -> list[Check]:
    """The set of open position keys in K vs in E."""
    k_keys = sorted(s.k.positions)
    if s.e.positions is None:
        return [_unknown("R6", "open_keys", ",".join(k_keys))] if k_keys else []
    e_keys = sorted(s.e.positions)
    kernel, venue = ",".join(k_keys), ",".join(e_keys)
    differ = set(k_keys) ^ set(e_keys)
    if not differ:
        verdict, reason = Verdict.OK, "MATCH"
    else:
        verdicts = [p.classify(s.position_moved.get(key), s.e.positions_ts) for key in sorted(differ)]
        if any(v is None for v in verdicts):
            verdict, reason = Verdict.ERROR, "MISMATCH"
        else:
            verdict, reason = max(verdicts, key=lambda v: v[0].rank)  # type: ignore[index,union-attr]
    return [Check(rule="R6", subject="open_keys", verdict=verdict, kernel=kernel, venue=venue,
                  reason=reason)]


def reconcile(s: AccountState, cfg: ReconcileConfig) -> ReconcileResult:
    p = _Pending(now=s.now, window=cfg.settle_window_ns)
    checks = (
        r1_capital(s, cfg, p)
        + r2_fill_pnl(s, cfg)
        + r3_quantity(s, cfg, p)
        + r4_notional(s, cfg, p)
        + r5_margin(s, cfg, p)
        + r6_open_keys(s, cfg, p)
    )
    worst = max((c.verdict for c in checks), default=Verdict.OK, key=lambda v: v.rank)
    return ReconcileResult(verdict=worst, checks=tuple(checks), expires_at=p.expires_at)


__all__ = ["Check", "ReconcileConfig", "ReconcileResult", "Verdict", "reconcile"]
