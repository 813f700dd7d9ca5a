"""The kill switch: when trading must stop on its own. Pure: the shell feeds it each
published snapshot (one per committed batch: docs/snapshot.md, "What is computed when")
and the kernel's own command outcomes, and logs `trading_halted` with
the reason it returns; the diff then cancels every working order and the API refuses new
intents until an operator resumes (an explicit command, logged as `trading_resumed`).

Triggers (all in config, all optional):

* a reconcile ERROR on one of `halt_on_rules` that lasts `error_grace_ns` of event time
  (a dropped fill is an ERROR until the next resync brings it: the grace lets the
  kernel's own recovery act first);
* a loss: capital in an asset more than `max_loss` below its peak within `loss_window_ns`;
* a venue error storm: `storm_count` rejected or unknown command outcomes within
  `storm_window_ns`.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

import msgspec

from kernel.reconcile import Verdict
from kernel.snapshot import AccountSnapshotV2


class KillSwitchConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    halt_on_rules: tuple[str, ...] = ("R1", "R3", "R6")
    error_grace_ns: int = 30_000_000_000
    #: Per asset: the largest fall of capital from its peak within the window.
    max_loss: dict[str, Decimal] = {}
    loss_window_ns: int = 3_600_000_000_000
    storm_count: int = 20
    storm_window_ns: int = 60_000_000_000


class KillSwitch:
    """Remembers what the triggers need between snapshots (errors' start, recent capital,
    recent bad outcomes). Deterministic in the snapshots and outcomes it is fed."""

    def __init__(self, cfg: KillSwitchConfig) -> None:
        self.cfg = cfg
        self._error_since: dict[str, int] = {}
        self._capital: dict[str, deque[tuple[int, Decimal]]] = {}
        self._bad: deque[int] = deque()
        self._halted = False
        self._acknowledged: set[str] = set()

    def outcome(self, now: int, bad: bool) -> str | None:
        """A command outcome at event time `now` (`bad`: rejected or unknown)."""
        if not bad or not self.cfg.storm_count:
            return None
        self._bad.append(now)
        while self._bad and self._bad[0] < now - self.cfg.storm_window_ns:
            self._bad.popleft()
        if len(self._bad) >= self.cfg.storm_count:
            return (f"venue error storm: {len(self._bad)} commands rejected or unanswered"
                    f" within {self.cfg.storm_window_ns / 1e9:.0f} s")
        return None

    def snapshot(self, snap: AccountSnapshotV2) -> str | None:
        """The reason to halt after `snap`, or None. An ERROR still failing when an
        operator resumed was acknowledged by the resume: it halts again only once it has
        cleared and come back."""
        failing = {c.rule + " " + c.subject: c for c in snap.reconcile.checks
                   if c.verdict is Verdict.ERROR and c.rule in self.cfg.halt_on_rules}
        if snap.halted:
            self._error_since.clear()
            self._halted = True
            return None
        if self._halted:
            self._halted = False
            self._acknowledged = set(failing)
        self._acknowledged &= set(failing)
        now = snap.now
        for key in list(self._error_since):
            if key not in failing:
                del self._error_since[key]
        for key, c in sorted(failing.items()):
            if key in self._acknowledged:
                continue
            since = self._error_since.setdefault(key, now)
            if now - since >= self.cfg.error_grace_ns:
                return (f"reconcile {c.rule} {c.subject} ERROR {c.reason} for"
                        f" {(now - since) / 1e9:.0f} s: kernel {c.kernel}, venue {c.venue}")
        for asset, limit in sorted(self.cfg.max_loss.items()):
            capital = snap.k.wallets.get(asset)
            if capital is None:
                continue
            # A sliding-window maximum: only capital figures that may still be the
            # window's peak are kept, so memory stays small however many snapshots pass.
            window = self._capital.setdefault(asset, deque())
            while window and window[-1][1] <= capital:
                window.pop()
            window.append((now, capital))
            while window[0][0] < now - self.cfg.loss_window_ns:
                window.popleft()
            peak = window[0][1]
            if peak - capital > limit:
                return (f"loss limit: {asset} capital {capital} is {peak - capital} below its"
                        f" peak {peak} within {self.cfg.loss_window_ns / 1e9:.0f} s"
                        f" (limit {limit})")
        return None
