"""Subscribers under load: a daemon flooded by the sim venue, real clients on its socket.

A stalled client (a small receive buffer, a websocket client that stops reading) must
cost the writer and the other subscribers nothing and hold at most one frame in the
server's memory, then be closed as lagging; events come from the log then live with no
gap and no duplicate, even when the hub's ring moves on during the backfill; snapshots
conflate with exact `skipped` ranges and are encoded once for everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from websockets.asyncio.client import ClientConnection, unix_connect

from adapters.sim.config import SimInstrument
from kernel.daemon import subscribers
from kernel.daemon.service import Daemon
from tests.api_support import Raw, config, daemon, eventually, rows
from tests.sim_support import quiet

SEQ = re.compile(rb'"seq":(\d+)')
INSTRUMENTS = tuple(
    SimInstrument(symbol=f"S{i}USDT", base=f"S{i}", quote="USDT", settle="USDT",
                  tick_size=Decimal("0.01"), lot_size=Decimal("0.001"),
                  start_price=Decimal(100 + i))
    for i in range(2))


def flooded(per_s: int, **api: Any) -> Any:
    return config(quiet(*INSTRUMENTS, flood_per_s=per_s), **api)


@contextlib.asynccontextmanager
async def stalled(path: Path, request: dict[str, Any]) -> AsyncIterator[ClientConnection]:
    """A client that subscribes, then reads nothing: a tiny receive buffer, and a
    websocket client that stops reading its socket after one queued frame."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(str(path))
    sock.setblocking(False)
    ws = await unix_connect(sock=sock, max_queue=1)
    try:
        await ws.send(json.dumps({"id": 1, "op": "hello", "token": "op-token"}))
        assert json.loads(await ws.recv())["ok"]
        await ws.send(json.dumps({"id": 2, **request}))
        yield ws
    finally:
        ws.transport.abort()  # a closing handshake would wait for it to read


class Reader:
    """A subscriber that keeps up: (seq, arrival) of every push, read as it comes."""

    def __init__(self, raw: Raw) -> None:
        self.raw = raw
        self.got: list[tuple[int, float]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await self.raw.ws.recv(decode=False)
                if frame.startswith(b'{"type"'):
                    m = SEQ.search(frame, 0, 120)
                    if m:
                        self.got.append((int(m[1]), time.perf_counter()))


def commit_times(d: Daemon) -> dict[int, float]:
    times: dict[int, float] = {}
    d.hub.listen(lambda: times.setdefault(d.hub.seq, time.perf_counter()))
    return times


def rate(d: Daemon, seconds: float) -> Any:
    async def measure() -> float:
        assert d._writer is not None
        seq0, t0 = d._writer.state.seq, time.perf_counter()
        await asyncio.sleep(seconds)
        return (d._writer.state.seq - seq0) / (time.perf_counter() - t0)
    return measure()


def server_conns(d: Daemon) -> list[Any]:
    return [s.ws for s in d.api._conns]


async def test_a_stalled_subscriber_costs_nothing_while_20_others_keep_up(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path / "s", flooded(1500, max_lag_s=2.0), pace_s=0.005) as d:
        path = d.api.socket_path
        await asyncio.sleep(0.5)
        alone = await rate(d, 1.5)
        commits = commit_times(d)
        async with contextlib.AsyncExitStack() as stack:
            readers = []
            for _ in range(20):
                raw = await stack.enter_async_context(Raw.connect(path))
                await raw.call("subscribe_snapshots")
                readers.append(Reader(raw))
            stuck = await stack.enter_async_context(
                stalled(path, {"op": "subscribe_snapshots"}))
            await asyncio.sleep(0.5)  # its socket fills
            window = time.perf_counter()
            buffered: list[int] = []
            sampler = asyncio.create_task(sample_buffers(d, buffered))
            shared = await rate(d, 1.5)
            sampler.cancel()
            frame = len(d.hub.snapshot_body()[1]) + 200  # type: ignore[index]
            assert len(server_conns(d)) == 21, "the stalled one is still connected here"
            # The writer is not slowed by 21 subscribers, one of them stuck.
            assert shared >= 0.9 * alone, (alone, shared)
            # The stuck one holds at most one frame in the server's memory.
            assert max(buffered) <= frame, (max(buffered), frame)
            # The others keep up: each got the latest, and promptly.
            delays = sorted(t - commits[s] for r in readers for s, t in r.got
                            if t >= window and s in commits)
            assert len(delays) > 20 * 50, len(delays)
            p99 = delays[int(0.99 * len(delays))]
            assert p99 < 0.1, f"p99 delivery {p99 * 1000:.1f} ms"
            latest = d.hub.seq
            await eventually(lambda: all(r.got[-1][0] >= latest for r in readers), 2,
                             "every reader has the latest snapshot")
            # Past max_lag_s the stuck one is dropped as lagging, and told so behind what
            # it has not read (were it to read again before the close times out).
            await eventually(lambda: d.api.fanout.count == 20, 5, "the stalled one dropped")
            assert (await drain(stuck))[-1] == {"type": "bye", "reason": "lagging"}
            assert len(server_conns(d)) == 20 and all(not r.task.done() for r in readers)


async def drain(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every frame until the connection closes."""
    frames = []
    with contextlib.suppress(Exception):
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
    return frames


async def sample_buffers(d: Daemon, out: list[int]) -> None:
    while True:
        out.append(max((c.transport.get_write_buffer_size() for c in server_conns(d)),
                       default=0))
        await asyncio.sleep(0.01)


async def test_an_event_subscriber_too_far_behind_is_closed_as_lagging(tmp_path: Path) -> None:
    async with daemon(tmp_path / "s", flooded(1000, max_event_backlog=300),
                      pace_s=0.005) as d:
        path = d.api.socket_path
        async with Raw.connect(path) as good, stalled(path, {"op": "subscribe_events"}) as s:
            r = await good.call("subscribe_events")
            reader = Reader(good)
            await eventually(lambda: d.api.fanout.count == 1, 10, "the stalled one dropped")
            frames = await drain(s)
            assert frames[-1] == {"type": "bye", "reason": "lagging"}
            events = [f["seq"] for f in frames if f.get("type") == "event"]
            assert events == list(range(events[0], events[-1] + 1))  # never conflated
            seqs = [seq for seq, _ in reader.got]
            assert seqs == list(range(r["result"]["seq"] + 1, seqs[-1] + 1))  # unharmed
            assert d.hub.seq - seqs[0] > 300


async def test_events_from_the_log_then_live_have_no_gap_and_no_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A ring of 1,000 at ~1,000/s moves on while a slow start holds the backfill back: it
    # must go back to the log for what the ring dropped, then turn live at the next seq.
    monkeypatch.setattr(subscribers, "BACKFILL_CHUNK", 100)
    async with daemon(tmp_path / "s", flooded(1000, max_event_backlog=1000),
                      pace_s=0.005) as d:
        await eventually(lambda: d.hub.seq > 1000, 10, "a log of 1,000 events")
        async with Raw.connect(d.api.socket_path) as every, \
                Raw.connect(d.api.socket_path) as some:
            kinds = ["instrument_defined", "transfer_completed", "balance_reported"]
            got: dict[str, list[dict[str, Any]]] = {"every": [], "some": []}
            with capture_logs() as logs:
                await every.call("subscribe_events", since=0)
                await some.call("subscribe_events", since=0, kinds=kinds)
                def live() -> list[dict[str, Any]]:  # the two backfills, as they end
                    return sorted((e for e in logs if e["event"] == "api subscriber live"),
                                  key=lambda e: -e["from_log"])

                # Slow for its first 1,500 frames of backfill (so that the ring moves on
                # under it), then as fast as it can: a reader still slow once live would
                # fall behind the flood and be closed as lagging, rightly. Its backfill is
                # the one that sent the whole log (over 1,000 events); the other's holds
                # three kinds.
                def backfilling(_: dict[str, Any]) -> bool:
                    return len(got["every"]) < 1500 and not any(
                        e["from_log"] > 1000 for e in live())

                readers = [asyncio.create_task(collect(every, got["every"],
                                                       slow_while=backfilling)),
                           asyncio.create_task(collect(some, got["some"]))]

                await eventually(lambda: len(live()) == 2, 20, "the backfills turned live")
                target = d.hub.seq + 500
                await eventually(lambda: got["every"][-1].get("seq", target) >= target, 10,
                                 "live events after the backfill")
            assert "seq" in got["every"][-1], got["every"][-1]  # not a bye
            for t in readers:
                t.cancel()
    assert live()[0]["rounds"] >= 2, live()  # more was committed during the backfill
    last = got["every"][-1]["seq"]
    logged = await rows(tmp_path / "s" / "events.db")
    assert [p["seq"] for p in got["every"]] == list(range(1, last + 1))
    assert [p["event"]["kind"] for p in got["every"]] == [k for _, k, _ in logged[:last]]
    want = [s for s, k, _ in logged if k in kinds and s <= last]
    assert [p["seq"] for p in got["some"] if p["seq"] <= last] == want


async def collect(c: Raw, out: list[dict[str, Any]],
                  slow_while: Callable[[dict[str, Any]], bool] | None = None) -> None:
    """Every push into `out`; 2 ms after each one for which `slow_while` holds."""
    while True:
        frame = await c.push()
        out.append(frame)
        if slow_while is not None and slow_while(frame):
            await asyncio.sleep(0.002)


async def test_snapshot_pushes_conflate_with_exact_skipped_ranges(tmp_path: Path) -> None:
    async with daemon(tmp_path / "s", flooded(1000), pace_s=0.005) as d:
        await eventually(lambda: d.hub.seq > 50, 10)
        async with Raw.connect(d.api.socket_path) as fast, \
                stalled(d.api.socket_path, {"op": "subscribe_snapshots", "from_seq": 3}) as ws:
            await fast.call("subscribe_snapshots", from_seq=3)
            pushes: dict[str, list[dict[str, Any]]] = {"fast": [], "slow": []}
            for _ in range(40):
                pushes["fast"].append(await fast.push())
            await fast.call("unsubscribe", sub="s1")
            await asyncio.sleep(1.0)  # the slow one reads nothing for a second
            assert json.loads(await ws.recv())["ok"]
            for _ in range(100):  # what its socket held, then what was conflated
                pushes["slow"].append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
    for name, ps in pushes.items():
        prev = 3
        for p in ps:
            assert p["seq"] > prev, (name, p["seq"], prev)
            gap = None if p["seq"] == prev + 1 else [prev + 1, p["seq"] - 1]
            assert p["skipped"] == gap, (name, p["skipped"], gap)
            assert p["snapshot"]["seq"] == p["seq"]
            prev = p["seq"]
    slow_gaps = [p["skipped"][1] - p["skipped"][0] + 1 for p in pushes["slow"][1:]
                 if p["skipped"]]
    assert slow_gaps and max(slow_gaps) > 300  # most of the second's ~1,000 events


async def test_each_snapshot_is_encoded_once_and_sent_as_the_same_bytes(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path / "s", flooded(500), pace_s=0.005) as d:
        encoded: list[int] = []
        inner = d.hub._encoder

        def counting(snap: Any, book: Any, *, with_book: bool = True) -> bytes:
            encoded.append(snap.seq)
            return inner(snap, book, with_book=with_book)

        d.hub._encoder = counting
        frames: dict[int, list[bytes]] = {}
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(Raw.connect(d.api.socket_path))
                       for _ in range(5)]
            for c in clients:
                await c.call("subscribe_snapshots")
            encoded.clear()
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                for c in clients:
                    raw = await c.ws.recv(decode=False)
                    m = SEQ.search(raw)
                    assert m is not None
                    frames.setdefault(int(m[1]), []).append(raw[raw.index(b'"snapshot":'):])
    assert len(encoded) == len(set(encoded))  # never twice for one seq
    assert set(encoded) <= set(frames) | {max(frames) + i for i in range(1, 50)}
    shared = [fs for fs in frames.values() if len(fs) > 1]
    assert shared and all(len(set(fs)) == 1 for fs in shared)
