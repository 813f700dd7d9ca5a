"""The client's reconnect against a real daemon that restarts under load: streams resume
from the last seq seen, with no gap and no duplicate; calls made during the outage go
out on the next connection; a token refused after the restart stops the client for good.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.codec import decode_logged, encode
from events.log import EventLog
from events.orders import IntentPlaced
from kernel.client import Client, ConnectionLost, OutcomeUnknown, Unauthorized
from tests.client_support import TRADE, TRADE_ENV, Daemon

FAST = {"backoff_initial": 0.05, "backoff_max": 0.5, "request_timeout": 60.0}


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path, extra="flood_per_s = 300").start()  # a writer under load
    try:
        yield d
    finally:
        d.stop()


async def log_rows(db: Path, until: int) -> list[tuple[int, bytes]]:
    log = await EventLog.open(db, readonly=True)
    try:
        return [(r.seq, r.payload) async for r in log.rows(until=until)]
    finally:
        await log.close()


async def restart(daemon: Daemon) -> None:
    assert await asyncio.to_thread(daemon.stop) == 0
    await asyncio.to_thread(daemon.start)


async def test_streams_resume_across_a_daemon_restart_with_no_gap_and_no_duplicate(
    daemon: Daemon,
) -> None:
    client = await Client.connect(unix_path=daemon.socket, token=TRADE, **FAST)
    events: list[tuple[int, bytes]] = []
    snaps: list[tuple[int, tuple[int, int] | None]] = []
    event_stream = client.events(since=0)
    snap_stream = client.snapshots(from_seq=0)

    async def collect_events() -> None:
        async for seq, event in event_stream:
            events.append((seq, encode(event)))

    async def collect_snapshots() -> None:
        async for snap in snap_stream:
            snaps.append((snap.seq, snap_stream.skipped))

    tasks = [asyncio.create_task(collect_events()), asyncio.create_task(collect_snapshots())]
    try:
        async with asyncio.timeout(120):
            while len(events) < 500:
                await asyncio.sleep(0.05)
            await restart(daemon)
            before = events[-1][0]
            while not events or events[-1][0] < before + 500 or client.reconnects < 1:
                await asyncio.sleep(0.05)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
    assert client.reconnects == 1
    seqs = [s for s, _ in events]
    assert seqs == list(range(1, len(seqs) + 1)), "a gap or a repeat in the event stream"
    assert events == await log_rows(daemon.db, seqs[-1])  # the log's very bytes
    # Snapshots: strictly increasing, and what a reader did not see is named exactly.
    assert [s for s, _ in snaps] == sorted({s for s, _ in snaps})
    previous = 0
    for seq, skipped in snaps:
        assert skipped == ((previous + 1, seq - 1) if seq > previous + 1 else None)
        previous = seq
    assert snaps[-1][0] > before


async def test_calls_during_the_outage_go_out_on_the_next_connection(daemon: Daemon) -> None:
    async with Client.connect(unix_path=daemon.socket, token=TRADE, **FAST) as client:
        assert await asyncio.to_thread(daemon.stop) == 0
        place = asyncio.create_task(client.place_intent(
            intent_id="r-1", strategy="r", symbol="BTCUSDT", side="buy", order_type="limit",
            qty="0.010", price="50000.0"))
        status = asyncio.create_task(client.status())
        await asyncio.sleep(0.5)
        assert not place.done() and not status.done()  # waiting for the daemon
        await asyncio.to_thread(daemon.start)
        logged = await place
        assert not logged.duplicate
        assert (await status).pid == daemon.pid  # the new daemon answered
        amended = await client.amend_intent("r-1", 1, price="50010.0")
        assert amended.seq > logged.seq
    rows = await log_rows(daemon.db, amended.seq)
    placed = [decode_logged(p) for _, p in rows]
    assert [e.intent_id for e in placed if isinstance(e, IntentPlaced)].count("r-1") == 1


async def test_a_daemon_killed_mid_request_leaves_an_amend_unknown_and_resends_a_place(
    daemon: Daemon,
) -> None:
    async with Client.connect(unix_path=daemon.socket, token=TRADE, **FAST) as client:
        first = await client.place_intent(
            intent_id="k-1", strategy="k", symbol="BTCUSDT", side="buy", order_type="limit",
            qty="0.010", price="50000.0")
        assert daemon.proc is not None
        os.kill(daemon.pid, signal.SIGSTOP)  # frozen: requests wait unread in its socket
        amend = asyncio.create_task(client.amend_intent("k-1", 1, price="50010.0"))
        place = asyncio.create_task(client.place_intent(
            intent_id="k-2", strategy="k", symbol="BTCUSDT", side="buy", order_type="limit",
            qty="0.010", price="50000.0"))
        await asyncio.sleep(0.3)
        assert not amend.done() and not place.done()
        daemon.proc.kill()  # kill -9: no reply will ever come on this connection
        await asyncio.to_thread(daemon.proc.wait)
        await asyncio.to_thread(daemon.start)
        with pytest.raises(OutcomeUnknown):  # it may have been logged: look before repeating
            await amend
        second = await place  # resent on the new connection: the kernel decides once
        assert second.seq > first.seq
        [intent] = [i for i in (await client.list_intents()).intents if i.intent_id == "k-1"]
        assert intent.revision == 0  # the frozen daemon never read the amend
    rows = await log_rows(daemon.db, second.seq)
    placed = [e for _, p in rows if isinstance(e := decode_logged(p), IntentPlaced)]
    assert [e.intent_id for e in placed if e.intent_id.startswith("k-")] == ["k-1", "k-2"]


async def test_a_token_refused_after_a_restart_stops_the_client(daemon: Daemon) -> None:
    client = await Client.connect(unix_path=daemon.socket, token=TRADE, **FAST)
    try:
        stream = client.events()
        assert await asyncio.to_thread(daemon.stop) == 0
        daemon.env[TRADE_ENV] = "a-rotated-token"  # the operator rotated the token
        daemon.spawn()
        await asyncio.to_thread(daemon.wait_socket, 30)
        async with asyncio.timeout(30):
            with pytest.raises(Unauthorized):
                async for _ in stream:
                    pass
        with pytest.raises(Unauthorized):
            await client.status()  # at once: it does not try again
        assert client.reconnects == 0
    finally:
        await client.close()


async def test_a_reader_far_behind_rereads_from_the_log_with_nothing_missed(
    daemon: Daemon,
) -> None:
    async with Client.connect(unix_path=daemon.socket, token=TRADE, **FAST) as client:
        stream = client.events(since=0, max_buffer=20)
        seqs: list[int] = []
        async with asyncio.timeout(60):
            async for seq, _ in stream:
                seqs.append(seq)
                if len(seqs) % 50 == 0:
                    await asyncio.sleep(0.3)  # hundreds of events arrive meanwhile
                if len(seqs) >= 600:
                    break
        assert stream.overflows >= 1, "the reader never fell behind: the test proves nothing"
        assert seqs == list(range(1, 601))


async def test_without_reconnect_a_drop_ends_streams_with_connection_lost(
    daemon: Daemon,
) -> None:
    client = await Client.connect(unix_path=daemon.socket, token=TRADE, reconnect=False)
    stream = client.snapshots()
    await anext(stream)
    assert await asyncio.to_thread(daemon.stop) == 0
    with pytest.raises(ConnectionLost):
        async with asyncio.timeout(10):
            async for _ in stream:
                pass
    with pytest.raises(ConnectionLost):
        await client.status()
    await client.close()
