"""The ccxt.pro adapter's benchmarks (issue 9): `python -m bench.ccxtpro [--quick]
[--venue subprocess|inprocess|both]`.

Three parts, each against a same-run baseline. Sizes: full / `--quick`.

* **parse** (in process, no I/O): real payloads from the fake Binance USD-M venue's engine
  (tests/fakebinance: `ORDER_TRADE_UPDATE` with `x` = TRADE as it sends them, its
  `/fapi/v1/userTrades` rows, and ccxt 4.5.90's own unified trade of each row), each
  parser over the whole list, fastest of `rounds`. Baselines: `msgspec.json.decode`,
  `json.loads` and `orjson.loads` (ccxt's websocket client's decoder) of the same bytes,
  and ccxt's own handling of the same message (`handle_order_update` with a stub client:
  in the daemon ccxt runs it after the adapter's sink on every message). 20,000 / 2,000.
* **latency** (`--venue`): the real `Daemon` in this process (a real SQLite log, default
  kernel config: FULL) on the adapter, the fake venue in a child process (`--serve-venue`,
  so on the other core) or in this process (sharing the loop). A resting limit order,
  then one-lot maker fills, each pushed with its `ACCOUNT_UPDATE` before the next: 50 /
  20 fills 20 ms apart (idle, the baseline), then a burst of 1,000 / 200 back to back.
  Each fill is timed at four points, all `time.perf_counter_ns` (CLOCK_MONOTONIC: one
  clock per machine, so the child's stamps compare): the venue's push (`Hub.push_user`
  entered), the adapter's sink (ccxt has read and decoded the frame), `facts()` yielding
  the `OrderFilled`, and the daemon's `_published` hook handing its snapshot on.
* **resync** (`--venue`): a venue holding 10,000 / 2,000 one-lot fills (10 per order,
  never pushed). ccxt alone walking the same pages (`fetch_my_trades` by window then
  `fromId`, both symbols, the same pacing) is the baseline for the adapter's
  `fills_since(0)` (ccxt pacing 1 ms/weight, as the tests run; full runs add ccxt's
  Binance default, 50 ms/weight). Then a fresh daemon's first resync: `fills_since`
  inside it, and until its `ResyncCompleted(fills)` is committed (every fill appended).

CPU is `time.process_time` of this process (every thread: SQLite's too); in-process runs
count the venue's work in it, child runs report the venue's CPU apart. Progress goes to
stderr, markdown to stdout; a wrong count raises.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime
import io
import itertools
import json
import os
import platform
import pstats
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ccxt  # type: ignore[import-untyped]
import ccxt.pro  # type: ignore[import-untyped]
import msgspec

from adapters.ccxtpro import parse, parse_rest, unified
from adapters.ccxtpro.book import Book
from adapters.ccxtpro.config import CcxtProSettings
from adapters.ccxtpro.venue import CcxtProVenue
from bench.measure import Measurement, Stopwatch, best
from events.base import key
from events.codec import Event
from events.facts import OrderFilled, OrderStatusReported, fill_key
from kernel import money
from kernel.daemon import logs
from kernel.daemon.config import CcxtProConfig, Config, load_config
from kernel.daemon.metrics import Metrics
from kernel.daemon.service import Daemon
from kernel.daemon.writer import BatchResult
from kernel.snapshot import AccountSnapshotV2
from tests.fakebinance import DEFAULT_KEY, DEFAULT_SECRET, EngineConfig, FakeBinance, VenueConfig
from tests.fakebinance import wire as fake_wire

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
SYMBOL, UNIFIED, SYMBOLS = "BTCUSDT", "BTC/USDT:USDT", ("BTC/USDT:USDT", "ETH/USDT:USDT")
BOOK = Book(exchange="binanceusdm", symbols={"BTCUSDT": UNIFIED, "ETHUSDT": "ETH/USDT:USDT"},
            settle={s: "USDT" for s in SYMBOLS})
LOOPBACK = CcxtProSettings(rate_limit_ms=1.0)  # ccxt's pacing scaled to a loopback venue
BINANCE_PACE = CcxtProSettings()  # ccxt's own figure for Binance: 50 ms per unit of weight
PER_ORDER, IDLE_GAP_S, WEEK_MS = 10, 0.02, 7 * 86_400_000
FILL_PREFIX = fill_key(UNIFIED, "")
MARKER_PREFIX = key("resync", "fills", 1)[:-1]
STOP_NUDGES: list[int] = []  # extra cancels a daemon stop needed (see `running`)


@dataclass(frozen=True)
class Sizes:
    payloads: int
    rounds: int
    idle: int
    burst: int
    history: int


FULL = Sizes(payloads=20_000, rounds=3, idle=50, burst=1_000, history=10_000)
QUICK = Sizes(payloads=2_000, rounds=1, idle=20, burst=200, history=2_000)


def progress(msg: str) -> None:
    print(f"[ccxtpro] {msg}", file=sys.stderr, flush=True)


# -- the venue's side: runs where the fake venue runs --------------------------------


def venue_config() -> VenueConfig:
    """An account that starts empty (its money arrives as a deposit the kernel books),
    the fake's 1 s mark pushes on (a real venue is never silent: no silence resync)."""
    return VenueConfig(engine=EngineConfig(wallet={}), seed=7)


class Driver:
    """A `FakeBinance` with the bench's workloads and its push clock: the time each
    trade's `ORDER_TRADE_UPDATE` entered `Hub.push_user` (the fake has no hook; the
    bound method is wrapped on this instance, the fake's code is unchanged)."""

    OPS = frozenset({"rest", "fills", "history", "cpu"})

    def __init__(self, fb: FakeBinance) -> None:
        self.fb = fb
        self.pushed: dict[str, int] = {}
        self._cids = itertools.count(1)
        inner = fb.hub.push_user

        async def push_user(payload: dict[str, Any]) -> int:
            o = payload.get("o")
            if payload.get("e") == "ORDER_TRADE_UPDATE" and isinstance(o, dict) \
                    and o.get("x") == "TRADE":
                self.pushed[str(o["t"])] = time.perf_counter_ns()
            return await inner(payload)

        fb.hub.push_user = push_user  # type: ignore[method-assign]
        fb.engine.transfer("USDT", D("10000000"))

    def _place(self, lots: int) -> int:
        e = self.fb.engine
        inst = e.instruments[SYMBOL]
        price = (e.marks[SYMBOL] * D("0.99") / inst.tick).to_integral_value() * inst.tick
        ack = e.place({"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                       "quantity": str(inst.step * lots), "price": str(price),
                       "newClientOrderId": f"bench-{next(self._cids)}"})
        return int(ack["orderId"])

    async def rest(self, lots: int) -> int:
        """A resting buy limit of `lots` lots (its NEW pushed); its order id."""
        oid = self._place(lots)
        await self.fb.flush()
        return oid

    async def fills(self, order: int, n: int, gap_s: float) -> dict[str, int]:
        """`n` one-lot maker fills of `order`, each pushed before the next, `gap_s`
        apart (0: a burst); {trade id: push time} of these fills."""
        step, before = self.fb.engine.instruments[SYMBOL].step, len(self.pushed)
        for _ in range(n):
            await self.fb.fill(order, qty=step)
            if gap_s:
                await asyncio.sleep(gap_s)
        return dict(itertools.islice(self.pushed.items(), before, None))

    async def history(self, n: int) -> int:
        """`n` one-lot fills, `PER_ORDER` per order, that the venue holds and never
        pushed (as while nobody listened); how many trades it holds."""
        e, done = self.fb.engine, 0
        while done < n:
            k = min(PER_ORDER, n - done)
            oid = self._place(k)
            for _ in range(k):
                e.fill_resting(oid, e.instruments[SYMBOL].step)
            done += k
        e.user_events.clear()
        return len(e.book.trades)

    async def cpu(self) -> float:
        return time.process_time()


async def serve_venue() -> None:
    """`--serve-venue`: the fake venue in this (child) process, driven by JSON lines on
    stdin (`{"op", "args"}` -> `{"result"}`) until stdin closes."""
    async with FakeBinance(venue_config()) as fb:
        driver = Driver(fb)
        print(json.dumps({"rest_url": fb.rest_url}), flush=True)
        reader = asyncio.StreamReader(limit=1 << 24)
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            req = json.loads(line)
            if req["op"] not in Driver.OPS:
                raise ValueError(f"no op {req['op']!r}")
            result = await getattr(driver, req["op"])(*req["args"])
            sys.stdout.write(json.dumps({"result": result}) + "\n")
            sys.stdout.flush()


@dataclass
class Side:
    """The venue, as the bench sees it: its URL and `call(op, *args)`."""

    mode: str
    rest_url: str
    call: Callable[..., Any]


@contextlib.asynccontextmanager
async def venue_side(mode: str) -> AsyncIterator[Side]:
    if mode == "inprocess":
        async with FakeBinance(venue_config()) as fb:
            driver = Driver(fb)
            yield Side(mode, fb.rest_url, lambda op, *a: getattr(driver, op)(*a))
        return
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.ccxtpro", "--serve-venue", cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 24)
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    try:
        hello = json.loads(await asyncio.wait_for(stdout.readline(), 60))

        async def call(op: str, *args: Any) -> Any:
            stdin.write(json.dumps({"op": op, "args": list(args)}).encode() + b"\n")
            await stdin.drain()
            line = await asyncio.wait_for(stdout.readline(), 300)
            if not line:
                raise RuntimeError(f"the venue child exited during {op}")
            return json.loads(line)["result"]

        yield Side(mode, hello["rest_url"], call)
    finally:
        stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.terminate()
            await proc.wait()


# -- the kernel's side ---------------------------------------------------------------


def ccxtpro_config(rest_url: str, settings: CcxtProSettings) -> CcxtProConfig:
    return CcxtProConfig(exchange="binanceusdm", symbols=SYMBOLS, rest_url=rest_url,
                         ws_url="ws" + rest_url.removeprefix("http"), adapter=settings)


def daemon_config(rest_url: str) -> Config:
    base = load_config(None)
    return msgspec.structs.replace(base, venue=msgspec.structs.replace(
        base.venue, kind="ccxtpro", ccxtpro=ccxtpro_config(rest_url, LOOPBACK)))


class TimedVenue(CcxtProVenue):
    """The adapter, stamping each trade message its sink gets (wrapped after `connect`)
    and each `OrderFilled` its `facts()` yields, and timing each `fills_since`."""

    def __init__(self, cfg: CcxtProConfig) -> None:
        super().__init__(cfg, api_key=DEFAULT_KEY, secret=DEFAULT_SECRET)
        self.sunk: dict[str, int] = {}
        self.yielded: dict[str, int] = {}
        self.queries: list[tuple[int, int, float, float, int]] = []  # t0, t1, cpu0, cpu1, n

    async def connect(self) -> None:
        await super().connect()
        assert self._session is not None
        ex, sunk = self._session.ex, self.sunk
        inner = ex.kernel_sink

        def sink(url: str, message: Any) -> bool:
            o = message.get("o") if isinstance(message, dict) else None
            if isinstance(o, dict) and o.get("x") == "TRADE":
                sunk[str(o.get("t"))] = time.perf_counter_ns()
            return bool(inner(url, message))

        ex.kernel_sink = sink

    async def facts(self) -> AsyncIterator[Event]:
        async for event in super().facts():
            if isinstance(event, OrderFilled):
                self.yielded[event.trade_id] = time.perf_counter_ns()
            yield event

    async def fills_since(self, venue_ts: int) -> list[OrderFilled]:
        t0, c0 = time.perf_counter_ns(), time.process_time()
        out = await super().fills_since(venue_ts)
        self.queries.append((t0, time.perf_counter_ns(), c0, time.process_time(), len(out)))
        return out


class TimedDaemon(Daemon):
    """Daemon whose publish hook stamps every snapshot's source event, and notes the
    first `ResyncCompleted(fills)` (time, CPU)."""

    def __init__(self, cfg: Config, venue: TimedVenue, state_dir: Path) -> None:
        super().__init__(cfg, venue, state_dir, metrics=Metrics())
        self.published: dict[str, int] = {}
        self.marker: tuple[int, float] | None = None
        #: Per committed batch: events appended, fold s, commit s (`Writer.open` takes
        #: `writer_loop.committed` when the daemon runs: wrapped here, before).
        self.batches: list[tuple[int, float, float]] = []
        inner = self.writer_loop.committed

        def committed(result: BatchResult) -> None:
            self.batches.append((result.appended, result.fold_seconds, result.commit_seconds))
            inner(result)

        self.writer_loop.committed = committed  # type: ignore[method-assign]

    def _published(self, snap: AccountSnapshotV2) -> None:
        super()._published(snap)
        now, sid = time.perf_counter_ns(), snap.source_event_id
        self.published[sid] = now
        if self.marker is None and sid.startswith(MARKER_PREFIX):
            self.marker = (now, time.process_time())


@contextlib.asynccontextmanager
async def running(side: Side, scratch: Path) -> AsyncIterator[TimedDaemon]:
    venue = TimedVenue(ccxtpro_config(side.rest_url, LOOPBACK))
    daemon = TimedDaemon(daemon_config(side.rest_url), venue,
                         Path(tempfile.mkdtemp(dir=scratch, prefix="state-")))
    task = asyncio.create_task(daemon.run(), name="daemon")
    ready = asyncio.create_task(daemon.ready.wait())
    await asyncio.wait({ready, task}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        daemon.stop()
        raise RuntimeError(f"the daemon did not get ready: {await task!r}")
    try:
        yield daemon
    finally:
        async with asyncio.timeout(60):
            while not daemon.queue.empty():
                await asyncio.sleep(0.05)
        daemon.stop()
        # Python 3.11's `asyncio.wait_for` returns instead of raising when a cancel lands
        # just after its inner future finished: the reconciler, woken by a publish the
        # instant `_drain` cancels it, keeps running and the stop never ends. Cancel it
        # again (counted and reported) rather than hang the benchmark.
        for _ in range(12):
            done, _pending = await asyncio.wait({task}, timeout=5)
            if done:
                break
            if daemon._reconciler_task is not None and not daemon._reconciler_task.done():
                STOP_NUDGES.append(1)
                daemon._reconciler_task.cancel()
        code = await asyncio.wait_for(task, 5)
        assert code == 0, f"daemon exited {code}"


async def published(daemon: TimedDaemon, keys: Sequence[str], timeout: float = 120) -> None:
    async with asyncio.timeout(timeout):
        while not all(k in daemon.published for k in keys):
            await asyncio.sleep(0.01)


async def resynced(daemon: TimedDaemon) -> tuple[int, float]:
    """Until the first `ResyncCompleted(fills)` is committed (`ready` comes once the
    resync is queued; the writer may still be appending): its time and CPU."""
    async with asyncio.timeout(120):
        while daemon.marker is None:
            await asyncio.sleep(0.01)
    return daemon.marker


# -- parse -----------------------------------------------------------------------------


async def payloads(n: int) -> tuple[list[bytes], list[bytes], list[dict[str, Any]], Any]:
    """`n` fills from the fake's engine: each one's websocket message and REST row as
    JSON bytes (built by the fake's `wire`, sent with `json.dumps` as it sends them),
    ccxt's unified trade of each row, and the ccxt exchange (markets loaded from the
    fake over loopback, then closed: parsing needs no connection)."""
    async with FakeBinance(VenueConfig(engine=EngineConfig(wallet={}),
                                       mark_interval_s=None)) as fb:
        await Driver(fb).history(n)
        e = fb.engine
        inst = e.instruments[SYMBOL]
        # history() drops the pushes; each message is rebuilt as `Engine.fill` builds it
        # (the order's state is its final one, which only changes `X` and `z`)
        ws = [json.dumps(fake_wire.order_trade_update(
            e.orders[t.order_id], inst, execution="TRADE", now=t.time, last_qty=t.qty,
            last_price=t.price, commission=t.commission, trade_id=t.id,
            realized=t.realized_pnl, maker=t.maker)).encode() for t in e.book.trades]
        rows = [json.dumps(fake_wire.trade(t, inst)).encode() for t in e.book.trades]
        ex = ccxt.pro.binanceusdm({"apiKey": DEFAULT_KEY, "secret": DEFAULT_SECRET,
                                   "options": {"fetchCurrencies": False}})
        fb.apply_to(ex)
        try:
            await ex.load_markets()
        finally:
            await ex.close()
    market = ex.market(UNIFIED)
    trades = [ex.parse_trade(json.loads(r), market) for r in rows]
    return ws, rows, trades, ex


class StubClient:
    """What ccxt's `handle_order_update` uses of its websocket `Client`."""

    url = "ws://bench"

    def resolve(self, *args: Any) -> None:
        return None


def parse_bench(sizes: Sizes, ws: list[bytes], rows: list[bytes],
                trades: list[dict[str, Any]], ex: Any) -> list[Measurement]:
    import orjson  # ccxt's websocket decoder (ws/client.py), a ccxt dependency here

    msgs = [msgspec.json.decode(b) for b in ws]
    infos = [msgspec.json.decode(b) for b in rows]
    client, market = StubClient(), ex.market(UNIFIED)

    def ws_fill(m: dict[str, Any]) -> Any:
        return parse.ws_fill(m["o"], BOOK)

    def rest_fill(r: dict[str, Any]) -> Any:
        return parse_rest.fill(r, BOOK, "bench-1")

    cases: list[tuple[str, str, Callable[[Any], Any], list[Any]]] = [
        ("p1", "baseline: msgspec.json.decode of the ws message", msgspec.json.decode, ws),
        ("p2", "baseline: json.loads of the ws message", json.loads, ws),
        ("p3", "baseline: orjson.loads of the ws message (ccxt's decoder)", orjson.loads, ws),
        ("p4", "parse.ws_message: ws message -> OrderFilled + OrderStatusReported",
         lambda m: parse.ws_message(m, BOOK, 1), msgs),
        ("p5", "parse.ws_fill: the message's `o` -> OrderFilled", ws_fill, msgs),
        ("p6", "baseline: ccxt handle_order_update of the ws message",
         lambda m: ex.handle_order_update(client, m), msgs),
        ("p7", "baseline: msgspec.json.decode of the userTrades row", msgspec.json.decode, rows),
        ("p8", "parse_rest.fill: userTrades row -> OrderFilled", rest_fill, infos),
        ("p9", "baseline: ccxt parse_trade: userTrades row -> unified trade",
         lambda r: ex.parse_trade(r, market), infos),
        ("p10", "unified.fill: ccxt unified trade -> OrderFilled",
         lambda t: unified.fill(t, "binanceusdm"), trades),
    ]
    # Every parser yields the fact itself (a quarantine would be timed as a fill).
    assert all(type(ws_fill(m)) is OrderFilled and type(rest_fill(r)) is OrderFilled
               for m, r in zip(msgs, infos, strict=True))
    assert all(type(unified.fill(t, "binanceusdm")) is OrderFilled for t in trades)
    assert all([type(x) for x in parse.ws_message(m, BOOK, 1).events] == [
        OrderFilled, OrderStatusReported] for m in msgs)
    out: list[Measurement] = []
    for cid, label, fn, data in cases:
        runs = []
        for _ in range(sizes.rounds):
            sw = Stopwatch()
            with sw.running():
                for item in data:
                    fn(item)
            runs.append(Measurement(cid, label, len(data), sw.wall, sw.cpu))
        out.append(best(runs))
        money.install()  # ccxt sets the current context's rounding; the kernel's is its own
    return out


# -- latency ---------------------------------------------------------------------------


@dataclass
class Run:
    mode: str
    phase: str
    fills: int
    total: list[int]
    to_sink: list[int]
    to_yield: list[int]
    to_publish: list[int]
    push_span_s: float
    drain_s: float
    events: int
    cpu_s: float
    venue_cpu_s: float | None
    batches: list[tuple[int, float, float]]


def pct(xs: list[int], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] / 1e6


async def fills_run(daemon: TimedDaemon, side: Side, phase: str, n: int, gap_s: float) -> Run:
    order = await side.call("rest", n)
    await asyncio.sleep(0.6)  # its NEW and the account refresh after it settle first
    assert daemon._writer is not None
    venue = daemon.venue
    assert isinstance(venue, TimedVenue)
    seq0, cpu0, b0 = daemon._writer.state.seq, time.process_time(), len(daemon.batches)
    vcpu0 = await side.call("cpu") if side.mode == "subprocess" else None
    pushed: dict[str, int] = await side.call("fills", order, n, gap_s)
    keys = {tid: fill_key(UNIFIED, tid) for tid in pushed}
    await published(daemon, list(keys.values()))
    cpu = time.process_time() - cpu0
    vcpu = None if vcpu0 is None else await side.call("cpu") - vcpu0
    assert len(pushed) == n, f"{len(pushed)} fills pushed, {n} asked"
    pub = daemon.published
    done = max(pub[k] for k in keys.values())
    return Run(
        mode=side.mode, phase=phase, fills=n,
        total=[pub[keys[t]] - p for t, p in pushed.items()],
        to_sink=[venue.sunk[t] - p for t, p in pushed.items()],
        to_yield=[venue.yielded[t] - venue.sunk[t] for t in pushed],
        to_publish=[pub[keys[t]] - venue.yielded[t] for t in pushed],
        push_span_s=(max(pushed.values()) - min(pushed.values())) / 1e9,
        drain_s=(done - min(pushed.values())) / 1e9,
        events=daemon._writer.state.seq - seq0, cpu_s=cpu, venue_cpu_s=vcpu,
        batches=daemon.batches[b0:])


async def latency_bench(sizes: Sizes, mode: str, scratch: Path) -> list[Run]:
    async with venue_side(mode) as side, running(side, scratch) as daemon:
        idle = await fills_run(daemon, side, f"idle: {sizes.idle} fills {IDLE_GAP_S * 1000:g} ms"
                               " apart", sizes.idle, IDLE_GAP_S)
        burst = await fills_run(daemon, side, f"burst: {sizes.burst:,} fills back to back",
                                sizes.burst, 0.0)
        assert daemon._writer is not None and daemon._writer.state.quarantined == 0
    return [idle, burst]


# -- resync ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    mode: str
    id: str
    label: str
    fills: int
    wall: float
    cpu: float | None
    venue_cpu: float | None = None


def plain_ccxt(rest_url: str) -> Any:
    """ccxt's own binanceusdm, paced as the adapter is (1 ms/weight), every REST base
    moved onto the venue (`FakeBinance.ccxt_urls`'s recipe, for a venue in another
    process too)."""
    ex = ccxt.pro.binanceusdm({"apiKey": DEFAULT_KEY, "secret": DEFAULT_SECRET,
                               "rateLimit": LOOPBACK.rate_limit_ms,
                               "options": {"fetchCurrencies": False}})
    ex.urls["api"] = {name: rest_url + urlsplit(url).path if isinstance(url, str) else url
                      for name, url in ex.urls["api"].items()}
    return ex


async def ccxt_walk(ex: Any, symbol: str) -> int:
    """The pages the adapter asks for, by ccxt alone: a window, then `fromId`."""
    now = ex.milliseconds()
    page = await ex.fetch_my_trades(symbol, now - WEEK_MS + 60_000, 1000, {"endTime": now})
    n = len(page)
    while len(page) == 1000:
        page = await ex.fetch_my_trades(symbol, None, 1000,
                                        {"fromId": max(int(t["id"]) for t in page) + 1})
        n += len(page)
    return n


async def venue_cpu(side: Side) -> float | None:
    return await side.call("cpu") if side.mode == "subprocess" else None


def minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


async def ccxt_baseline(side: Side, n: int) -> Row:
    ex = plain_ccxt(side.rest_url)
    try:
        await ex.load_markets()
        v0, sw = await venue_cpu(side), Stopwatch()
        with sw.running():
            got = [await ccxt_walk(ex, s) for s in SYMBOLS]
        v1 = await venue_cpu(side)
    finally:
        await ex.close()
    assert got == [n, 0], f"ccxt walked {got} trades, the venue holds {n}"
    return Row(side.mode, "r1", "baseline: ccxt alone, the same userTrades pages, 1 ms/weight",
               n, sw.wall, sw.cpu, minus(v1, v0))


async def adapter_query(side: Side, n: int, settings: CcxtProSettings, rid: str,
                        label: str) -> Row:
    venue = TimedVenue(ccxtpro_config(side.rest_url, settings))
    await venue.connect()
    try:
        # ccxt's leaky bucket holds one unit: waiting lets connect's calls' cost (the
        # position mode weighs 30) drain, so only fills_since's own pacing is timed.
        await asyncio.sleep(30 * (settings.rate_limit_ms or 50.0) / 1000 + 0.2)
        v0 = await venue_cpu(side)
        fills = await venue.fills_since(0)
        v1 = await venue_cpu(side)
    finally:
        await venue.close()
    assert len(fills) == n, f"fills_since(0) gave {len(fills)}, the venue holds {n}"
    t0, t1, c0, c1, _ = venue.queries[-1]
    return Row(side.mode, rid, label, n, (t1 - t0) / 1e9, c1 - c0, minus(v1, v0))


async def daemon_resync(side: Side, n: int, scratch: Path) -> list[Row]:
    v0, t0, c0 = await venue_cpu(side), time.perf_counter_ns(), time.process_time()
    async with running(side, scratch) as daemon:
        t_ready, c_ready = time.perf_counter_ns(), time.process_time()
        v1 = await venue_cpu(side)
        venue = daemon.venue
        assert isinstance(venue, TimedVenue)
        m, mc = await resynced(daemon)
        booked = sum(1 for k in daemon.published if k.startswith(FILL_PREFIX))
    assert booked == n, f"the daemon booked {booked} fills, the venue holds {n}"
    q0, q1, qc0, qc1, _ = venue.queries[0]
    label = "daemon's first resync:"
    return [
        Row(side.mode, "r4", f"{label} fills_since(0) in it", n, (q1 - q0) / 1e9, qc1 - qc0),
        Row(side.mode, "r5", f"{label} fills_since start -> ResyncCompleted(fills) committed",
            n, (m - q0) / 1e9, mc - qc0),
        Row(side.mode, "r6", "daemon start -> ready (connected, the whole first resync"
            " queued)", n,
            (t_ready - t0) / 1e9, c_ready - c0, minus(v1, v0)),
    ]


async def resync_bench(sizes: Sizes, mode: str, scratch: Path, quick: bool) -> list[Row]:
    async with venue_side(mode) as side:
        held = await side.call("history", sizes.history)
        assert held == sizes.history
        base, mine = [], []
        for _ in range(sizes.rounds):  # interleaved; each keeps its fastest
            base.append(await ccxt_baseline(side, held))
            mine.append(await adapter_query(side, held, LOOPBACK, "r2",
                                            "adapter fills_since(0), ccxt pacing 1 ms/weight"))
        rows = [min(base, key=lambda r: r.wall), min(mine, key=lambda r: r.wall)]
        if not quick:
            rows.append(await adapter_query(
                side, held, BINANCE_PACE, "r3",
                "adapter fills_since(0), ccxt's Binance pacing 50 ms/weight"))
        rows += await daemon_resync(side, held, scratch)
    return rows


# -- profile ---------------------------------------------------------------------------

COMPONENTS = (
    ("adapters/ccxtpro/", "adapter (adapters/ccxtpro)"),
    ("site-packages/ccxt/", "ccxt (its websocket client, handlers, parsers, limiter)"),
    ("/kernel/daemon/", "kernel shell (writer loop: log lines, metrics; venue loop)"),
    ("/kernel/", "kernel core (fold, project, reconcile, intents diff)"),
    ("/events/", "events (validation, dedup keys, codec)"),
    ("structlog", "structlog"), ("prometheus_client", "prometheus_client"),
    ("aiohttp", "aiohttp"), ("aiosqlite", "aiosqlite, loop side"), ("asyncio", "asyncio"),
    ("/bench/", "bench hooks"),
)


def components(prof: cProfile.Profile, top: int) -> str:
    """Own time by where the function lives (the main thread only: SQLite's work runs
    in aiosqlite's thread), then the top functions."""
    total: dict[str, float] = {}
    stats = pstats.Stats(prof)
    for (path, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        label = ("idle: waiting in epoll" if "select.epoll" in name else
                 next((lbl for k, lbl in COMPONENTS if k in path),
                      "C builtins (decimal, json, sqlite3 calls, ...)" if path == "~"
                      else "other Python"))
        total[label] = total.get(label, 0.0) + tt
    whole = sum(total.values()) or 1.0
    lines = ["| component | own s | share |", "|---|---:|---:|"]
    lines += [f"| {lbl} | {tt:.2f} | {100 * tt / whole:.0f}% |"
              for lbl, tt in sorted(total.items(), key=lambda kv: -kv[1])]
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    return "\n".join(lines) + "\n\n```\n" + text[text.find("   ncalls"):].rstrip() + "\n```"


async def profile_bench(sizes: Sizes, scratch: Path, top: int) -> list[tuple[str, str]]:
    """cProfile (this process; the venue in a child) of a burst and of a first resync."""
    out = []
    async with venue_side("subprocess") as side, running(side, scratch) as daemon:
        order = await side.call("rest", sizes.burst)
        await asyncio.sleep(0.6)
        prof = cProfile.Profile()
        prof.enable()
        pushed = await side.call("fills", order, sizes.burst, 0.0)
        await published(daemon, [fill_key(UNIFIED, t) for t in pushed])
        prof.disable()
    out.append((f"a burst of {sizes.burst:,} fills, first push to last publish", prof))
    async with venue_side("subprocess") as side:
        await side.call("history", sizes.history)
        prof = cProfile.Profile()
        prof.enable()
        async with running(side, scratch) as daemon:
            await resynced(daemon)
            prof.disable()
    out.append((f"a daemon's start and first resync of {sizes.history:,} fills, to"
                " ResyncCompleted(fills) committed", prof))
    return [(title, components(p, top)) for title, p in out]


# -- report ----------------------------------------------------------------------------


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "" if x is None else format(x, spec)


def parse_table(rows: list[Measurement]) -> str:
    base = {r.id: r for r in rows}
    lines = ["| id | what | payloads | wall s | CPU s | per s (wall) | per s (CPU) | µs each (CPU)"
             " | CPU ÷ msgspec decode |", "|---|---|" + "---:|" * 7]
    for r in rows:
        ref = base["p7" if int(r.id[1:]) >= 7 else "p1"]
        ratio = r.cpu / ref.cpu if r.cpu and ref.cpu else None
        lines.append(f"| {r.id} | {r.label} | {r.events:,} | {r.wall:.3f} | {fmt(r.cpu, '.3f')}"
                     f" | {r.rate:,.0f} | {fmt(r.cpu_rate, ',.0f')}"
                     f" | {fmt(1e6 * r.cpu / r.events if r.cpu else None)} | {fmt(ratio)}× |")
    return "\n".join(lines)


def latency_tables(runs: list[Run]) -> str:
    head = ["| venue | phase | push span ms | drain ms | fills/s booked | events committed"
            " | CPU s (this process) | venue CPU s | p50 ms | p99 ms | max ms |",
            "|---|---|" + "---:|" * 9]
    for r in runs:
        head.append(f"| {r.mode} | {r.phase} | {r.push_span_s * 1000:,.1f}"
                    f" | {r.drain_s * 1000:,.1f} | {r.fills / r.drain_s:,.0f} | {r.events:,}"
                    f" | {r.cpu_s:.2f} | {fmt(r.venue_cpu_s)} | {pct(r.total, 0.5):.2f}"
                    f" | {pct(r.total, 0.99):.2f} | {max(r.total) / 1e6:.2f} |")
    seg = ["| venue | phase | push → sink p50 / p99 ms | sink → facts() p50 / p99 ms"
           " | facts() → published p50 / p99 ms | writer batches | events per batch"
           " | fold s | commit s |", "|---|---|" + "---:|" * 7]
    for r in runs:
        cells = " | ".join(f"{pct(xs, 0.5):.2f} / {pct(xs, 0.99):.2f}"
                           for xs in (r.to_sink, r.to_yield, r.to_publish))
        n = len(r.batches)
        seg.append(f"| {r.mode} | {r.phase} | {cells} | {n:,}"
                   f" | {sum(b[0] for b in r.batches) / max(n, 1):.1f}"
                   f" | {sum(b[1] for b in r.batches):.3f}"
                   f" | {sum(b[2] for b in r.batches):.3f} |")
    return "\n".join(head) + "\n\n" + "\n".join(seg)


def resync_table(rows: list[Row]) -> str:
    lines = ["| venue | id | what | fills | wall s | CPU s (this process) | venue CPU s"
             " | fills/s (wall) | wall ÷ ccxt alone |", "|---|---|---|" + "---:|" * 6]
    base = {r.mode: r for r in rows if r.id == "r1"}
    for r in rows:
        ref = base.get(r.mode)
        ratio = r.wall / ref.wall if ref is not None and r.id in ("r2", "r3", "r4") else None
        lines.append(f"| {r.mode} | {r.id} | {r.label} | {r.fills:,} | {r.wall:.3f}"
                     f" | {fmt(r.cpu)} | {fmt(r.venue_cpu)} | {r.fills / r.wall:,.0f}"
                     f" | {fmt(ratio) + '×' if ratio else ''} |")
    return "\n".join(lines)


def header(args: argparse.Namespace, sizes: Sizes, load0: tuple[float, ...],
           wall: float, cpu: float) -> str:
    import aiohttp
    import orjson

    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    cmd = " ".join(["python -m bench.ccxtpro", *sys.argv[1:]])
    load1 = os.getloadavg()
    return "\n".join([
        f"- command: `{cmd}`", f"- date: {now}",
        f"- machine: {os.cpu_count()} CPUs, {platform.machine()}, {platform.platform()};"
        f" load average {load0[0]:.2f} at the start, {load1[0]:.2f} at the end (1 min)",
        f"- whole run: wall {wall:.1f} s, CPU {cpu:.1f} s (this process)",
        f"- Python {platform.python_version()}, ccxt {ccxt.__version__}, msgspec"
        f" {msgspec.__version__}, orjson {orjson.__version__}, aiohttp {aiohttp.__version__}",
        f"- sizes: parse {sizes.payloads:,} payloads (fastest of {sizes.rounds}), idle"
        f" {sizes.idle} fills, burst {sizes.burst:,} fills, resync {sizes.history:,} fills"
        f" ({PER_ORDER} per order; r1/r2 fastest of {sizes.rounds})",
        "- daemon: default kernel config (synchronous FULL, queue 10,000, batch 1,000),"
        " reconciler on, metrics on (not served), logs at info to /dev/null; adapter"
        " defaults except ccxt's pacing (1 ms/weight, r3: 50); the fake pushes marks each"
        " second",
    ])


async def main_async(args: argparse.Namespace, scratch: Path) -> None:
    sizes = QUICK if args.quick else FULL
    modes = ["subprocess", "inprocess"] if args.venue == "both" else [args.venue]
    load0, t0, c0 = os.getloadavg(), time.perf_counter(), time.process_time()
    progress(f"parse: building {sizes.payloads:,} payloads")
    parsed = parse_bench(sizes, *await payloads(sizes.payloads))
    runs: list[Run] = []
    rows: list[Row] = []
    for mode in modes:
        progress(f"latency, venue {mode}")
        runs += await latency_bench(sizes, mode, scratch)
        progress(f"resync of {sizes.history:,} fills, venue {mode}")
        rows += await resync_bench(sizes, mode, scratch, args.quick)
    profiles = []
    if args.profile:
        progress("cProfile of a burst and of a resync, venue subprocess")
        profiles = await profile_bench(sizes, scratch, args.top)
    print(header(args, sizes, load0, time.perf_counter() - t0, time.process_time() - c0))
    for title, body in (("Parse throughput", parse_table(parsed)),
                        ("Latency: push at the venue → snapshot published",
                         latency_tables(runs)),
                        (f"Resync of {sizes.history:,} fills", resync_table(rows))):
        print(f"\n### {title}\n\n{body}")
    for title, body in profiles:
        print(f"\n### cProfile: {title} (venue in a child)\n\n{body}")
    if STOP_NUDGES:
        print(f"\n- a daemon stop hung {len(STOP_NUDGES)} time(s) in `_drain` (the reconciler"
              " kept running after its cancel) and was cancelled again: see `running`")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.ccxtpro", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, one round")
    p.add_argument("--venue", choices=("subprocess", "inprocess", "both"), default="both",
                   help="where the fake venue runs for latency and resync (default both)")
    p.add_argument("--out", type=Path, default=OUT, help="scratch dir (default bench/out)")
    p.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None,
                   help="cProfile a burst and a resync (default: on, off with --quick)")
    p.add_argument("--top", type=int, default=8, help="functions shown from each profile")
    p.add_argument("--serve-venue", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_venue:
        asyncio.run(serve_venue())
        return
    if args.profile is None:
        args.profile = not args.quick
    if time.get_clock_info("perf_counter").implementation != "clock_gettime(CLOCK_MONOTONIC)":
        raise SystemExit("the venue child's push times need perf_counter on CLOCK_MONOTONIC")
    args.out.mkdir(parents=True, exist_ok=True)
    devnull = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    logs.configure("info", json=True, stream=devnull)
    money.install()
    with tempfile.TemporaryDirectory(dir=args.out, prefix="ccxtpro-") as tmp:
        asyncio.run(main_async(args, Path(tmp)))


if __name__ == "__main__":
    main()
