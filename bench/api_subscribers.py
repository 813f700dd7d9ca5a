"""The API under load: `python -m bench.api_subscribers [--quick] [--stall-s 60]`.

The real `Daemon` in this process, flooded by the embedded sim as `bench.daemon_flood`
floods it (its `TimedVenue` and config: linear perpetuals, the trader off, a 1 ms pace),
and the API's clients in a *child process* (`--client`), so their parsing does not share
this process's CPU budget with the writer (it still shares the machine's cores). Steps,
each a fresh daemon and state dir:

* **throughput**: the committed rate over a window with no subscriber, then with
  `--subscribers` (100) snapshot subscribers, at a sustained flood (10,000/s asked) and at
  a saturating one (30,000/s): the writer's throughput with and without them, same run,
  in `--rounds` (3) interleaved rounds, each row keeping its best;
* **latency at 1k/s**: commit → subscriber, for one snapshot and one event subscriber
  that keep up, then for 100 snapshot subscribers. The commit time is when the writer
  handed the batch to the hub (after the SQLite commit), `time.perf_counter_ns` here; the
  arrival is `perf_counter_ns` in the child (CLOCK_MONOTONIC: one clock per machine);
* **intents at 1k/s**: one client places intents one after another; submit → logged →
  ack is each request's round trip, measured by the client;
* **a stalled subscriber** for `--stall-s` seconds at 1k/s: a snapshot subscriber that
  reads nothing (a 4 KiB receive buffer, a websocket client paused after one frame),
  with `max_lag_s` raised past the stall so that it stays; this process's RSS and the
  server's write buffer for it, sampled each second. A stalled *event* subscriber beside
  it is closed once `max_event_backlog` (10,000) events behind: when is reported.

Progress to stderr; markdown to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import re
import socket
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from bench.daemon_flood import FAST_PACE_S, config
from bench.timed_daemon import TimedDaemon, TimedVenue
from kernel import money
from kernel.daemon import logs
from kernel.daemon.config import Config

OUT = Path(__file__).resolve().parent / "out"
TOKEN = "bench-api-token"
SEQ = re.compile(rb'"seq":(\d+)')


def progress(msg: str) -> None:
    print(f"[api] {msg}", file=sys.stderr, flush=True)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- the child: clients ------------------------------------------------------------------


async def client_main(args: argparse.Namespace) -> None:
    """Connect, subscribe, say `ready`; on `stop` from stdin, print what was seen (JSON)."""
    from websockets.asyncio.client import unix_connect

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_stdin() -> None:
        sys.stdin.readline()
        stop.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    seen: list[list[tuple[int, int]]] = []
    rtts: list[int] = []

    async def hello(ws: Any) -> None:
        await ws.send(json.dumps({"id": 0, "op": "hello", "token": TOKEN}))
        assert json.loads(await ws.recv())["ok"]

    async def subscriber(op: str, **fields: Any) -> None:
        mine: list[tuple[int, int]] = []
        seen.append(mine)
        async with unix_connect(args.socket, max_queue=64) as ws:
            await hello(ws)
            await ws.send(json.dumps({"id": 1, "op": op, **fields}))
            await ws.recv()
            with contextlib.suppress(Exception):
                while True:
                    frame = await ws.recv(decode=False)
                    m = SEQ.search(frame, 0, 120)
                    if m:
                        mine.append((int(m[1]), time.perf_counter_ns()))

    async def stalled(op: str) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(args.socket)
        sock.setblocking(False)
        # No keepalive: a paused client cannot read the pong and would close itself.
        ws = await unix_connect(sock=sock, max_queue=1, ping_interval=None)
        await hello(ws)
        await ws.send(json.dumps({"id": 1, "op": op}))
        await ws.wait_closed()

    async def intents() -> None:
        async with unix_connect(args.socket) as ws:
            await hello(ws)
            for i in range(args.count):
                spec = {"intent_id": f"b{i}", "symbol": "S00USDT", "side": "buy",
                        "order_type": "limit", "qty": "1.000", "price": "50.00"}
                t0 = time.perf_counter_ns()
                await ws.send(json.dumps({"id": i, "op": "place_intent", "intent": spec}))
                reply = json.loads(await ws.recv())
                rtts.append(time.perf_counter_ns() - t0)
                assert reply["ok"], reply
                if stop.is_set():
                    break

    tasks = []
    if args.client == "snapshots":
        tasks = [asyncio.create_task(subscriber("subscribe_snapshots")) for _ in range(args.n)]
    elif args.client == "snapshots-bare":
        tasks = [asyncio.create_task(subscriber("subscribe_snapshots", book=False))
                 for _ in range(args.n)]
    elif args.client == "both":
        tasks = [asyncio.create_task(subscriber("subscribe_snapshots")),
                 asyncio.create_task(subscriber("subscribe_events"))]
    elif args.client == "stalled":
        tasks = [asyncio.create_task(stalled("subscribe_snapshots")),
                 asyncio.create_task(stalled("subscribe_events"))]
    elif args.client == "intents":
        tasks = [asyncio.create_task(intents())]
    await asyncio.sleep(0.5)  # connected and subscribed
    print("ready", flush=True)
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"seen": seen, "rtts": rtts}), flush=True)


class Clients:
    """The child process, from this side."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, sock: Path, kind: str, n: int = 1, count: int = 0,
                    nice: int = 0) -> Clients:
        """The child, its scheduling priority lowered by `nice` (0: as this process's)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.api_subscribers", "--client", kind, "--socket",
            str(sock), "--n", str(n), "--count", str(count),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            preexec_fn=(lambda: os.nice(nice)) if nice else None)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.strip() == b"ready", line
        return cls(proc)

    async def stop(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"stop\n")
        await self.proc.stdin.drain()
        out = await asyncio.wait_for(self.proc.stdout.read(), 60)  # to its exit
        await self.proc.wait()
        return json.loads(out)  # type: ignore[no-any-return]


# -- the parent: steps ---------------------------------------------------------------------


@dataclass
class Result:
    name: str
    flood: int
    subscribers: int
    committed: float = 0.0
    cpu: float = 0.0
    delays: list[int] = field(default_factory=list)  # ns
    pushes_per_sub_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def pct(self, q: float) -> float | None:
        if not self.delays:
            return None
        xs = sorted(self.delays)
        return xs[min(len(xs) - 1, int(q * len(xs)))] / 1e6


def bench_config(flood: int, **api: Any) -> Config:
    """bench.daemon_flood's config, metrics off, the intent reconciler off (its per-
    snapshot work is not what this measures), the API as given."""
    base = config(flood, "FULL")
    return msgspec.structs.replace(
        base, metrics=msgspec.structs.replace(base.metrics, enabled=False),
        reconciler=msgspec.structs.replace(base.reconciler, enabled=False),
        api=msgspec.structs.replace(base.api, **api))


@contextlib.asynccontextmanager
async def running(flood: int, scratch: Path, **api: Any) -> Any:
    cfg = bench_config(flood, **api)
    state = Path(tempfile.mkdtemp(dir=scratch, prefix="s-"))
    d = TimedDaemon(cfg, TimedVenue(cfg.venue.sim, pace_s=FAST_PACE_S), state)
    task = asyncio.create_task(d.run())
    await asyncio.wait_for(d.ready.wait(), 30)
    try:
        yield d
    finally:
        d.stop()
        assert await asyncio.wait_for(task, 120) == 0
        for f in state.iterdir():
            f.unlink()
        state.rmdir()


async def window(d: TimedDaemon, seconds: float) -> tuple[float, float, int, int]:
    """(committed/s, CPU %, t0 ns, t1 ns) over `seconds`."""
    assert d._writer is not None
    seq0, t0, c0 = d._writer.state.seq, time.perf_counter(), time.process_time()
    ns0 = time.perf_counter_ns()
    await asyncio.sleep(seconds)
    wall = time.perf_counter() - t0
    return ((d._writer.state.seq - seq0) / wall, 100 * (time.process_time() - c0) / wall,
            ns0, time.perf_counter_ns())


def delays(d: TimedDaemon, seen: list[list[list[int]]], t0: int, t1: int) -> list[int]:
    out = []
    for sub in seen:
        for seq, at in sub:
            c = d.commit_ns(seq)
            if c is not None and t0 <= c <= t1:
                out.append(at - c)
    return out


async def throughput(name: str, flood: int, subs: int, warmup: float, seconds: float,
                     scratch: Path) -> Result:
    progress(f"{name}: flood {flood:,}/s, {subs} subscribers")
    r = Result(name, flood, subs)
    async with running(flood, scratch) as d:
        clients = await Clients.start(d.api.socket_path, "snapshots", subs) if subs else None
        await asyncio.sleep(warmup)
        r.committed, r.cpu, t0, t1 = await window(d, seconds)
        if clients is not None:
            got = await clients.stop()
            r.delays = delays(d, got["seen"], t0, t1)
            n = sum(1 for sub in got["seen"] for _, at in sub if t0 <= at <= t1)
            r.pushes_per_sub_s = n / subs / seconds
    return r


async def latency(name: str, kind: str, subs: int, warmup: float, seconds: float,
                  scratch: Path) -> Result:
    progress(f"{name}")
    r = Result(name, 1000, subs)
    async with running(1000, scratch) as d:
        clients = await Clients.start(d.api.socket_path, kind, subs)
        await asyncio.sleep(warmup)
        r.committed, r.cpu, t0, t1 = await window(d, seconds)
        got = await clients.stop()
        if kind == "both":
            snaps, events = delays(d, got["seen"][:1], t0, t1), delays(d, got["seen"][1:], t0, t1)
            r.delays = snaps
            ev = Result("events", 1000, 1, delays=events)
            r.notes.append(f"events subscriber: p50 {fmt(ev.pct(0.5))} ms, p99"
                           f" {fmt(ev.pct(0.99))} ms, max {fmt(max(events) / 1e6)} ms"
                           f" ({len(events):,} events)")
        else:
            r.delays = delays(d, got["seen"], t0, t1)
        n = sum(1 for sub in got["seen"] for _, at in sub if t0 <= at <= t1)
        r.pushes_per_sub_s = n / len(got["seen"]) / seconds
    return r


async def intents(count: int, scratch: Path) -> Result:
    progress(f"intents at 1k/s: {count} placed one after another")
    r = Result("intents, 1k/s", 1000, 0)
    # Back to back, one connection: past the default 100 requests/s, so raised here.
    async with running(1000, scratch, requests_per_s=100_000) as d:
        writer = d._writer
        assert writer is not None
        await asyncio.sleep(1.0)
        seq0, t0 = writer.state.seq, time.perf_counter()
        clients = await Clients.start(d.api.socket_path, "intents", count=count)
        while len(writer.state.book.intents) < count:  # the client places, then waits
            assert clients.proc.returncode is None, "the intents client failed"
            await asyncio.sleep(0.05)
        r.committed = (writer.state.seq - seq0) / (time.perf_counter() - t0)
        r.delays = (await clients.stop())["rtts"]
        r.notes.append(f"{len(r.delays)} round trips, back to back on one connection"
                       " (requests_per_s raised for this step); the book holds"
                       f" {len(writer.state.book.intents)} intents")
    return r


async def stall(seconds: float, scratch: Path) -> tuple[list[str], list[str]]:
    progress(f"a stalled subscriber for {seconds:g} s at 1k/s")
    rows = ["| t s | RSS MB | stalled conn's write buffer bytes | subscribers | events seq |",
            "|---:|---:|---:|---:|---:|"]
    notes: list[str] = []
    async with running(1000, scratch, max_lag_s=seconds + 60) as d:
        await asyncio.sleep(1.0)
        clients = await Clients.start(d.api.socket_path, "stalled")
        t0 = time.monotonic()
        biggest = 0
        rss0 = rss_mb()
        peak = rss0
        dropped: float | None = None
        for i in range(int(seconds) + 1):
            if dropped is None and d.api.fanout.count < 2:
                dropped = time.monotonic() - t0
            buf = max((s.ws.transport.get_write_buffer_size() for s in d.api._conns),
                      default=0)
            biggest = max(biggest, buf)
            rss = rss_mb()
            peak = max(peak, rss)
            if i % max(1, int(seconds) // 6) == 0:
                rows.append(f"| {time.monotonic() - t0:.0f} | {rss:.1f} | {buf:,} |"
                            f" {d.api.fanout.count} | {d.hub.seq:,} |")
            await asyncio.sleep(max(0.0, t0 + i + 1 - time.monotonic()))
        body = d.hub.snapshot_body()
        res = await clients.stop()
        notes.append(f"RSS {rss0:.1f} MB at the start of the stall, {rss_mb():.1f} MB after"
                     f" {seconds:g} s, peak {peak:.1f} MB; the stalled connection's write"
                     f" buffer at most {biggest:,} bytes (one snapshot frame is"
                     f" {len(body[1]) if body else 0:,} bytes + envelope)")
        del res
        notes.append("the stalled event subscriber was dropped as lagging (more than"
                     f" max_event_backlog behind) after {dropped:.0f} s (sampled each second;"
                     " its connection closes 5 s later, the close timeout)"
                     if dropped is not None else
                     "the stalled event subscriber was still subscribed at the end")
    return rows, notes


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "" if x is None else format(x, spec)


def table(results: list[Result]) -> str:
    lines = ["| step | flood/s asked | subscribers | committed/s | CPU % | pushes/s per sub"
             " | p50 ms | p99 ms | max ms | samples |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(
            f"| {r.name} | {r.flood:,} | {r.subscribers} | {r.committed:,.0f} | {r.cpu:.0f}"
            f" | {fmt(r.pushes_per_sub_s, '.0f') if r.subscribers else ''}"
            f" | {fmt(r.pct(0.5))} | {fmt(r.pct(0.99))}"
            f" | {fmt(max(r.delays) / 1e6 if r.delays else None)} | {len(r.delays):,} |")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace, scratch: Path) -> None:
    warmup, seconds = (0.5, 1.0) if args.quick else (1.0, 4.0)
    subs = args.subscribers
    results: list[Result] = []
    rounds: list[str] = []
    for flood, label in ((10_000, "sustained"), (30_000, "saturated")):
        # Interleaved rounds, each row keeping its best: on a shared machine noise only
        # takes throughput away.
        pair: list[list[Result]] = [[], []]
        for _ in range(args.rounds):
            for i, n in enumerate((0, subs)):
                pair[i].append(await throughput(f"{label}, {n or 'none'}", flood, n, warmup,
                                                seconds, scratch))
        for runs in pair:
            best = max(runs, key=lambda r: r.committed)
            results.append(best)
            rounds.append(f"{best.name}: committed/s by round"
                          f" {', '.join(f'{r.committed:,.0f}' for r in runs)}")
    results.append(await latency("1k/s, 1 snapshot + 1 event sub", "both", 1, warmup,
                                 seconds, scratch))
    results.append(await latency(f"1k/s, {subs} snapshot subs", "snapshots", subs, warmup,
                                 seconds, scratch))
    results.append(await intents(100 if args.quick else 1000, scratch))
    rows, notes = await stall(args.stall_s, scratch)
    cmd = "python -m bench.api_subscribers" + (" --quick" if args.quick else "") + (
        f" --stall-s {args.stall_s:g}" if args.stall_s != 60 else "")
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    print(f"- command: `{cmd}`\n- date: {now}\n- machine: {os.cpu_count()} CPUs,"
          f" {platform.platform()}, Python {platform.python_version()},"
          f" SQLite {sqlite3.sqlite_version}\n- daemon: `bench.daemon_flood`'s config"
          " (FULL), the intent reconciler off, its API on the unix socket; clients in one"
          " child process;"
          f" windows of {seconds:g} s after {warmup:g} s")
    print()
    print(table(results))
    print()
    for line in rounds:
        print(f"- {line} (the table shows the best)")
    for r in results:
        for n in r.notes:
            print(f"- {r.name}: {n}")
    pairs = [(results[i], results[i + 1]) for i in (0, 2)]
    for none, some in pairs:
        ratio = some.committed / none.committed if none.committed else float("nan")
        print(f"- {some.name}: {ratio:.1%} of the writer's rate without subscribers"
              f" (target ≥ 90%: {'met' if ratio >= 0.9 else 'NOT met'})")
    one = results[4]
    p99 = one.pct(0.99)
    print(f"- p99 commit → snapshot subscriber at 1k/s: {fmt(p99)} ms (target ≤ 5 ms:"
          f" {'met' if p99 is not None and p99 <= 5 else 'NOT met'})")
    print()
    print(f"A subscriber stalled for {args.stall_s:g} s at 1k/s:")
    print()
    print("\n".join(rows))
    print()
    for n in notes:
        print(f"- {n}")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.api_subscribers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 s windows, 20 subscribers")
    p.add_argument("--subscribers", type=int, default=None)
    p.add_argument("--stall-s", type=float, default=60.0)
    p.add_argument("--rounds", type=int, default=None,
                   help="throughput rounds per row, the best kept (default 3; 1 with --quick)")
    p.add_argument("--out", type=Path, default=OUT, help="scratch dir (default bench/out)")
    # the child process's arguments
    p.add_argument("--client", help=argparse.SUPPRESS)
    p.add_argument("--socket", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.client:
        asyncio.run(client_main(args))
        return
    if args.subscribers is None:
        args.subscribers = 20 if args.quick else 100
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ["EXKERNEL_API_TOKEN"] = TOKEN  # the default config's operator token
    devnull = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    logs.configure("info", json=True, stream=devnull)
    money.install()
    with tempfile.TemporaryDirectory(dir=args.out, prefix="api-") as tmp:
        asyncio.run(main_async(args, Path(tmp)))


if __name__ == "__main__":
    main()
