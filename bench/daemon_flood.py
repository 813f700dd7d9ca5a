"""The whole daemon under a flood: `python -m bench.daemon_flood [--quick] [--no-profile]`.

In process: the real `Daemon` on a fresh state dir (a real SQLite file) with the embedded
`SimVenue` pushing `flood_per_s` extra mark prices per second, the scripted trader off.
Each step is a fresh daemon at one offered rate: warm up, then measure a window of a few
seconds, then stop it (SIGTERM's path: stop the venue, drain the queue, checkpoint).

Per step: the rate the sim generated (offered), the rate committed to the log
(`writer.state.seq` over the window), the daemon queue's depth at the end of the window and
its maximum, whether it saturated (a `_put` found the queue at `kernel.queue_size`: the
venue loop was back-pressured), the sim's own backlog (its unbounded internal queue), and
the latency from `facts()` yielding an event to the daemon's publish hook having handed
that event's snapshot to the hub (`time.perf_counter_ns` both ends, matched by dedup key;
the marks' venue time is in ms and is not used).

Two knobs of the bench, not of the kernel:

* instruments: the sim floods at most one mark per instrument per venue millisecond (no two
  marks may share a dedup key), i.e. 1,000 × instruments per second; the default config's
  two instruments cap the flood at 2,000/s. Each step uses `instrument_count(rate)` linear
  perpetuals: 2 at 1k/s, up to 50. (Not more than needed: every 250 ms tick also pushes
  one mark per instrument at once, a burst that shows in the latency.)
* flood generation: `SimEngine.flood_marks` builds n × instruments marks to keep n; the
  bench's venue replaces it with a version that builds only the n it returns (same stamps,
  same order), so the load generator, which shares the daemon's event loop, costs less.
* flood rate: the sim's clock task asks for int(elapsed × rate) marks and drops the
  fraction (at a 1 ms pace, 1,000/s asked gave ~750/s); the bench's venue carries the
  fraction over, so the offered rate is the one asked for.
* pace: the sim's clock task runs every `pace_s` (default its `tick_s`, 250 ms), so the
  flood would arrive in bursts of rate × pace, and only on the ms between the last tick
  and now (at the default pace, in phase with the ticks, 1,000/s asked with 2 instruments
  delivered ~150/s). The bench runs it every 1 ms: a smooth stream.

Progress goes to stderr; a markdown table to stdout. A last section prints the top
functions (own time) of a cProfile of a step at the lowest saturating rate, and its own
time by component (main thread only: SQLite's own work runs in aiosqlite's thread).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime
import io
import os
import platform
import pstats
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import msgspec

from adapters.sim import wire
from adapters.sim.config import SimConfig, SimInstrument, SimTrader
from adapters.sim.venue import SimVenue
from adapters.sim.wire import Msg
from events.codec import Event
from kernel import money
from kernel.daemon import logs
from kernel.daemon.config import Config, load_config
from kernel.daemon.metrics import Metrics
from kernel.daemon.service import Daemon
from kernel.snapshot import AccountSnapshotV2

OUT = Path(__file__).resolve().parent / "out"
MAX_INSTRUMENTS = 50
FAST_PACE_S = 0.001
LATENCY_TARGET_MS = 2.0
HEADER = ("| step | sync | instr | pace ms | flood/s asked | offered/s | committed/s | CPU %"
          " | queue at end | queue max | saturated | sim backlog | p50 ms | p99 ms | max ms"
          " | latencies |")


def progress(msg: str) -> None:
    print(f"[flood] {msg}", file=sys.stderr, flush=True)


class TimedVenue(SimVenue):
    """SimVenue that stamps each event `facts()` yields and counts what the sim generates."""

    def __init__(self, config: SimConfig, *, pace_s: float | None = None) -> None:
        super().__init__(config, pace_s=pace_s)
        self.emitted: dict[str, int] = {}
        self.yielded = 0
        self.generated = 0
        self.engine.flood_marks = self._flood_marks  # type: ignore[method-assign]
        self._credit = 0.0
        self._credit_at: int | None = None

    def _flood_marks(self, now_ns: int, n: int) -> list[Msg]:
        """`SimEngine.flood_marks`, building only the `n` marks it returns.

        The engine's own builds every instrument's mark for each of up to `n` stamps
        (n × instruments messages, each four Decimal formats) and keeps the first `n`: with
        50 instruments that was 98% of the process's time at 1k/s. Same stamps, same
        symbols first, same `_flood_ms` bookkeeping; only the waste is gone."""
        eng = self.engine
        if self._credit_at is not None:  # called only when int(elapsed × rate) >= 1
            self._credit += (now_ns - self._credit_at) * self.config.flood_per_s / 1e9
            n = int(self._credit)
            self._credit -= n
        self._credit_at = now_ns
        last_tick = eng._next_tick - round(eng.config.tick_s * 1e9)
        first = max(eng._flood_ms, wire.ms(last_tick)) + 1
        prices = list(eng.prices.items())
        rates = {i.symbol: i.funding_rate for i in eng.config.instruments}
        stamps = range(first, min(first + -(-n // len(prices)), wire.ms(now_ns) + 1))
        out: list[Msg] = []
        for stamp in stamps:
            t = stamp * wire.NS_PER_MS
            for sym, price in prices[:n - len(out)]:
                out.append(wire.mark_price(t, sym, price, rates[sym], eng._next_funding))
        if stamps:
            eng._flood_ms = stamps[-1]
        return out

    def _deliver(self, msgs: list[Msg], now: int) -> None:
        self.generated += len(msgs)
        super()._deliver(msgs, now)

    async def facts(self) -> AsyncIterator[Event]:
        async for event in super().facts():
            self.yielded += 1
            self.emitted[event.dedup_key] = time.perf_counter_ns()
            yield event


class TimedDaemon(Daemon):
    """Daemon whose publish hook records yield-to-publish latency and whose `_put` notes
    each time the bounded queue was full (the venue loop had to wait)."""

    venue: TimedVenue

    def __init__(self, cfg: Config, venue: TimedVenue, state_dir: Path,
                 metrics: Metrics | None = None) -> None:
        super().__init__(cfg, venue, state_dir, metrics=metrics)
        self.window: tuple[int, int] | None = None  # perf_counter_ns of its start and end
        self.latencies: list[int] = []
        self.full_puts = 0
        self.max_depth = 0

    def _published(self, snap: AccountSnapshotV2) -> None:
        super()._published(snap)
        done = time.perf_counter_ns()
        t0 = self.venue.emitted.pop(snap.source_event_id, None)
        w = self.window
        if t0 is not None and w is not None and w[0] <= t0 <= w[1]:
            self.latencies.append(done - t0)

    async def _put(self, event: Event) -> None:
        q = self.queue
        if q.full():
            self.full_puts += 1
        await super()._put(event)
        self.max_depth = max(self.max_depth, q.qsize())


@dataclass
class Step:
    name: str
    sync: str
    pace_s: float
    flood: int
    offered: float = 0.0
    committed: float = 0.0
    cpu_share: float = 0.0
    depth_end: int = 0
    depth_max: int = 0
    queue_size: int = 0
    full_puts: int = 0
    backlog: int = 0
    latencies: list[int] = field(default_factory=list)

    @property
    def sustained(self) -> bool:
        """Not saturated, kept up with what was offered, and the queue not building up."""
        return (not self.saturated and self.committed >= 0.97 * self.offered
                and self.depth_end <= self.queue_size // 10)

    @property
    def saturated(self) -> bool:
        return self.full_puts > 0 or self.depth_max >= self.queue_size

    def pct(self, q: float) -> float | None:
        if not self.latencies:
            return None
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] / 1e6


def instruments(n: int) -> tuple[SimInstrument, ...]:
    return tuple(
        SimInstrument(symbol=f"S{i:02d}USDT", base=f"S{i:02d}", quote="USDT", settle="USDT",
                      tick_size=Decimal("0.01"), lot_size=Decimal("0.001"),
                      start_price=Decimal(100 + i))
        for i in range(n))


def instrument_count(flood: int) -> int:
    """Enough instruments for the rate (the flood's cap is 1,000 × instruments per second)
    with room to spare, and no more: every `tick_s` (250 ms) the sim also pushes one mark
    per instrument at once, a burst the writer takes as one batch."""
    return max(2, min(MAX_INSTRUMENTS, -(-flood // 800)))


def config(flood: int, sync: str) -> Config:
    base = load_config(None)
    sim = SimConfig(instruments=instruments(instrument_count(flood)),
                    trader=SimTrader(enabled=False), funding_interval_s=3600.0, flood_per_s=flood)
    return msgspec.structs.replace(
        base,
        kernel=msgspec.structs.replace(base.kernel, synchronous=sync),
        venue=msgspec.structs.replace(base.venue, sim=sim),
    )


async def run_step(name: str, flood: int, sync: str, pace_s: float, warmup: float,
                   seconds: float, scratch: Path,
                   profile: cProfile.Profile | None = None) -> Step:
    cfg = config(flood, sync)
    venue = TimedVenue(cfg.venue.sim, pace_s=pace_s)
    state_dir = Path(tempfile.mkdtemp(dir=scratch, prefix="state-"))
    daemon = TimedDaemon(cfg, venue, state_dir, metrics=Metrics())
    run = asyncio.create_task(daemon.run(), name="daemon")
    ready = asyncio.create_task(daemon.ready.wait())
    await asyncio.wait({ready, run}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        daemon.stop()
        raise RuntimeError(f"the daemon did not get ready: {await run!r}")
    await asyncio.sleep(warmup)
    assert daemon._writer is not None
    writer = daemon._writer
    seq0, gen0, full0 = writer.state.seq, venue.generated, daemon.full_puts
    daemon.max_depth = daemon.queue.qsize()
    t0, cpu0 = time.perf_counter(), time.process_time()
    daemon.window = (time.perf_counter_ns(), time.perf_counter_ns() + int(seconds * 1e9))
    if profile is not None:
        profile.enable()
    await asyncio.sleep(seconds)
    if profile is not None:
        profile.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    step = Step(
        name=name, sync=sync, pace_s=pace_s, flood=flood,
        offered=(venue.generated - gen0) / wall,
        committed=(writer.state.seq - seq0) / wall,
        cpu_share=100 * cpu / wall,
        depth_end=daemon.queue.qsize(), depth_max=daemon.max_depth,
        queue_size=cfg.kernel.queue_size, full_puts=daemon.full_puts - full0,
        backlog=venue._queue.qsize(),
    )
    daemon.stop()
    code = await asyncio.wait_for(run, 120)  # drains the queue: the window's events publish
    assert code == 0, f"daemon exited {code}"
    step.latencies = daemon.latencies
    for f in state_dir.iterdir():
        f.unlink()
    state_dir.rmdir()
    return step


COMPONENTS = (
    ("adapters/sim/", "sim venue: generator, faults, parse (adapters/sim)"),
    ("/bench/", "bench hooks (bench/daemon_flood.py)"),
    ("/kernel/", "kernel (writer, fold, project, daemon)"),
    ("/events/", "events (codec, log, dedup keys)"),
    ("aiosqlite", "aiosqlite, loop side"),
    ("structlog", "structlog"),
    ("prometheus_client", "prometheus_client"),
    ("asyncio", "asyncio"),
    ("~", "C builtins (decimal, msgspec, sqlite3 calls, select, ...)"),
)


def components(stats: pstats.Stats) -> str:
    """Own time summed by where the function lives."""
    total: dict[str, float] = {}
    raw = stats.stats  # type: ignore[attr-defined]
    for (path, _line, _name), (_cc, _nc, tt, _ct, _callers) in raw.items():
        label = next((lbl for key, lbl in COMPONENTS if key in path), "other Python")
        total[label] = total.get(label, 0.0) + tt
    whole = sum(total.values()) or 1.0
    lines = ["| component | own s | share |", "|---|---:|---:|"]
    for label, tt in sorted(total.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {label} | {tt:.2f} | {100 * tt / whole:.0f}% |")
    return "\n".join(lines)


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "" if x is None else format(x, spec)


def table(steps: list[Step]) -> str:
    lines = [HEADER, "|---|---|" + "---:|" * 8 + "---|" + "---:|" * 5]
    for s in steps:
        lines.append(
            f"| {s.name} | {s.sync} | {instrument_count(s.flood)} | {s.pace_s * 1000:g}"
            f" | {s.flood:,} | {s.offered:,.0f}"
            f" | {s.committed:,.0f} | {s.cpu_share:.0f} | {s.depth_end:,} | {s.depth_max:,}"
            f" | {'yes' if s.saturated else 'no'} | {s.backlog:,} | {fmt(s.pct(0.50))}"
            f" | {fmt(s.pct(0.99))} | {fmt(max(s.latencies) / 1e6 if s.latencies else None)}"
            f" | {len(s.latencies):,} |")
    return "\n".join(lines)


def summary(ramp: list[Step], one_k: list[Step]) -> str:
    ok = [s for s in ramp if s.sustained]
    best = max(ok, key=lambda s: s.committed) if ok else None
    sat = [s for s in ramp if s.saturated]
    lines = []
    if best is not None:
        lines.append(f"- highest rate sustained (not saturated, committed ≥ 97% of offered,"
                     f" queue at end ≤ 10% of queue_size): {best.committed:,.0f} events/s"
                     f" committed (flood {best.flood:,}/s asked, {best.sync})")
    if sat:
        top = max(sat, key=lambda s: s.committed)
        lines.append(f"- saturated: from flood {min(s.flood for s in sat):,}/s asked; at most"
                     f" {top.committed:,.0f} events/s committed ({top.name})")
    else:
        lines.append("- the queue never saturated in this ramp")
    for s in one_k:
        p99 = s.pct(0.99)
        met = p99 is not None and p99 <= LATENCY_TARGET_MS
        lines.append(f"- p99 yield→publish at 1k/s, {s.sync}, pace {s.pace_s * 1000:g} ms:"
                     f" {fmt(p99)} ms (target ≤ {LATENCY_TARGET_MS:g} ms:"
                     f" {'met' if met else 'NOT met'})")
    return "\n".join(lines)


def header(args: argparse.Namespace, seconds: float) -> str:
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    cmd = "python -m bench.daemon_flood" + (" --quick" if args.quick else "")
    return "\n".join([
        f"- command: `{cmd}`",
        f"- date: {now}",
        f"- machine: {os.cpu_count()} CPUs, {platform.machine()}, {platform.platform()}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        "- sim: `instr` linear perpetuals (the flood's cap is 1,000/s per instrument; one"
        " mark each per 250 ms tick besides), trader disabled, no faults; default kernel"
        " config (queue_size 10,000, batch_max 1,000) except `synchronous`; logs at info"
        " (JSON to /dev/null), metrics on (not served);"
        f" window {seconds:g} s per step after a warm-up",
    ])


async def main_async(args: argparse.Namespace, scratch: Path) -> None:
    seconds, warmup = (1.0, 0.3) if args.quick else (4.0, 1.0)
    rates = [1_000, 5_000, 20_000] if args.quick else [
        1_000, 5_000, 10_000, 15_000, 20_000, 30_000, 40_000]
    one_k: list[Step] = []
    for sync in ("NORMAL", "FULL"):
        progress(f"1k/s, {sync}, pace {FAST_PACE_S * 1000:g} ms")
        one_k.append(await run_step("1k latency", 1_000, sync, FAST_PACE_S, warmup, seconds,
                                    scratch))
    ramp: list[Step] = []
    for rate in rates:
        progress(f"ramp: flood {rate:,}/s, FULL")
        ramp.append(await run_step(f"ramp {rate // 1000}k", rate, "FULL", FAST_PACE_S,
                                   warmup, seconds, scratch))
    print(header(args, seconds))
    print()
    print(table(one_k + ramp))
    print()
    print(summary(ramp, one_k))
    if args.profile:
        sat = [s.flood for s in ramp if s.saturated]
        rate = min(sat) if sat else rates[-1]
        progress(f"cProfile at flood {rate:,}/s, FULL")
        prof = cProfile.Profile()
        step = await run_step(f"profiled {rate // 1000}k", rate, "FULL", FAST_PACE_S, warmup,
                              seconds, scratch, profile=prof)
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.top)
        print()
        print(f"cProfile of {seconds:g} s at flood {rate:,}/s, FULL (main thread;"
              f" {step.committed:,.0f} events/s committed under the profiler),"
              f" top {args.top} by own time:")
        print()
        print("```")
        text = out.getvalue()
        print(text[text.find("   ncalls"):].rstrip())
        print("```")
        print()
        print(components(pstats.Stats(prof)))


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.daemon_flood", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 rates, 1 s windows (seconds)")
    p.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None,
                   help="cProfile a step at the top rate (default: on, off with --quick)")
    p.add_argument("--top", type=int, default=8, help="functions shown from the profile")
    p.add_argument("--out", type=Path, default=OUT, help="scratch dir (default bench/out)")
    args = p.parse_args()
    if args.profile is None:
        args.profile = not args.quick
    args.out.mkdir(parents=True, exist_ok=True)
    devnull = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    logs.configure("info", json=True, stream=devnull)
    money.install()
    with tempfile.TemporaryDirectory(dir=args.out, prefix="flood-") as tmp:
        asyncio.run(main_async(args, Path(tmp)))


if __name__ == "__main__":
    main()
