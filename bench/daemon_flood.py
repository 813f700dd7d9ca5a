"""The whole daemon under a flood: `python -m bench.daemon_flood [--quick] [--loaded]`.

In process: the real `Daemon` on a fresh state dir (a real SQLite file) with the embedded
`SimVenue` pushing `flood_per_s` extra mark prices per second, the scripted trader off.
Each step is a fresh daemon at one offered rate: get ready at 1,000/s (or less), set up
the step's load, raise the flood to the step's rate, warm up, measure a window of a few
seconds, then stop it (SIGTERM's path: stop the venue, drain the queue, checkpoint).

Two sections, each run in two arms (`--arm`):

* **latency at 1k/s**, `--runs` (5) runs in each durability mode (`kernel.synchronous`
  NORMAL and FULL), interleaved: each run's p50/p99, and the worst p99 of the runs
  against the target (≤ 2 ms);
* **the ramp** (FULL): one step per offered rate, up to 40,000/s, well past saturation,
  so the table shows whether the committed rate plateaus or collapses when offered more
  than it takes; `--ramp-rounds` (2) ramps one after the other, each rate's row its best
  round (noise only takes throughput away). Target: a step sustained at ≥ 20,000 events/s
  committed.

Arms: **plain** (no intents, no API client: the daemon and the flood) and **loaded**:
before the flood is raised, `bench.intents` puts `--intents` (1,000) resting buy limits
into the daemon (`specs`, `log_all`, `until_active`, with its config: the reconciler's
token bucket opened, 1,000,000 USDT deposited so margin never refuses) and
`bench.api_subscribers` attaches `--subscribers` (20) snapshot subscribers over the API's
unix socket, in a child process (its `Clients`). The intents are *being worked*: the
reconciler holds each as an ACTIVE order on the sim venue; it wakes on every snapshot and
diffs all 1,000 every `tick_s` (0.5 s; a wake-up whose book is the one an idle diff
already looked at returns at once, so a mark costs no diff). The flood is marks only, far
from the limits (half the start price) and the intents do not follow the mark, so
nothing of theirs moves: no amend, no fill. The subscribers read every frame they are
sent (conflated snapshots, with all 1,000 intents and their orders in each); their own
commit → receive delay is reported too (commit: the batch handed to the hub;
`perf_counter_ns` in both processes, CLOCK_MONOTONIC).

Per step: the rate the sim generated (offered), the rate committed to the log
(`writer.state.seq` over the window), the daemon queue's depth at the end of the window and
its maximum, whether it saturated (a `_put` found the queue at `kernel.queue_size`: the
venue loop was back-pressured), the sim's own backlog (its unbounded internal queue), and
the latency of every event the venue emitted in the window:

* **emit → published** (the target): `perf_counter_ns` when the sim put the wire message
  into its queue (what a socket would have delivered) to when the writer loop handed the
  snapshot holding the event to the hub (after its commit; a batch is published once, by
  its last snapshot, and every event in it counts). So it includes the adapter's parse,
  the daemon's queue, the batch, dedup, fold, project, the commit and the fan-out's
  notice. At saturation it also includes the sim's own backlog.
* **yield → published**: the same end, from `facts()` yielding the parsed event: the
  daemon's part alone.

Where a step's time goes (both arms; hooks on the instance, each a `perf_counter_ns` pair):
the reconciler's passes (`Reconciler.step`), the fan-out's passes (`Fanout.send_pass`)
and the public snapshot's encoding inside them (the hub's encoder), and each batch's
commit (`BatchResult.commit_seconds`, the wall time of `log.append`, ending at the
publish), as spans a second, ms each, and share of the window's wall time; and the share
of the slowest 1% of events' (above the step's p99) emit → published time spent in each.
The loop thread's CPU (`time.thread_time`) and its time runnable but off CPU
(`/proc/thread-self/schedstat`: another process had the core) are columns of the tables.

Knobs of the bench, not of the kernel:

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
  fraction over, so the offered rate is the one asked for. The rate is raised by
  replacing the venue's `config` (its clock task reads `flood_per_s` on every run).
* pace: the sim's clock task runs every `pace_s` (default its `tick_s`, 250 ms), so the
  flood would arrive in bursts of rate × pace, and only on the ms between the last tick
  and now (at the default pace, in phase with the ticks, 1,000/s asked with 2 instruments
  delivered ~150/s). The bench runs it every 1 ms: a smooth stream.

Progress goes to stderr; markdown tables to stdout. A last section prints the top
functions (own time) of a cProfile of a plain step at the lowest saturating rate, and of a
loaded step at 1k/s, with own time by component (main thread only: SQLite's own work runs
in aiosqlite's thread; the subscribers run in their own process).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime
import os
import platform
import sqlite3
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from adapters.sim.config import SimConfig, SimInstrument, SimTrader
from bench import disk_floor
from bench.flood_report import (
    COMPONENTS,
    LOADED_COMPONENTS,
    Busy,
    Load,
    Span,
    Step,
    fmt,
    instrument_count,
    latency_summary,
    pct,
    profile_text,
    ramp_summary,
    table,
    where_table,
    within,
    worst,
)
from bench.timed_daemon import TimedDaemon, TimedVenue
from kernel import money
from kernel.daemon import logs
from kernel.daemon.config import Config, load_config
from kernel.daemon.metrics import Metrics
from kernel.intents import IntentBook
from kernel.snapshot import AccountSnapshotV2

if TYPE_CHECKING:  # imported where used: both import this module at their top
    from bench.api_subscribers import Clients

OUT = Path(__file__).resolve().parent / "out"
FAST_PACE_S = 0.001
#: The flood while a step's daemon gets ready and its load is set up.
SETUP_FLOOD = 1_000
RATES = (1_000, 5_000, 10_000, 15_000, 20_000, 25_000, 30_000, 35_000, 40_000)
QUICK_RATES = (1_000, 20_000)
STARTED = time.monotonic()


def progress(msg: str) -> None:
    print(f"[flood {time.monotonic() - STARTED:5.1f} s] {msg}", file=sys.stderr, flush=True)


class FloodDaemon(TimedDaemon):
    """TimedDaemon with metrics (as `exkernel run` has them, not served) that also notes
    when each reconciler pass, fan-out pass and public snapshot encoding ran."""

    def __init__(self, cfg: Config, venue: TimedVenue, state_dir: Path) -> None:
        super().__init__(cfg, venue, state_dir, metrics=Metrics())
        self.passes: list[Span] = []
        self.fanouts: list[Span] = []
        self.encodes: list[Span] = []
        self.snapshot_bytes = 0
        step = self.reconciler.step

        async def timed_step(*, ticked: bool = True) -> None:
            t = time.perf_counter_ns()
            try:
                await step(ticked=ticked)
            finally:
                self.passes.append((t, time.perf_counter_ns()))

        self.reconciler.step = timed_step  # type: ignore[method-assign]
        send_pass = self.api.fanout.send_pass

        def timed_pass(now: float) -> bool:
            t = time.perf_counter_ns()
            try:
                return send_pass(now)
            finally:
                self.fanouts.append((t, time.perf_counter_ns()))

        self.api.fanout.send_pass = timed_pass  # type: ignore[method-assign]
        encoder = self.hub._encoder

        def timed_encoder(snap: AccountSnapshotV2, book: IntentBook, *,
                          with_book: bool = True) -> bytes:
            t = time.perf_counter_ns()
            body = encoder(snap, book, with_book=with_book)
            self.encodes.append((t, time.perf_counter_ns()))
            self.snapshot_bytes = len(body)
            return body

        self.hub._encoder = timed_encoder


def instruments(n: int) -> tuple[SimInstrument, ...]:
    return tuple(
        SimInstrument(symbol=f"S{i:02d}USDT", base=f"S{i:02d}", quote="USDT", settle="USDT",
                      tick_size=Decimal("0.01"), lot_size=Decimal("0.001"),
                      start_price=Decimal(100 + i))
        for i in range(n))


def config(flood: int, sync: str) -> Config:
    base = load_config(None)
    sim = SimConfig(instruments=instruments(instrument_count(flood)),
                    trader=SimTrader(enabled=False), funding_interval_s=3600.0, flood_per_s=flood)
    return msgspec.structs.replace(
        base,
        kernel=msgspec.structs.replace(base.kernel, synchronous=sync),
        venue=msgspec.structs.replace(base.venue, sim=sim),
    )


def loaded_config(flood: int, sync: str) -> Config:
    """`bench.intents`' config (the same sim, the token bucket opened, deposits that
    margin never refuses) at `sync`."""
    from bench import intents

    base = intents.config(flood)
    return msgspec.structs.replace(
        base, kernel=msgspec.structs.replace(base.kernel, synchronous=sync))


async def set_up(daemon: FloodDaemon, load: Load) -> Clients | None:
    """`load.intents` working intents ACTIVE, then the subscribers attached and caught up."""
    from bench import api_subscribers, intents

    batch = intents.specs(daemon.cfg, load.intents, prefix="w")
    await intents.log_all(daemon, batch)
    await intents.until_active(daemon, [s.intent_id for s in batch])
    if not load.subscribers:
        return None
    return await api_subscribers.Clients.start(
        daemon.api.socket_path, "snapshots-bare" if load.bare else "snapshots",
        load.subscribers, nice=load.nice)


async def run_step(name: str, flood: int, sync: str, warmup: float, seconds: float,
                   scratch: Path, load: Load | None = None,
                   profile: cProfile.Profile | None = None) -> Step:
    cfg = config(flood, sync) if load is None else loaded_config(flood, sync)
    sim = msgspec.structs.replace(cfg.venue.sim, flood_per_s=min(flood, SETUP_FLOOD))
    venue = TimedVenue(sim, pace_s=FAST_PACE_S)
    state_dir = Path(tempfile.mkdtemp(dir=scratch, prefix="state-"))
    daemon = FloodDaemon(cfg, venue, state_dir)
    run = asyncio.create_task(daemon.run(), name="daemon")
    ready = asyncio.create_task(daemon.ready.wait())
    await asyncio.wait({ready, run}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        daemon.stop()
        raise RuntimeError(f"the daemon did not get ready: {await run!r}")
    clients: Clients | None = None
    try:
        if load is not None:
            clients = await set_up(daemon, load)
        while daemon.queue.qsize() > 100:  # the setup's backlog
            await asyncio.sleep(0.05)
        venue.config = cfg.venue.sim  # the step's rate
        step = await measure(name, daemon, sync, flood, warmup, seconds, profile)
        step.load = load
        if clients is not None:
            got = await clients.stop()
            clients = None
            t0, t1 = daemon.window or (0, 0)
            step.sub_delays = sub_delays(daemon, got["seen"], t0, t1)
            counts = [sum(1 for _, at in sub if t0 <= at <= t1) for sub in got["seen"]]
            step.sub_pushes = sum(counts) / len(counts) / seconds
            step.sub_dead = sum(1 for c in counts if c == 0)
        assert daemon._writer is not None
        step.active = sum(o.status == "ACTIVE"
                          for o in daemon._writer.state.book.orders.values())
    finally:
        if clients is not None:  # failed midway
            clients.proc.kill()
            await clients.proc.wait()
        daemon.stop()
        code = await asyncio.wait_for(run, 120)
    assert code == 0, f"daemon exited {code}"
    if load is not None:
        assert step.active == load.intents, f"{step.active} intents ACTIVE, not {load.intents}"
    # The drain published the window's last events: their samples are in.
    step.samples, step.yields = daemon.samples, daemon.yield_latencies
    t0, t1 = daemon.window or (0, 0)
    wall = (t1 - t0) / 1e9
    step.busy = {"reconciler": Busy(within(daemon.passes, t0, t1), wall),
                 "fanout": Busy(within(daemon.fanouts, t0, t1), wall),
                 "encode": Busy(within(daemon.encodes, t0, t1), wall),
                 "commit": Busy(within(daemon.commits, t0, t1), wall)}
    step.snapshot_bytes = daemon.snapshot_bytes
    for f in state_dir.iterdir():
        f.unlink()
    state_dir.rmdir()
    return step


async def measure(name: str, daemon: FloodDaemon, sync: str, flood: int, warmup: float,
                  seconds: float, profile: cProfile.Profile | None) -> Step:
    await asyncio.sleep(warmup)
    assert daemon._writer is not None
    writer, venue = daemon._writer, daemon.venue
    seq0, gen0, full0 = writer.state.seq, venue.generated, daemon.full_puts
    daemon.max_depth = daemon.queue.qsize()
    t0, cpu0, loop0, wait0 = (time.perf_counter(), time.process_time(), time.thread_time(),
                              run_queue_ns())
    start = time.perf_counter_ns()
    daemon.window = (start, start + int(seconds * 1e9))
    if profile is not None:
        profile.enable()
    await asyncio.sleep(seconds)
    if profile is not None:
        profile.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    loop, wait1 = time.thread_time() - loop0, run_queue_ns()  # this task: the loop's thread
    daemon.window = (start, time.perf_counter_ns())
    return Step(
        name=name, sync=sync, pace_s=FAST_PACE_S, flood=flood,
        offered=(venue.generated - gen0) / wall,
        committed=(writer.state.seq - seq0) / wall,
        cpu_share=100 * cpu / wall, loop_share=100 * loop / wall,
        waited=None if wait0 is None or wait1 is None else (wait1 - wait0) / 1e7 / wall,
        depth_end=daemon.queue.qsize(), depth_max=daemon.max_depth,
        queue_size=daemon.cfg.kernel.queue_size, full_puts=daemon.full_puts - full0,
        backlog=venue._queue.qsize(),
    )


def run_queue_ns() -> int | None:
    """How long this thread has waited runnable for a CPU (Linux schedstat), ns: on a
    shared machine, the time another process had the core."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None


def sub_delays(d: FloodDaemon, seen: list[list[list[int]]], t0: int, t1: int) -> list[int]:
    """Commit → subscriber of each frame the subscribers got of a batch committed in
    [t0, t1] (as `bench.api_subscribers` measures it)."""
    out = []
    for sub in seen:
        for seq, at in sub:
            c = d.commit_ns(seq)
            if c is not None and t0 <= c <= t1:
                out.append(at - c)
    return out


def header(seconds: float, warmup: float, load: Load | None, load_avg: tuple[float, ...]) -> str:
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    cmd = " ".join([".venv/bin/python -m bench.daemon_flood", *sys.argv[1:]])
    return "\n".join([
        f"- command: `{cmd}`",
        f"- date: {now}",
        f"- machine: {os.cpu_count()} CPUs, {platform.machine()}, {platform.platform()};"
        f" load average at the start {', '.join(f'{x:.2f}' for x in load_avg)} (1, 5, 15"
        f" min), at the end {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        "- sim: `instr` linear perpetuals (the flood's cap is 1,000/s per instrument; one"
        " mark each per 250 ms tick besides), trader disabled, no faults; default kernel"
        " config (queue_size 10,000, batch_max 1,000, reconciler on) except `synchronous`;"
        " logs at info (JSON to /dev/null), metrics on (not served)",
        f"- each step: a fresh daemon, ready at ≤ {SETUP_FLOOD:,}/s, its load set up, the"
        f" flood raised, {warmup:g} s warm-up, a {seconds:g} s window",
        *([] if load is None else [
            f"- loaded arm: {load.intents:,} resting limit intents ACTIVE (bench.intents;"
            " the token bucket opened, 1,000,000 USDT deposited), then"
            f" {load.subscribers} snapshot subscribers on the unix socket in a child"
            " process (bench.api_subscribers)"
            + (", subscribed with `book: false`" if load.bare else "")
            + (f", that process at nice {load.nice}" if load.nice else "")]),
        "- latency: p50/p99/max are venue emit (the sim's push) → the snapshot holding the"
        " event handed to the hub; yield→pub starts at `facts()` yielding it",
    ])


async def interleaved(specs: list[tuple[str, int, str, Load | None]], warmup: float,
                      seconds: float, scratch: Path, floor: bool = False) -> list[Step]:
    """Each step in turn; with `floor`, each followed by the disk's floor at its rate
    and durability (`bench.disk_floor`), on a file in the same scratch directory."""
    out = []
    for name, flood, sync, load in specs:
        progress(f"{name}: flood {flood:,}/s, {sync}")
        step = await run_step(name, flood, sync, warmup, seconds, scratch, load)
        if floor:
            progress(f"{name}: the disk's floor, {flood:,}/s, {sync}")
            with tempfile.TemporaryDirectory(dir=scratch, prefix="floor-") as tmp:
                step.floor = await asyncio.to_thread(disk_floor.floor, Path(tmp) / "floor.db",
                                                     sync, flood, warmup, seconds)
        out.append(step)
    return out


async def main_async(args: argparse.Namespace, scratch: Path) -> None:
    load_avg = os.getloadavg()
    seconds, warmup = (1.0, 0.3) if args.quick else (4.0, 1.0)
    load = Load(args.intents, args.subscribers, args.bare_book, args.clients_nice)
    arms: list[tuple[str, Load | None]] = [("", None), (", loaded", load)]
    arms = [a for a in arms if args.arm == "both" or (a[1] is None) == (args.arm == "plain")]
    lat_specs = [(f"1k run {r}{suffix}", 1_000, sync, ld)
                 for r in range(1, args.runs + 1) for suffix, ld in arms
                 for sync in ("NORMAL", "FULL")]
    ramp_specs = [(f"ramp {rate / 1000:g}k{suffix}", rate, "FULL", ld)
                  for rate in args.rates for suffix, ld in arms]
    one_k = await interleaved(lat_specs, warmup, seconds, scratch, args.floor) \
        if args.only in (None, "latency") else []
    ramp: list[Step] = []
    rounds: list[str] = []
    if args.only in (None, "ramp"):
        got = [await interleaved(ramp_specs, warmup, seconds, scratch)
               for _ in range(args.ramp_rounds)]
        for same in zip(*got, strict=True):  # noise only takes throughput away
            ramp.append(max(same, key=lambda s: s.committed))
            if args.ramp_rounds > 1:
                rounds.append(f"{same[0].name}: committed/s by round"
                              f" {', '.join(f'{s.committed:,.0f}' for s in same)}")
    profiles: list[str] = []
    if args.profile:
        if ramp and any(a[1] is None for a in arms):
            sat = [s.flood for s in ramp if s.saturated and s.load is None]
            rate = min(sat) if sat else max(args.rates)
            progress(f"cProfile at flood {rate:,}/s, FULL, plain")
            prof = cProfile.Profile()
            step = await run_step(f"profiled {rate / 1000:g}k", rate, "FULL", warmup,
                                  seconds, scratch, profile=prof)
            profiles.append(profile_text(
                f"cProfile of {seconds:g} s at flood {rate:,}/s, FULL, plain (main thread;"
                f" {step.committed:,.0f} events/s committed under the profiler), top"
                f" {args.top} by own time:", prof, args.top, COMPONENTS))
        if any(a[1] is not None for a in arms):
            progress("cProfile at flood 1,000/s, FULL, loaded")
            prof = cProfile.Profile()
            step = await run_step("profiled 1k, loaded", 1_000, "FULL", warmup, seconds,
                                  scratch, load, profile=prof)
            profiles.append(profile_text(
                f"cProfile of {seconds:g} s at flood 1,000/s, FULL, loaded (main thread;"
                f" {step.committed:,.0f} events/s committed, p99 {fmt(step.pct(0.99))} ms"
                f" under the profiler), top {args.top} by own time:", prof, args.top,
                LOADED_COMPONENTS))
    print(header(seconds, warmup, load if arms[-1][1] else None, load_avg))
    if one_k:
        print(f"\nLatency at 1k/s, {args.runs} run(s) per arm and mode, interleaved:\n")
        print(table(one_k))
        print()
        print(latency_summary(one_k))
        daemon = {sync: fmt(worst([pct(s.yields, 0.99) for s in one_k if s.sync == sync]))
                  for sync in ("NORMAL", "FULL")}
        print(f"\n- p99 yield→publish at 1k/s (the daemon's part), worst of the runs, all"
              f" arms: NORMAL {daemon['NORMAL']} ms, FULL {daemon['FULL']} ms")
    if ramp:
        print(f"\nThe ramp (FULL), arms interleaved rate by rate, {args.ramp_rounds} round(s):\n")
        print(table(ramp))
        print()
        print(ramp_summary(ramp))
        for line in rounds:
            print(f"- {line} (the table shows the best)")
    print("\nWhere the time goes (the window's spans; tail: the events slower than the"
          " step's p99, and the share of their emit → published time spent in each kind of"
          " work; an encode runs inside a fan-out pass; a commit is the wall time of the"
          " writer's `log.append`, which also counts loop work that delays the writer's"
          " resumption, so it overlaps the others):\n")
    print(where_table(one_k + ramp))
    for text in profiles:
        print()
        print(text)


def rates(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.daemon_flood", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="1 run, the ramp at 1k and 20k/s, 200 intents, 1 s windows (~17 s)")
    p.add_argument("--arm", choices=("plain", "loaded", "both"), default="both",
                   help="plain: no intents, no subscribers; loaded: with both (default both)")
    p.add_argument("--loaded", dest="arm", action="store_const", const="loaded",
                   help="only the loaded arm (--arm loaded)")
    p.add_argument("--only", choices=("latency", "ramp"), help="one of the two sections")
    p.add_argument("--runs", type=int, default=None,
                   help="1k/s latency runs per arm and mode (default 5; 1 with --quick)")
    p.add_argument("--rates", type=rates, default=None,
                   help="the ramp's offered rates, comma-separated (default 1000,5000,...,40000)")
    p.add_argument("--ramp-rounds", type=int, default=None,
                   help="ramps, one after the other; each rate's row is its best round"
                   " (default 2; 1 with --quick)")
    p.add_argument("--intents", type=int, default=None,
                   help="the loaded arm's working intents (default 1,000; 200 with --quick)")
    p.add_argument("--bare-book", action="store_true",
                   help="the loaded arm's subscribers ask for snapshots without the book")
    p.add_argument("--subscribers", type=int, default=20,
                   help="the loaded arm's snapshot subscribers")
    p.add_argument("--clients-nice", type=int, default=0, metavar="N",
                   help="run the subscribers' process N steps nicer than the daemon (as a"
                   " deployment that gives the kernel the CPU first)")
    p.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None,
                   help="cProfile a step of each arm (default: on, off with --quick)")
    p.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the disk's floor after each latency run (default: on)")
    p.add_argument("--top", type=int, default=8, help="functions shown from a profile")
    p.add_argument("--out", type=Path, default=OUT, help="scratch dir (default bench/out)")
    args = p.parse_args()
    if args.profile is None:
        args.profile = not args.quick
    if args.runs is None:
        args.runs = 1 if args.quick else 5
    if args.ramp_rounds is None:
        args.ramp_rounds = 1 if args.quick else 2
    if args.intents is None:
        args.intents = 200 if args.quick else 1_000
    if args.rates is None:
        args.rates = QUICK_RATES if args.quick else RATES
    args.out.mkdir(parents=True, exist_ok=True)
    if args.arm != "plain":
        from bench import api_subscribers

        os.environ["EXKERNEL_API_TOKEN"] = api_subscribers.TOKEN  # the operator token
    devnull = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    logs.configure("info", json=True, stream=devnull)
    money.install()
    with tempfile.TemporaryDirectory(dir=args.out, prefix="flood-") as tmp:
        asyncio.run(main_async(args, Path(tmp)))


if __name__ == "__main__":
    main()
