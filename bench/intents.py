"""The intent reconciler in the whole daemon: `python -m bench.intents [--quick]`.

In process, as bench/daemon_flood.py drives it: the real `Daemon` (default config:
FULL, the reconciler on) on a fresh state dir with daemon_flood's `SimVenue` (trader
off, the flood delivered smoothly as asked). Two measurements (`--only` one of them):

1. **latency**: intent logged → place sent, over ≥ 500 intents. *Logged*: the daemon's
   publish hook (`Daemon._published`; the subclass stamps, then calls super) sees the
   `intent_placed` snapshot: the event is committed. *Written ahead*: the same hook sees
   the reconciler's `place_order`. *Sent*: the reconciler calls the venue's `place` (the
   bench's venue stamps on entry, after the token bucket). Runs: intents logged one at a
   time the API's way (`kernel.daemon.intake.log_intent`), paced, quiet and under a mark
   flood; all in one submission; and `kernel.client.Client` in a process of its own on
   the unix socket, one request in flight, paced. One clock: `time.monotonic_ns`
   (CLOCK_MONOTONIC, the same in both processes).
2. **flood**: sustained events/s with 1,000 working intents against none. Per round and
   arm one daemon: the intents (resting buy limits at half the mark, so every pass diffs
   1,000 ACTIVE intents and finds nothing) placed and acknowledged, then the flood raised
   level by level until one is not sustained twice running. *Sustained* as daemon_flood
   says: the queue never full, committed ≥ 97% of offered, the queue at the level's end
   ≤ 10% of its size. The arms alternate; each arm's best round counts (the machine is
   shared: noise only takes away). Target: with ÷ without ≥ 0.8. Per level also the
   event loop thread's CPU (`time.thread_time`) and the part of it inside
   `Reconciler.step` (wrapped on the instance); a last section profiles both arms at
   the lowest level (the smallest batches: the most passes per event).

Bench settings, not the kernel's: the reconciler's token bucket is opened (100,000/s,
burst 2,000: the default 10/s would make every latency the rate limit's), deposits of
1,000,000 USDT, logs at info as JSON to /dev/null, metrics on (not served).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime
import io
import json
import os
import platform
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from adapters.base import Outcome
from adapters.sim.config import SimConfig, SimTrader
from adapters.sim.venue import SimVenue
from bench.daemon_flood import FAST_PACE_S, instruments
from bench.flood_report import COMPONENTS, instrument_count
from bench.timed_daemon import TimedVenue
from events.base import key
from events.orders import IntentPlaced, PlaceOrder
from kernel import intake, money
from kernel.daemon import logs
from kernel.daemon.auth import Grant, TokenTable, digest
from kernel.daemon.config import Config, load_config
from kernel.daemon.intake import log_intent
from kernel.daemon.metrics import Metrics
from kernel.daemon.service import Daemon
from kernel.daemon.writer import Writer
from kernel.diff import client_order_id
from kernel.protocol import IntentSpec
from kernel.snapshot import AccountSnapshotV2

OUT = Path(__file__).resolve().parent / "out"
TOKEN_ENV = "BENCH_INTENTS_TOKEN"
TOKEN = "bench-intents-token-0123456789"  # a throwaway daemon's, on a socket in a temp dir
RATIO_TARGET = 0.8


def progress(msg: str) -> None:
    print(f"[intents] {msg}", file=sys.stderr, flush=True)


class BenchVenue(TimedVenue):
    """daemon_flood's venue without its per-event stamps; `place` notes when the
    reconciler first called it per intent, and the time spent in the sim's own `place`."""

    facts = SimVenue.facts

    def __init__(self, config: SimConfig) -> None:
        super().__init__(config, pace_s=FAST_PACE_S)
        self.sent: dict[str, int] = {}
        self.place_ns = 0

    async def place(self, cmd: PlaceOrder) -> Outcome:
        t = time.monotonic_ns()
        self.sent.setdefault(cmd.intent_id, t)
        try:
            return await super().place(cmd)
        finally:
            self.place_ns += time.monotonic_ns() - t


class BenchDaemon(Daemon):
    """Stamps the commit of the events in `watch` (dedup key → label), notes when the
    bounded queue was full (as daemon_flood's), and times each reconciler pass."""

    venue: BenchVenue

    def __init__(self, cfg: Config, venue: BenchVenue, state_dir: Path,
                 watch: Mapping[str, tuple[str, str]]) -> None:
        grant = Grant(name="bench", scopes=frozenset({"read", "trade"}))
        super().__init__(cfg, venue, state_dir, metrics=Metrics(),
                         tokens=TokenTable([(digest(TOKEN), grant)]))
        self.watch = watch
        self.stamps: dict[tuple[str, str], int] = {}
        self.full_puts = self.max_depth = 0
        self.pass_cpu = 0.0  # this thread's CPU inside `Reconciler.step` (not wall: the
        step = self.reconciler.step  # GIL and the other processes would count there)

        async def timed_step(*, ticked: bool = True) -> None:
            t = time.thread_time()
            try:
                await step(ticked=ticked)
            finally:
                self.pass_cpu += time.thread_time() - t

        self.reconciler.step = timed_step  # type: ignore[method-assign]

    def _published(self, snap: AccountSnapshotV2) -> None:
        hit = self.watch.get(snap.source_event_id)
        if hit is not None:
            self.stamps.setdefault(hit, time.monotonic_ns())
        super()._published(snap)

    async def _put(self, event: Any) -> None:
        self.full_puts += self.queue.full()
        await super()._put(event)
        self.max_depth = max(self.max_depth, self.queue.qsize())


def config(flood: int) -> Config:
    base = load_config(None)
    sim = SimConfig(instruments=instruments(instrument_count(flood)),
                    trader=SimTrader(enabled=False), funding_interval_s=3600.0,
                    flood_per_s=flood, deposits={"USDT": Decimal(1_000_000)})
    return msgspec.structs.replace(
        base, venue=msgspec.structs.replace(base.venue, sim=sim),
        reconciler=msgspec.structs.replace(base.reconciler, orders_per_s=100_000.0,
                                           burst=2_000))


def specs(cfg: Config, n: int, prefix: str) -> list[IntentSpec]:
    """`n` buy limits round-robin over the instruments, from half the start price down a
    tick each: far from the mark, so they rest; distinct, so none is a repeat."""
    insts = cfg.venue.sim.instruments
    out = []
    for i in range(n):
        inst = insts[i % len(insts)]
        top = (inst.start_price / 2).quantize(inst.tick_size)
        out.append(IntentSpec(intent_id=f"{prefix}{i:05d}", symbol=inst.symbol, side="buy",
                              order_type="limit", qty=Decimal("0.5"),
                              price=top - (i // len(insts)) * inst.tick_size))
    return out


@contextlib.asynccontextmanager
async def running(cfg: Config, scratch: Path, ids: list[str] = []  # noqa: B006 (read only)
                  ) -> AsyncIterator[BenchDaemon]:
    """A ready daemon watching each of `ids`' `intent_placed` and first `place_order`."""
    watch = {}
    for i in ids:
        watch[key("intent", i, "placed")] = (i, "logged")
        watch[key("command", f"{client_order_id(cfg.reconciler.diff, i, 0)}:place")] = (
            i, "ahead")
    state_dir = Path(tempfile.mkdtemp(dir=scratch, prefix="s-"))
    daemon = BenchDaemon(cfg, BenchVenue(cfg.venue.sim), state_dir, watch)
    run = asyncio.create_task(daemon.run(), name="daemon")
    ready = asyncio.create_task(daemon.ready.wait())
    await asyncio.wait({ready, run}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        daemon.stop()
        raise RuntimeError(f"the daemon did not get ready: {await run!r}")
    try:
        yield daemon
    finally:
        daemon.stop()
        assert await stopped(daemon, run) == 0
        for f in state_dir.iterdir():
            f.unlink()
        state_dir.rmdir()


async def stopped(daemon: Daemon, run: asyncio.Task[int]) -> int:
    """`run`'s exit status; a stop that hangs is an error that says where it hangs (this
    bench found the reconciler's 3.11 `wait_for` swallowing the drain's cancel, fixed
    since in baa9dbc)."""
    done, _ = await asyncio.wait([run], timeout=120)
    if not done:
        rt = daemon._reconciler_task
        raise RuntimeError("the daemon did not stop within 120 s; reconciler task:"
                           f" {rt!r}, cancelling={rt.cancelling() if rt else None}")
    return run.result()


def writer(daemon: Daemon) -> Writer:
    assert daemon._writer is not None
    return daemon._writer


async def log_all(daemon: Daemon, batch: list[IntentSpec]) -> None:
    """All of `batch` in one submission, one commit (the writer's admission screens them;
    the API's pre-trade checks are not asked): then one pass places them all."""

    async def fn(w: Writer) -> None:
        events = [intake.placed(s, w.now()) for s in batch]
        result = await w.ingest(events)  # type: ignore[arg-type]
        assert result.appended == len(batch), result

    await daemon.writer_loop.submit(fn)


async def until_active(daemon: Daemon, ids: list[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not all((o := writer(daemon).state.book.orders.get(i)) is not None
                  and o.status == "ACTIVE" for i in ids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"intents not all ACTIVE after {timeout} s")
        await asyncio.sleep(0.05)


# -- 1. latency ---------------------------------------------------------------------------


@dataclass
class Latency:
    name: str
    #: Per intent, monotonic ns: submitted, logged, ahead, sent, and reply (API only).
    rows: list[dict[str, int]]
    place_ms: float  # inside the sim's `place`, all intents together


async def paced(daemon: BenchDaemon, batch: list[IntentSpec], rate: float) -> dict[str, int]:
    submitted = {}
    start = time.monotonic()
    for k, spec in enumerate(batch):
        await asyncio.sleep(max(0.0, start + k / rate - time.monotonic()))
        submitted[spec.intent_id] = time.monotonic_ns()
        event = intake.placed(spec, writer(daemon).now())
        assert isinstance(event, IntentPlaced), event
        done = await log_intent(daemon.writer_loop, event, daemon.cfg.risk)
        assert isinstance(done, intake.Done) and not done.duplicate, done
    return submitted


async def api_client(socket: Path, batch: list[IntentSpec], rate: float
                     ) -> dict[str, tuple[int, int]]:
    """`client_main` in its own process: per intent (submitted, reply), monotonic ns."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.intents", "--client", str(socket), "--rate", str(rate),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, TOKEN_ENV: TOKEN}, cwd=Path(__file__).resolve().parent.parent)
    out, _ = await proc.communicate(msgspec.json.encode(batch))
    assert proc.returncode == 0, f"the client exited {proc.returncode}"
    return {i: (a, b) for i, a, b in json.loads(out)}


async def client_main(socket: str, rate: float) -> None:
    from kernel.client import Client

    batch = msgspec.json.decode(sys.stdin.buffer.read(), type=list[IntentSpec])
    out = []
    async with await Client.connect(unix_path=socket, token=os.environ[TOKEN_ENV]) as client:
        start = time.monotonic()
        for k, s in enumerate(batch):
            await asyncio.sleep(max(0.0, start + k / rate - time.monotonic()))
            t0 = time.monotonic_ns()
            logged = await client.place_intent(
                intent_id=s.intent_id, symbol=s.symbol, side=s.side, order_type="limit",
                qty=s.qty, price=s.price)
            out.append((s.intent_id, t0, time.monotonic_ns()))
            assert not logged.duplicate
    print(json.dumps(out))


async def latency_run(name: str, mode: str, n: int, flood: int, rate: float,
                      scratch: Path) -> Latency:
    progress(f"latency: {name}")
    cfg = config(flood)
    batch = specs(cfg, n, prefix=mode[0])
    ids = [s.intent_id for s in batch]
    replies: dict[str, int] = {}
    async with running(cfg, scratch, ids) as daemon:
        await asyncio.sleep(0.5)  # past the connect's resync
        if mode == "api":
            got = await api_client(daemon.api.socket_path, batch, rate)
            submitted = {i: a for i, (a, _) in got.items()}
            replies = {i: b for i, (_, b) in got.items()}
        elif mode == "burst":
            t0 = time.monotonic_ns()
            await log_all(daemon, batch)
            submitted = dict.fromkeys(ids, t0)
        else:
            submitted = await paced(daemon, batch, rate)
        await until_active(daemon, ids)
        rows = [{"submitted": submitted[i], "logged": daemon.stamps[(i, "logged")],
                 "ahead": daemon.stamps[(i, "ahead")], "sent": daemon.venue.sent[i],
                 **({"reply": replies[i]} if replies else {})} for i in ids]
        return Latency(name, rows, daemon.venue.place_ns / 1e6)


SEGMENTS = (("submitted", "logged", "submitted → logged (committed)"),
            ("submitted", "reply", "submitted → reply at the client"),
            ("logged", "ahead", "logged → place_order committed (write-ahead)"),
            ("ahead", "sent", "write-ahead committed → venue `place` called"),
            ("logged", "sent", "**logged → place sent**"),
            ("submitted", "sent", "submitted → place sent"))


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def latency_table(runs: list[Latency]) -> str:
    out = ["| run | intents | segment | p50 ms | p99 ms | max ms |",
           "|---|---:|---|---:|---:|---:|"]
    for r in runs:
        for a, b, label in SEGMENTS:
            if b in r.rows[0]:
                ms = [(x[b] - x[a]) / 1e6 for x in r.rows]
                out.append(f"| {r.name} | {len(r.rows):,} | {label} | {pct(ms, 0.5):.2f}"
                           f" | {pct(ms, 0.99):.2f} | {max(ms):.2f} |")
    out += ["", "- inside the sim's own `place` (its engine, the load generator's time), all"
            " of a run's intents together: " + "; ".join(f"{r.name}: {r.place_ms:.0f} ms"
                                                          for r in runs)]
    return "\n".join(out)


# -- 2. events/s with 1,000 working intents ----------------------------------------------


@dataclass
class Level:
    round: int
    intents: int
    flood: int
    offered: float
    committed: float
    cpu_share: float  # process CPU (all threads: SQLite's too) over wall, %
    loop_share: float  # the event loop thread's CPU over wall, %
    cpu_us: float  # process CPU per committed event
    passes: float
    pass_ms: float  # the loop thread's CPU a pass
    pass_share: float  # % of the loop thread's CPU inside `Reconciler.step`
    depth_end: int
    depth_max: int
    full_puts: int
    queue_size: int

    @property
    def sustained(self) -> bool:
        return (self.full_puts == 0 and self.depth_max < self.queue_size
                and self.committed >= 0.97 * self.offered
                and self.depth_end <= self.queue_size // 10)


async def measure(daemon: BenchDaemon, rnd: int, n: int, rate: int, seconds: float) -> Level:
    venue, w = daemon.venue, writer(daemon)
    # The bench's load knob: the venue's clock task reads `flood_per_s` on every run.
    venue.config = msgspec.structs.replace(venue.config, flood_per_s=rate)
    seq0, gen0, full0 = w.state.seq, venue.generated, daemon.full_puts
    passes0, pass0 = daemon.reconciler.passes, daemon.pass_cpu
    daemon.max_depth = daemon.queue.qsize()
    t0, cpu0, loop0 = time.perf_counter(), time.process_time(), time.thread_time()
    await asyncio.sleep(seconds)  # this task runs in the loop's thread: thread_time is its
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    loop = time.thread_time() - loop0
    events, passes = w.state.seq - seq0, daemon.reconciler.passes - passes0
    in_passes = daemon.pass_cpu - pass0
    return Level(round=rnd, intents=n, flood=rate, offered=(venue.generated - gen0) / wall,
                 committed=events / wall, cpu_share=100 * cpu / wall,
                 loop_share=100 * loop / wall, cpu_us=1e6 * cpu / max(events, 1),
                 passes=passes / wall, pass_ms=1e3 * in_passes / max(passes, 1),
                 pass_share=100 * in_passes / max(loop, 1e-9),
                 depth_end=daemon.queue.qsize(), depth_max=daemon.max_depth,
                 full_puts=daemon.full_puts - full0, queue_size=daemon.cfg.kernel.queue_size)


async def ramp(n: int, levels: list[int], level_s: float, settle_s: float, scratch: Path,
               rnd: int, profile: cProfile.Profile | None = None) -> tuple[list[Level], float]:
    """One daemon with `n` intents ACTIVE, the flood raised through `levels` until one
    fails twice running. The first level starts `settle_s` after ready, or later if the
    setup or its backlog is not done by then. Returns the levels and the settle time."""
    cfg = config(levels[-1])  # instruments enough for the top level
    out: list[Level] = []
    async with running(cfg, scratch) as daemon:
        t_ready = time.perf_counter()
        daemon.venue.config = msgspec.structs.replace(cfg.venue.sim, flood_per_s=levels[0])
        if n:
            batch = specs(cfg, n, prefix="w")
            await log_all(daemon, batch)
            await until_active(daemon, [s.intent_id for s in batch])
        await asyncio.sleep(max(0.0, t_ready + settle_s - time.perf_counter()))
        while daemon.queue.qsize() > 100:
            await asyncio.sleep(0.1)
        settled = time.perf_counter() - t_ready
        if profile is not None:
            profile.enable()
        for rate in levels:
            out.append(await measure(daemon, rnd, n, rate, level_s))
            if not out[-1].sustained:  # one more try: a noisy spell is not the limit
                out.append(await measure(daemon, rnd, n, rate, level_s))
                if not out[-1].sustained:
                    break
        if profile is not None:
            profile.disable()
        active = sum(o.status == "ACTIVE" for o in writer(daemon).state.book.orders.values())
        assert active == n, f"{active} intents ACTIVE, not {n}"
    return out, settled


def flood_table(levels: list[Level]) -> str:
    out = ["| round | intents | flood/s asked | offered/s | committed/s | CPU % | loop CPU %"
           " | CPU µs/event | reconciler passes/s | CPU ms a pass | passes' % of loop CPU"
           " | queue at end | queue max | sustained |", "|" + "---:|" * 13 + "---|"]
    for v in levels:
        out.append(f"| {v.round} | {v.intents:,} | {v.flood:,} | {v.offered:,.0f}"
                   f" | {v.committed:,.0f} | {v.cpu_share:.0f} | {v.loop_share:.0f}"
                   f" | {v.cpu_us:.0f} | {v.passes:,.0f} | {v.pass_ms:.2f} | {v.pass_share:.1f}"
                   f" | {v.depth_end:,} | {v.depth_max:,} | {'yes' if v.sustained else 'no'} |")
    return "\n".join(out)


def flood_summary(levels: list[Level], n: int) -> str:
    rounds = max(v.round for v in levels)

    def top(arm: int) -> Level | None:
        ok = [v for v in levels if v.intents == arm and v.sustained]
        return max(ok, key=lambda v: (v.flood, v.committed)) if ok else None

    base, load = top(0), top(n)
    lines = []
    for label, v in (("without intents", base), (f"with {n:,} working intents", load)):
        lines.append(f"- highest sustained over {rounds} round(s), {label}: " + (
            "none" if v is None else f"**{v.committed:,.0f} events/s** committed (flood"
            f" {v.flood:,}/s asked, round {v.round})"))
    if base is not None and load is not None:
        r = load.committed / base.committed
        lines.append(f"- **with ÷ without: {r:.2f}×** (target ≥ {RATIO_TARGET:g}×:"
                     f" {'met' if r >= RATIO_TARGET else 'NOT met'}; resolution one level)")
    for rate in sorted({v.flood for v in levels}):
        arms = [[v for v in levels if v.flood == rate and v.intents == arm and v.sustained]
                for arm in (0, n)]
        if all(arms):
            cpu0, cpu1 = (statistics.median(v.cpu_us for v in a) for a in arms)
            lines.append(
                f"- flood {rate:,}/s (medians of the sustained levels): CPU {cpu0:.0f} µs an"
                f" event without, {cpu1:.0f} µs with ({cpu1 / cpu0:.2f}×); with:"
                f" {statistics.median(v.passes for v in arms[1]):,.0f} passes/s taking"
                f" {statistics.median(v.pass_share for v in arms[1]):.1f}% of the loop's CPU")
    return "\n".join(lines)


POLL = "<method 'poll' of 'select.epoll' objects>"


def by_component(stats: pstats.Stats) -> dict[str, float]:
    """Own time by where the function lives: daemon_flood's components, the reconciler's
    two modules apart; not `epoll.poll`, the loop's idle wait."""
    keys = (("/kernel/diff.py", "kernel/diff.py (the diff)"),
            ("/kernel/daemon/reconciler.py", "kernel/daemon/reconciler.py"), *COMPONENTS)
    total: dict[str, float] = {}
    for (path, _line, fn), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if fn == POLL:
            continue
        label = next((lbl for k, lbl in keys if k in path), "other Python")
        total[label] = total.get(label, 0.0) + tt
    return total


def entry(stats: pstats.Stats, file: str, name: str) -> tuple[int, float, float]:
    """(calls, own s, cumulative s) of one function."""
    for (path, _line, fn), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if path.endswith(file) and fn == name:
            return nc, tt, ct
    return 0, 0.0, 0.0


async def profiled(flood: int, n: int, settle: float, seconds: float, scratch: Path,
                   top: int) -> str:
    got, profs = {}, {}
    for arm in (0, n):
        progress(f"cProfile: flood {flood:,}/s, {arm:,} intents")
        profs[arm] = cProfile.Profile()
        levels, _ = await ramp(arm, [flood], seconds, settle, scratch, 0, profile=profs[arm])
        got[arm] = (levels[0], pstats.Stats(profs[arm]))
    comp = {arm: by_component(st) for arm, (_, st) in got.items()}
    busy = {arm: sum(c.values()) for arm, c in comp.items()}
    lines = [f"cProfile of {seconds:g} s at flood {flood:,}/s, main thread (committed under"
             f" the profiler: {got[0][0].committed:,.0f}/s without intents,"
             f" {got[n][0].committed:,.0f}/s with {n:,}). Own time by component, as a share"
             " of the thread's busy time (its time less `epoll.poll`, the idle wait):", "",
             f"| component | without: s | share | with {n:,}: s | share |",
             "|---|---:|---:|---:|---:|"]
    for label in sorted(comp[n], key=lambda k: -comp[n][k]):
        a, b = comp[0].get(label, 0.0), comp[n][label]
        lines.append(f"| {label} | {a:.2f} | {100 * a / busy[0]:.0f}% | {b:.2f}"
                     f" | {100 * b / busy[n]:.0f}% |")
    calls, _, step_s = entry(got[n][1], "kernel/daemon/reconciler.py", "step")
    buf = io.StringIO()
    pstats.Stats(profs[n], stream=buf).sort_stats("tottime").print_stats(top)
    text = buf.getvalue()
    lines += ["", f"With {n:,}: `Reconciler.step` {calls:,} calls, {step_s:.2f} s cumulative"
              f" ({100 * step_s / busy[n]:.0f}% of the busy time;"
              f" {1e3 * step_s / max(calls, 1):.2f} ms a pass under the profiler)."
              f" Top {top} by own time:", "", "```",
              text[text.find("   ncalls"):].rstrip(), "```"]
    return "\n".join(lines)


# -- the run ------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace, scratch: Path) -> None:
    q = args.quick
    n_lat, n_work, rate = (60, 200, 80.0) if q else (500, 1_000, 80.0)  # the API allows 100/s
    settle, level_s, rounds = (1.0, 0.7, 1) if q else (2.5, 1.25, 2)
    levels = [2_000, 4_000, 6_000] if q else [2_000, 4_000, 6_000, 9_000,
                                              *range(12_000, 24_001, 1_000)]
    lat: list[Latency] = []
    if args.only in (None, "latency"):
        for name, mode, flood in ((f"in process, {rate:g}/s, quiet", "paced", 0),
                                  (f"in process, {rate:g}/s, flood 2k/s", "paced", 2_000),
                                  ("in process, all in one submission", "burst", 0),
                                  (f"API client process, {rate:g}/s, quiet", "api", 0)):
            lat.append(await latency_run(name, mode, n_lat, flood, rate, scratch))
    steps: list[Level] = []
    settles: list[float] = []
    if args.only in (None, "flood"):
        for rnd in range(1, rounds + 1):
            for arm in (0, n_work):
                progress(f"round {rnd}/{rounds}: ramp with {arm:,} intents")
                got, settled = await ramp(arm, levels, level_s, settle, scratch, rnd)
                steps += got
                settles.append(settled)
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    print(f"- command: `{' '.join(['.venv/bin/python -m bench.intents', *sys.argv[1:]])}`")
    print(f"- date: {now}; {os.cpu_count()} CPUs, {platform.machine()}, {platform.platform()};"
          f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    if lat:
        print(f"\nIntent logged → place sent ({n_lat:,} intents a run):\n")
        print(latency_table(lat))
    if steps:
        print(f"\nSustained events/s: per round and arm one daemon, each level {level_s:g} s;"
              f" the first level {', '.join(f'{x:.1f}' for x in settles)} s after ready:\n")
        print(flood_table(steps))
        print()
        print(flood_summary(steps, n_work))
    if args.profile and steps:
        print()
        print(await profiled(levels[0], n_work, settle, 2.0, scratch, args.top))


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.intents", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer intents and levels, 1 round")
    p.add_argument("--only", choices=("latency", "flood"), help="one measurement")
    p.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None,
                   help="cProfile both arms at the lowest level (default: on, off with --quick)")
    p.add_argument("--top", type=int, default=10, help="functions shown from the profile")
    p.add_argument("--out", type=Path, default=OUT, help="scratch dir (default bench/out)")
    p.add_argument("--client", metavar="SOCKET", help=argparse.SUPPRESS)
    p.add_argument("--rate", type=float, default=50.0, help=argparse.SUPPRESS)
    args = p.parse_args()
    money.install()
    devnull = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    logs.configure("info", json=True, stream=devnull)
    if args.client:
        asyncio.run(client_main(args.client, args.rate))
        return
    if args.profile is None:
        args.profile = not args.quick
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out, prefix="intents-") as tmp:
        asyncio.run(main_async(args, Path(tmp)))


if __name__ == "__main__":
    main()
