"""A census of verdicts over a run of snapshots: how often each rule said what, and how
long each pending report stayed pending (in event time).

Pure: feed it snapshots in log order (`add`), read the counts. The steady-state
measurements (tests/test_steady_state.py, bench/steady_state.py) and `exkernel replay
--census` use it to say, of a whole log, "0 ERROR, and no WARN but PENDING_REPORT".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from kernel.reconcile import Verdict
from kernel.snapshot import AccountSnapshotV2


@dataclass
class Census:
    snapshots: int = 0
    #: Snapshots by overall verdict ("OK", "WARN", ...).
    verdicts: Counter[str] = field(default_factory=Counter)
    #: Non-OK checks by "R1 WARN PENDING_REPORT" (rule, verdict, reason), one per snapshot.
    reasons: Counter[str] = field(default_factory=Counter)
    #: The longest time (event-time ns) a check stayed WARN PENDING_REPORT.
    longest_pending_ns: int = 0
    #: Pending checks that ended in anything but OK (an ERROR or an UNKNOWN).
    unresolved_pending: int = 0
    _open: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, snap: AccountSnapshotV2) -> None:
        self.snapshots += 1
        self.verdicts[snap.reconcile.verdict.value] += 1
        now_pending: dict[tuple[str, str], int] = {}
        states: dict[tuple[str, str], Verdict] = {}
        key: tuple[str, str]
        for c in snap.reconcile.checks:
            key = (c.rule, c.subject)
            states[key] = c.verdict
            if c.verdict is not Verdict.OK:
                self.reasons[f"{c.rule} {c.verdict.value} {c.reason}"] += 1
            if c.verdict is Verdict.WARN and c.reason == "PENDING_REPORT":
                now_pending[key] = self._open.get(key, snap.now)
        for key, since in self._open.items():
            if key in now_pending:
                continue
            self.longest_pending_ns = max(self.longest_pending_ns, snap.now - since)
            if states.get(key, Verdict.OK) is not Verdict.OK:
                self.unresolved_pending += 1
        self._open = now_pending

    @property
    def errors(self) -> int:
        return self.verdicts["ERROR"]

    def unexplained_warns(self) -> dict[str, int]:
        """WARN checks for any reason but a pending report (there should be none)."""
        return {r: n for r, n in self.reasons.items()
                if " WARN " in r and not r.endswith(" PENDING_REPORT")}

    def summary(self) -> str:
        by_verdict = ", ".join(f"{v} {self.verdicts[v]}" for v in ("OK", "UNKNOWN", "WARN",
                                                                   "ERROR"))
        lines = [f"{self.snapshots} snapshots: {by_verdict}",
                 f"longest pending report: {self.longest_pending_ns / 1e9:.3f} s;"
                 f" pending checks that did not end OK: {self.unresolved_pending}"]
        lines += [f"  {n:>8}  {r}" for r, n in self.reasons.most_common()]
        return "\n".join(lines)
