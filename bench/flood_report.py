"""What `bench.daemon_flood` measured and how it prints it: the load of an arm, the
spans of work in a window, each step's figures, and the markdown tables made of them.
"""

from __future__ import annotations

import bisect
import cProfile
import functools
import io
import pstats
import statistics
from dataclasses import dataclass, field

MAX_INSTRUMENTS = 50
LATENCY_TARGET_MS = 2.0
RATE_TARGET = 20_000
#: A saturated top rate committing at least this share of the ramp's peak is a plateau.
PLATEAU = 0.9
HEADER = ("| step | sync | instr | pace ms | flood/s asked | offered/s | committed/s"
          " | committed ÷ offered | CPU % | loop CPU % | loop waited for a CPU %"
          " | queue at end | queue max | saturated | sim backlog"
          " | p50 ms | p99 ms | max ms | yield→pub p99 ms | latencies |")
#: (start, end) of one piece of work, perf_counter_ns.
Span = tuple[int, int]


def instrument_count(flood: int) -> int:
    """Enough instruments for the rate (the flood's cap is 1,000 × instruments per second)
    with room to spare, and no more: every `tick_s` (250 ms) the sim also pushes one mark
    per instrument at once, a burst the writer takes as one batch."""
    return max(2, min(MAX_INSTRUMENTS, -(-flood // 800)))


@dataclass(frozen=True)
class Load:
    """The loaded arm's: intents ACTIVE on the venue, snapshot subscribers attached."""

    intents: int
    subscribers: int
    #: The subscribers ask for snapshots without the book (`book: false`).
    bare: bool = False
    #: The subscribers' process runs at this much lower a priority (`nice`).
    nice: int = 0


@dataclass
class Busy:
    """One kind of work inside the window: how often, how long, which spans."""

    spans: list[Span]
    seconds: float

    @property
    def per_s(self) -> float:
        return len(self.spans) / self.seconds

    @property
    def mean_ms(self) -> float | None:
        return (statistics.fmean(b - a for a, b in self.spans) / 1e6) if self.spans else None

    @property
    def max_ms(self) -> float | None:
        return max(b - a for a, b in self.spans) / 1e6 if self.spans else None

    @property
    def share(self) -> float:
        return sum(b - a for a, b in self.spans) / 1e9 / self.seconds

    def inside(self, a: int, b: int) -> int:
        """How much of [a, b] (ns) was spent in the spans (in start order)."""
        i = max(0, bisect.bisect_left(self.spans, (a - self.longest, a)))
        j = bisect.bisect_right(self.spans, (b, b))
        return sum(max(0, min(z, b) - max(y, a)) for y, z in self.spans[i:j])

    @functools.cached_property
    def longest(self) -> int:
        return max((b - a for a, b in self.spans), default=0)


def within(spans: list[Span], t0: int, t1: int) -> list[Span]:
    return [s for s in spans if t0 <= s[0] <= t1]


@dataclass
class Step:
    name: str
    sync: str
    pace_s: float
    flood: int
    load: Load | None = None
    offered: float = 0.0
    committed: float = 0.0
    cpu_share: float = 0.0
    loop_share: float = 0.0  # the event loop thread's CPU over wall, %
    waited: float | None = None  # the loop thread's time runnable but off CPU over wall, %
    depth_end: int = 0
    depth_max: int = 0
    queue_size: int = 0
    full_puts: int = 0
    backlog: int = 0
    samples: list[Span] = field(default_factory=list)  # (emitted, published) ns
    yields: list[int] = field(default_factory=list)  # yield → published, ns
    active: int = 0  # intents ACTIVE at the end
    sub_delays: list[int] = field(default_factory=list)  # commit → subscriber, ns
    sub_pushes: float = 0.0  # frames a second per subscriber
    sub_dead: int = 0  # subscribers that received nothing in the window
    snapshot_bytes: int = 0
    busy: dict[str, Busy] = field(default_factory=dict)
    #: The disk's floor beside this run (bench.disk_floor): arrival → commit, ns.
    floor: list[int] = field(default_factory=list)

    @property
    def latencies(self) -> list[int]:
        return [b - a for a, b in self.samples]

    @property
    def sustained(self) -> bool:
        """Not saturated, kept up with what was offered, and the queue not building up."""
        return (not self.saturated and self.committed >= 0.97 * self.offered
                and self.depth_end <= self.queue_size // 10)

    @property
    def saturated(self) -> bool:
        return self.full_puts > 0 or self.depth_max >= self.queue_size

    def pct(self, q: float) -> float | None:
        return pct(self.latencies, q)

    def tail(self) -> list[Span]:
        """The samples slower than the step's p99."""
        p99 = self.pct(0.99)
        return [] if p99 is None else [(a, b) for a, b in self.samples if b - a > p99 * 1e6]


def pct(xs: list[int], q: float) -> float | None:
    """The q-quantile of `xs` (ns), in ms."""
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] / 1e6


COMPONENTS = (
    ("adapters/sim/", "sim venue: generator, faults, parse (adapters/sim)"),
    ("/bench/", "bench hooks (bench/timed_daemon.py, bench/daemon_flood.py)"),
    ("/kernel/", "kernel (writer, fold, project, daemon)"),
    ("/events/", "events (codec, log, dedup keys)"),
    ("aiosqlite", "aiosqlite, loop side"),
    ("structlog", "structlog"),
    ("prometheus_client", "prometheus_client"),
    ("asyncio", "asyncio"),
    ("~", "C builtins (decimal, msgspec, sqlite3 calls, select, ...)"),
)
#: The loaded arm's profile: the modules its load runs apart, then the rest as above.
LOADED_COMPONENTS = (
    ("/kernel/public.py", "kernel/public.py (the public snapshot)"),
    ("/kernel/locks.py", "kernel/locks.py (locks of working intents)"),
    ("/kernel/daemon/hub.py", "kernel/daemon/hub.py"),
    ("/kernel/daemon/subscribers.py", "kernel/daemon/subscribers.py (fan-out)"),
    ("/kernel/diff.py", "kernel/diff.py (the reconciler's diff)"),
    ("/kernel/daemon/reconciler.py", "kernel/daemon/reconciler.py"),
    ("websockets", "websockets"),
    *COMPONENTS,
)


def components(stats: pstats.Stats, keys: tuple[tuple[str, str], ...] = COMPONENTS) -> str:
    """Own time summed by where the function lives."""
    total: dict[str, float] = {}
    raw = stats.stats  # type: ignore[attr-defined]
    for (path, _line, _name), (_cc, _nc, tt, _ct, _callers) in raw.items():
        label = next((lbl for key, lbl in keys if key in path), "other Python")
        total[label] = total.get(label, 0.0) + tt
    whole = sum(total.values()) or 1.0
    lines = ["| component | own s | share |", "|---|---:|---:|"]
    for label, tt in sorted(total.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {label} | {tt:.2f} | {100 * tt / whole:.0f}% |")
    return "\n".join(lines)


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "" if x is None else format(x, spec)


def table(steps: list[Step]) -> str:
    lines = [HEADER, "|---|---|" + "---:|" * 11 + "---|" + "---:|" * 6]
    for s in steps:
        lat = s.latencies
        lines.append(
            f"| {s.name} | {s.sync} | {instrument_count(s.flood)} | {s.pace_s * 1000:g}"
            f" | {s.flood:,} | {s.offered:,.0f} | {s.committed:,.0f}"
            f" | {s.committed / s.offered if s.offered else 0:.2f} | {s.cpu_share:.0f}"
            f" | {s.loop_share:.0f} | {fmt(s.waited, '.0f')}"
            f" | {s.depth_end:,} | {s.depth_max:,}"
            f" | {'yes' if s.saturated else 'no'} | {s.backlog:,} | {fmt(s.pct(0.50))}"
            f" | {fmt(s.pct(0.99))} | {fmt(max(lat) / 1e6 if lat else None)}"
            f" | {fmt(pct(s.yields, 0.99))} | {len(lat):,} |")
    return "\n".join(lines)


def mean_max(b: Busy) -> str:
    return "" if not b.spans else f"{fmt(b.mean_ms)} / {fmt(b.max_ms)}"


def where_table(steps: list[Step]) -> str:
    """Per step: the load, the subscribers' delay, and where the loop's time went."""
    lines = ["| step | sync | intents ACTIVE | subscribers | frames/s per sub"
             " | commit→sub p50 ms | p99 ms | snapshot KB | encodes/s | ms an encode (mean / max)"
             " | fan-out % of wall | reconciler steps/s | ms a step (mean / max)"
             " | commits/s | ms a commit (mean / max) | tail over p99 | its time in encodes"
             " | in fan-out passes | in reconciler steps | in commits |",
             "|---|---|" + "---:|" * 18]
    for s in steps:
        enc, fan, rec, com = (s.busy[k] for k in ("encode", "fanout", "reconciler", "commit"))
        tail = s.tail()

        def share(b: Busy, tail: list[Span] = tail) -> str:
            """The part of the slow events' emit → published time spent in `b`."""
            if not tail:
                return ""
            return f"{sum(b.inside(a, z) for a, z in tail) / sum(z - a for a, z in tail):.0%}"

        subs = s.load.subscribers if s.load else 0
        dead = f" ({s.sub_dead} got nothing)" if s.sub_dead else ""
        lines.append(
            f"| {s.name} | {s.sync} | {s.active:,} | {subs}{dead}"
            f" | {fmt(s.sub_pushes, '.0f') if subs else ''}"
            f" | {fmt(pct(s.sub_delays, 0.5))} | {fmt(pct(s.sub_delays, 0.99))}"
            f" | {fmt(s.snapshot_bytes / 1024 if s.snapshot_bytes else None, '.0f')}"
            f" | {enc.per_s:,.0f} | {mean_max(enc)} | {100 * fan.share:.1f}"
            f" | {rec.per_s:,.0f} | {mean_max(rec)} | {com.per_s:,.0f} | {mean_max(com)}"
            f" | {len(tail)} | {share(enc)} | {share(fan)} | {share(rec)} | {share(com)} |")
    return "\n".join(lines)


def arm(s: Step) -> str:
    return "plain" if s.load is None else (
        f"loaded ({s.load.intents:,} intents, {s.load.subscribers} subs"
        f"{', book: false' if s.load.bare else ''}"
        f"{f', nice {s.load.nice}' if s.load.nice else ''})")


def worst(values: list[float | None]) -> float | None:
    return max((v for v in values if v is not None), default=None)


def latency_summary(steps: list[Step]) -> str:
    """Per arm and mode: each run's p50 and p99, the worst p99 against the target, and,
    where measured, the disk's floor beside each run (`bench.disk_floor`): a run whose
    floor's own p99 is over the target is one no writer could have met on this disk."""
    lines = ["| arm | sync | runs | p50 ms by run | p99 ms by run | worst p99 ms"
             " | target ≤ 2 ms | disk floor p99 ms by run | runs the disk left within"
             " the target (of them, met) | yield→pub worst p99 ms | commit→sub worst p99 ms |",
             "|---|---|---:|---|---|---:|---|---|---:|---:|---:|"]
    for label in dict.fromkeys(arm(s) for s in steps):
        for sync in ("NORMAL", "FULL"):
            runs = [s for s in steps if arm(s) == label and s.sync == sync]
            if not runs:
                continue
            p99s = [s.pct(0.99) for s in runs]
            top = worst(p99s)
            met = top is not None and top <= LATENCY_TARGET_MS
            floors = [pct(s.floor, 0.99) for s in runs]
            allowed = [p for p, f in zip(p99s, floors, strict=True)
                       if f is not None and f <= LATENCY_TARGET_MS]
            kept = sum(1 for p in allowed if p is not None and p <= LATENCY_TARGET_MS)
            measured = any(f is not None for f in floors)
            yields = worst([pct(s.yields, 0.99) for s in runs])
            subs = worst([pct(s.sub_delays, 0.99) for s in runs])
            lines.append(
                f"| {label} | {sync} | {len(runs)}"
                f" | {', '.join(fmt(s.pct(0.5)) for s in runs)}"
                f" | {', '.join(fmt(p) for p in p99s)} | **{fmt(top)}**"
                f" | {'met' if met else 'NOT met'}"
                f" | {', '.join(fmt(f) for f in floors) if measured else ''}"
                f" | {f'{len(allowed)} of {len(runs)} ({kept})' if measured else ''}"
                f" | {fmt(yields)} | {fmt(subs)} |")
    return "\n".join(lines)


def ramp_summary(ramp: list[Step]) -> str:
    lines = []
    for label in dict.fromkeys(arm(s) for s in ramp):
        steps = [s for s in ramp if arm(s) == label]
        ok = [s for s in steps if s.sustained]
        best = max(ok, key=lambda s: s.committed) if ok else None
        sat = [s for s in steps if s.saturated]
        met = best is not None and best.committed >= RATE_TARGET
        lines.append(f"- {label}: highest rate sustained (not saturated, committed ≥ 97% of"
                     " offered, queue at end ≤ 10% of queue_size): " + (
                         "none" if best is None else
                         f"**{best.committed:,.0f} events/s** committed (flood"
                         f" {best.flood:,}/s asked, {best.sync})")
                     + f" (target ≥ {RATE_TARGET:,}: {'met' if met else 'NOT met'})")
        if not sat:
            lines.append(f"- {label}: the queue never saturated in this ramp")
            continue
        peak = max(steps, key=lambda s: s.committed)
        top = max(steps, key=lambda s: s.flood)
        ratio = top.committed / peak.committed if peak.committed else 0.0
        shape = "plateau" if ratio >= PLATEAU else "collapse"
        lines.append(
            f"- {label}: saturated from flood {min(s.flood for s in sat):,}/s asked; peak"
            f" {peak.committed:,.0f} events/s committed ({peak.name}); at the top rate"
            f" ({top.flood:,}/s asked) {top.committed:,.0f}/s, {ratio:.0%} of the peak:"
            f" **{shape}** (a plateau keeps ≥ {PLATEAU:.0%})")
    return "\n".join(lines)


def profile_text(title: str, prof: cProfile.Profile, top: int,
                 keys: tuple[tuple[str, str], ...]) -> str:
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    return "\n".join([title, "", "```", text[text.find("   ncalls"):].rstrip(), "```", "",
                      components(pstats.Stats(prof), keys)])


