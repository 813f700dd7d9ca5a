"""What every benchmark records: events, wall time, CPU time, and a note.

Wall time is `time.perf_counter`; CPU time is `time.process_time` (this process's
user + system time, every thread included), which a noisy neighbour on a shared
machine slows far less than the wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Measurement:
    id: str
    label: str
    events: int
    wall: float
    cpu: float | None = None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.events / self.wall if self.wall > 0 else float("inf")

    @property
    def cpu_rate(self) -> float | None:
        if self.cpu is None:
            return None
        return self.events / self.cpu if self.cpu > 0 else float("inf")


@dataclass
class Stopwatch:
    wall: float = 0.0
    cpu: float = 0.0

    @contextmanager
    def running(self) -> Iterator[None]:
        """Add the time spent in the block to the totals (blocks may repeat)."""
        w, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - w
            self.cpu += time.process_time() - c


def best(runs: Sequence[Measurement]) -> Measurement:
    """The fastest of repeated runs (by wall time): noise only ever adds time. The
    note says how many rounds it was picked from."""
    fastest = min(runs, key=lambda m: m.wall)
    if len(runs) == 1:
        return fastest
    note = f"best of {len(runs)}" + (f"; {fastest.note}" if fastest.note else "")
    return Measurement(fastest.id, fastest.label, fastest.events, fastest.wall, fastest.cpu, note)


def rss_bytes() -> int:
    """This process's resident set size, from /proc/self/status (Linux only)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                value, unit = line.split()[1:3]
                if unit != "kB":
                    raise RuntimeError(f"VmRSS in unexpected unit {unit!r}")
                return int(value) * 1024
    raise RuntimeError("no VmRSS line in /proc/self/status")
