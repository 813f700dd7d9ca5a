"""R1–R7: how far K (the kernel's ledger) is from E (the venue's reports).

Each rule is a small pure function yielding typed `Check`s. A check's verdict is OK,
UNKNOWN (the venue has not reported the value), WARN (a cause the rule checked, with a
reason code) or ERROR; the snapshot's verdict is the worst. docs/reconcile.md is the
reference for every rule and reason code.

No difference is explained by its size. A rule compares K with E within the asset's
epsilon (`MATCH`); failing that it recomputes K the way the venue computes and reports:

* `VENUE_ROUNDING` (OK): K with the venue's documented rounding (`asset_defined`: each
  fill's realized PnL, or the figure itself, at the asset's precision) equals E.
* `AT_VENUE_MARKS` (OK): K's own positions valued at the venue's reported marks equal E;
  the check keeps K at its own marks in `kernel`, so the snapshot shows the marks' gap.
* `PENDING_REPORT` (WARN): the venue's last report predates a fact that moved K. It
  becomes ERROR `PENDING_REPORT_EXPIRED` `settle_window_ns` after the kernel received
  that fact, on the kernel's event-time clock (`AccountState.now`), so replays agree.

Anything else is ERROR `MISMATCH`, however small.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import partial
from typing import Literal

import msgspec

from events.facts import AssetDefined
from kernel.ledger import KLedger, notional, value
from kernel.money import ZERO, round_to
from kernel.state import AccountState, Moment
from kernel.venue import VenueView

Rule = Literal["R1", "R2", "R3", "R4", "R5", "R6", "R7"]


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
    """What counts as equal, per asset, and how long a pending report may stay pending.

    An epsilon is not a band for unexplained differences: a difference above it that no
    checked cause explains is ERROR. Keep it at the venue's last digit or below. The
    daemon's config loader checks that every figure is >= 0."""

    #: Tolerated difference of amounts in each asset (R1, R2, R4, R5), by asset.
    epsilon: dict[str, Decimal] = {}
    #: For assets not in `epsilon`.
    default_epsilon: Decimal = Decimal(0)
    #: Tolerated difference of prices (R7: K's average entry vs the venue's).
    price_epsilon: Decimal = Decimal(0)
    settle_window_ns: int = 5_000_000_000

    def eps(self, asset: str) -> Decimal:
        return self.epsilon.get(asset, self.default_epsilon)


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
    #: K recomputed under the cause the reason names (at the venue's marks, with its
    #: rounding), where that is what matched E.
    explained: Decimal | None = None
    #: A plain note on what was compared where it is not the obvious (e.g. E computed by
    #: the kernel because the venue does not report the figure).
    detail: str = ""


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
    r7: tuple[Check, ...] = ()

    @property
    def by_rule(self) -> tuple[tuple[Rule, tuple[Check, ...]], ...]:
        return (("R1", self.r1), ("R2", self.r2), ("R3", self.r3), ("R4", self.r4),
                ("R5", self.r5), ("R6", self.r6), ("R7", self.r7))

    @property
    def checks(self) -> tuple[Check, ...]:
        return self.r1 + self.r2 + self.r3 + self.r4 + self.r5 + self.r6 + self.r7


Pending = tuple[Verdict, str, int | None]


def pending(moved: Moment | None, report_ts: int | None, now: int, window: int) -> Pending | None:
    """WARN (until the deadline) or ERROR if K moved after the venue's report, else None."""
    if moved is None or report_ts is None or report_ts >= moved.venue_ts:
        return None
    deadline = moved.recv_ts + window
    if now > deadline:
        return Verdict.ERROR, "PENDING_REPORT_EXPIRED", None
    return Verdict.WARN, "PENDING_REPORT", deadline


def _unknown(rule: Rule, subject: str, kernel: Decimal | str | None,
             reason: str = "NO_VENUE_REPORT", detail: str = "") -> Check:
    return Check(rule=rule, subject=subject, verdict=Verdict.UNKNOWN, kernel=kernel,
                 venue=None, reason=reason, detail=detail)


Cause = tuple[str, Callable[[], Iterator[Decimal]]]


def _judge(
    rule: Rule,
    subject: str,
    k: Decimal,
    e: Decimal,
    eps: Decimal,
    late: Pending | None,
    causes: tuple[Cause, ...] = (),
    detail: str = "",
) -> Check:
    """MATCH within `eps`; else the first cause whose recomputed K is within `eps` of E
    (OK, like compared with like); else pending; else ERROR."""
    if abs(k - e) <= eps:
        return Check(rule=rule, subject=subject, verdict=Verdict.OK, kernel=k, venue=e,
                     reason="MATCH", detail=detail)
    for reason, candidates in causes:
        for explained in candidates():
            if abs(explained - e) <= eps:
                return Check(rule=rule, subject=subject, verdict=Verdict.OK, kernel=k,
                             venue=e, reason=reason, explained=explained, detail=detail)
    if late is not None:
        verdict, reason, expires_at = late
        return Check(rule=rule, subject=subject, verdict=verdict, kernel=k, venue=e,
                     reason=reason, expires_at=expires_at, detail=detail)
    return Check(rule=rule, subject=subject, verdict=Verdict.ERROR, kernel=k, venue=e,
                 reason="MISMATCH", detail=detail)


def _rounded(x: Decimal, asset: AssetDefined | None) -> Iterator[Decimal]:
    if asset is not None:
        yield round_to(x, asset.precision, asset.rounding)


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
        spec = s.assets.get(a)

        def at_venue_rounding(k: Decimal = k, a: str = a,
                              spec: AssetDefined | None = spec) -> Iterator[Decimal]:
            # Each fill's realized PnL as the venue rounds it, then the wallet at the
            # asset's precision.
            if spec is not None:
                with_fills = k + s.k.venue_rounding.get(a, ZERO)
                yield with_fills
                yield round_to(with_fills, spec.precision, spec.rounding)

        out.append(_judge("R1", a, k, e, cfg.eps(a), late,
                          (("VENUE_ROUNDING", at_venue_rounding),)))
    return tuple(out)


def r2_fill_pnl(s: AccountState, cfg: ReconcileConfig) -> tuple[Check, ...]:
    """K's realized PnL of each fill vs the venue's figure for that same fill: the last
    fill, and every earlier one whose mismatch no re-pricing has resolved yet."""
    out: list[Check] = [
        Check(rule="R2", subject=key, verdict=Verdict.ERROR, kernel=f.kernel, venue=f.venue,
              reason="MISMATCH")
        for key, f in sorted(s.fill_mismatches.items())
    ]
    f = s.last_fill
    if f is not None and f.dedup_key not in s.fill_mismatches:
        if f.venue is None:
            out.append(_unknown("R2", f.dedup_key, f.kernel))
        else:
            spec = s.assets.get(f.asset)
            out.append(_judge("R2", f.dedup_key, f.kernel, f.venue, cfg.eps(f.asset), None,
                              (("VENUE_ROUNDING", partial(_rounded, f.kernel, spec)),)))
    return tuple(out)


def r3_quantity(s: AccountState, cfg: ReconcileConfig) -> tuple[Check, ...]:
    """K position quantity vs the venue's, per position key, exactly: venues do not
    round positions, so any difference is a fill one side has and the other has not."""
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
        late = pending(s.position_moved.get(key), s.e.positions_ts, s.now, cfg.settle_window_ns)
        out.append(_judge("R3", key, k, e, ZERO, late))
    return tuple(out)


def _at_venue_marks(s: AccountState, asset: str, margin: bool) -> Iterator[Decimal]:
    """K's own positions settled in `asset`, each valued at the mark the venue reported
    for the same position key: their total notional (or used margin), then the same
    with each position's figure at the asset's precision. Nothing when the venue has not
    reported a mark for one of them."""
    reported = s.e.positions or {}
    exact = ZERO
    figures: list[Decimal] = []
    for key, pos in s.k.positions.items():
        inst = s.instruments[pos.symbol]
        if inst.settle != asset:
            continue
        ep = reported.get(key)
        if ep is None or ep.mark_price is None:
            return
        if margin:
            x = value(pos, inst, ep.mark_price, s.k.leverage.get(pos.symbol)).margin
        else:
            x = notional(pos.qty, inst, ep.mark_price)
        exact += x
        figures.append(x)
    yield exact
    spec = s.assets.get(asset)
    if spec is not None:
        yield sum((round_to(x, spec.precision, spec.rounding) for x in figures), ZERO)


def r4_notional(s: AccountState, cfg: ReconcileConfig) -> tuple[Check, ...]:
    """K open notional (Σ|qty|·cs·mark at K's marks) vs the venue's, per settlement
    asset. E is what the venue reports per position; where it reports no notional, E is
    computed from its qty and mark with K's instrument, and the check says so."""
    venue, missing = s.e.notional, s.e.unmarked
    if venue is None:
        return tuple(_unknown("R4", a, n) for a, n in sorted(s.k.open_notional.items()))
    out: list[Check] = []
    for a in sorted(s.k.open_notional.keys() | venue.keys() | set(missing)):
        k = s.k.open_notional.get(a, ZERO)
        if a in missing:
            out.append(_unknown("R4", a, k, "NO_VENUE_MARK"))
            continue
        detail = ("E computed from the venue's qty and mark with K's contract size: the"
                  " venue reports no notional" if a in s.e.notional_computed else "")
        e = venue.get(a, ZERO)
        late = pending(s.asset_moved.get(a), s.e.positions_ts, s.now, cfg.settle_window_ns)
        out.append(_judge("R4", a, k, e, cfg.eps(a), late,
                          (("AT_VENUE_MARKS", partial(_at_venue_marks, s, a, False)),),
                          detail))
    return tuple(out)


def r5_margin(s: AccountState, cfg: ReconcileConfig) -> tuple[Check, ...]:
    """K used margin (Σ notional/leverage) vs the venue's, per settlement asset. K's margin
    in an asset the venue reports no margin figure for is UNKNOWN, never skipped."""
    margins = s.e.margins or {}
    reported = {a for a, m in margins.items() if m.used is not None}
    out: list[Check] = []
    for a in sorted(s.k.used_margin.keys() | reported):
        k = s.k.used_margin.get(a, ZERO)
        m = margins.get(a)
        if m is None or m.used is None:
            detail = (f"the venue reports margin in {', '.join(sorted(reported))} only"
                      if reported else "")
            out.append(_unknown("R5", a, k, detail=detail))
            continue
        late = pending(s.asset_moved.get(a), s.e.balances_ts, s.now, cfg.settle_window_ns)
        check = _judge("R5", a, k, m.used, cfg.eps(a), late,
                       (("AT_VENUE_MARKS", partial(_at_venue_marks, s, a, True)),))
        if check.verdict is Verdict.ERROR and s.e.positions_ts not in (None, s.e.balances_ts):
            # The margin figure comes with the balance report, the venue's marks with the
            # positions report: from another moment, K at those marks is not like with
            # like. Until the two reports are of one moment, the venue's side is unknown.
            check = _unknown("R5", a, k, "NO_VENUE_MARK",
                             detail="the venue's margin and its marks are from different"
                                    " reports")
        out.append(check)
    return tuple(out)


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
        Check(rule="R6", subject="open_keys", verdict=verdict, kernel=kernel, venue=venue,
              reason=reason, expires_at=expires_at),
    )


def r7_entry_price(s: AccountState, cfg: ReconcileConfig) -> tuple[Check, ...]:
    """K's average entry price vs the venue's `entry_price`, per position key open on
    both sides (a key open on one side only is R3's and R6's). The venue prints its
    entry price at some precision: K rounded to the decimals the venue wrote is the
    rounding cause."""
    reported = s.e.positions
    if reported is None:
        return tuple(_unknown("R7", key, p.avg_open) for key, p in sorted(s.k.positions.items()))
    out: list[Check] = []
    for key in sorted(s.k.positions.keys() & reported.keys()):
        k = s.k.positions[key].avg_open
        e = reported[key].entry_price
        if e is None:
            out.append(_unknown("R7", key, k))
            continue
        late = pending(s.position_moved.get(key), s.e.positions_ts, s.now, cfg.settle_window_ns)
        places = max(0, -int(e.as_tuple().exponent))

        def at_venue_precision(k: Decimal = k, places: int = places) -> Iterator[Decimal]:
            yield round_to(k, places, "half_even")
            yield round_to(k, places, "half_up")

        out.append(_judge("R7", key, k, e, cfg.price_epsilon, late,
                          (("VENUE_ROUNDING", at_venue_precision),)))
    return tuple(out)


def _severity(late: Pending) -> tuple[int, int]:
    # The worst verdict; among pending WARNs, the earliest deadline.
    return late[0].rank, -(late[2] or 0)


def _rejudged(checks: tuple[Check, ...], figures: dict[str, Decimal], cfg: ReconcileConfig
              ) -> tuple[Check, ...] | None:
    """`checks` (all OK, by MATCH or at the venue's marks, whose recomputed `explained`
    still holds: E and what it was computed from are unchanged) with K's new `figures`;
    None when any check needs its rule run again."""
    out: list[Check] = []
    for c in checks:
        if c.verdict is not Verdict.OK or not isinstance(c.venue, Decimal):
            return None
        k = figures.get(c.subject, ZERO)
        if abs(k - c.venue) <= cfg.eps(c.subject):
            out.append(msgspec.structs.replace(c, kernel=k, reason="MATCH", explained=None))
        elif c.reason == "AT_VENUE_MARKS":
            out.append(msgspec.structs.replace(c, kernel=k))
        else:
            return None  # it matched before: whether a cause explains it now is unknown
    return tuple(out)


def _live(checks: tuple[Check, ...], now: int) -> bool:
    return all(c.expires_at is None or now <= c.expires_at for c in checks)


Previous = tuple[KLedger, VenueView, dict[str, AssetDefined], "ReconcileResult"]


def reconcile(s: AccountState, cfg: ReconcileConfig, prev: Previous | None = None
              ) -> ReconcileResult:
    """Every rule's checks for `s`. With `prev` (the K, E, asset rules and result of an
    earlier state under the same `cfg`), a rule whose inputs are the very same objects,
    and none of whose pending windows expired, keeps its earlier checks: they are what it
    would compute again. (Every fact that moves a fill check or a pending-report clock
    also replaces the K wallets or positions mapping named below.)"""
    k, e, now = s.k, s.e, s.now
    if prev is None or prev[2] is not s.assets:
        r1, r2, r3 = r1_capital(s, cfg), r2_fill_pnl(s, cfg), r3_quantity(s, cfg)
        r4, r5, r6 = r4_notional(s, cfg), r5_margin(s, cfg), r6_open_keys(s, cfg)
        r7 = r7_entry_price(s, cfg)
    else:
        pk, pe, _, p = prev
        same_wallets = k.wallets is pk.wallets
        same_positions = k.positions is pk.positions and e.positions is pe.positions
        r1 = (
            p.r1
            if same_wallets and e.balances is pe.balances and _live(p.r1, now)
            else r1_capital(s, cfg)
        )
        r2 = p.r2 if same_wallets else r2_fill_pnl(s, cfg)
        r3 = p.r3 if same_positions and _live(p.r3, now) else r3_quantity(s, cfg)
        # A mark moves K's figures but not what K at the venue's marks is (that reads K's
        # positions and leverage and E): an OK check is then re-judged, not recomputed.
        revalue = same_positions and k.leverage is pk.leverage
        r4 = (
            p.r4
            if same_positions and k.open_notional is pk.open_notional and _live(p.r4, now)
            else (_rejudged(p.r4, k.open_notional, cfg) if revalue else None)
            or r4_notional(s, cfg)
        )
        r5 = (
            p.r5
            if same_positions
            and k.used_margin is pk.used_margin
            and e.balances is pe.balances
            and _live(p.r5, now)
            else (_rejudged(p.r5, k.used_margin, cfg)
                  if revalue and e.balances is pe.balances else None)
            or r5_margin(s, cfg)
        )
        r6 = p.r6 if same_positions and _live(p.r6, now) else r6_open_keys(s, cfg)
        r7 = p.r7 if same_positions and _live(p.r7, now) else r7_entry_price(s, cfg)
    worst = 0
    deadline = None
    for group in (r1, r2, r3, r4, r5, r6, r7):
        for c in group:
            rank = _RANK[c.verdict]
            if rank > worst:
                worst = rank
            if c.expires_at is not None and (deadline is None or c.expires_at < deadline):
                deadline = c.expires_at
    return ReconcileResult(
        verdict=_BY_RANK[worst], expires_at=deadline, r1=r1, r2=r2, r3=r3, r4=r4, r5=r5, r6=r6,
        r7=r7,
    )


__all__ = ["Check", "ReconcileConfig", "ReconcileResult", "Verdict", "reconcile"]
