"""Snapshot and event subscribers, fed from the hub by one task that never waits on a socket.

After each commit the hub wakes `Fanout.run`, which makes one pass over the
subscribers and writes to each connection whose write buffer is empty (the socket took
everything so far), without awaiting; a connection with bytes still buffered is skipped
and tried again on the next pass (every `TICK_S` while any is behind). So a stalled
client costs one buffered frame and its place, never the writer's time or another
subscriber's, and memory stays bounded:

* **Snapshots** conflate: a subscriber gets the latest snapshot when it can take a frame,
  with `skipped` the seqs it was not sent since the last one. The snapshot's JSON is
  encoded once per seq (`Hub.snapshot_body`; once more without the book, for
  subscribers that asked for `book: false`) and the same bytes go to every subscriber,
  each in its own small envelope (subscribers sharing an envelope share the frame).
* **Events** are never conflated: a live subscriber is sent every committed event after
  its cursor, from the hub's ring (each event encoded once). One further behind than the
  ring holds (`max_event_backlog`) is closed as lagging.
* A subscriber from an earlier seq is first fed from the log by `backfill` (a read-only
  connection of its own, in the connection's task), until it is well inside the ring;
  it then turns live at the next seq: the ring was filling since it subscribed, so there
  is no gap and no duplicate.

A connection whose buffer has not shrunk for `max_lag_s` is handed to `on_lagging` (the
server sends `bye lagging` and closes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog
from websockets.asyncio.server import ServerConnection, broadcast
from websockets.protocol import State

from events.log import EventLog
from kernel.daemon.hub import Hub

#: While any subscriber is behind, a pass this often (seconds) notices drained buffers.
TICK_S = 0.02
#: At most this many event frames to one subscriber per pass, so one far behind cannot
#: hold the others' pass up.
EVENTS_PER_PASS = 500
#: Rows per read when feeding a subscriber from the log.
BACKFILL_CHUNK = 500


class Sub:
    __slots__ = ("_id", "buffered", "conn", "stuck_since", "sub_id")

    def __init__(self, conn: ServerConnection, sub_id: str) -> None:
        self.conn = conn
        self.sub_id = sub_id
        self._id = sub_id.encode()
        self.stuck_since: float | None = None
        self.buffered = 0


class SnapshotSub(Sub):
    __slots__ = ("book", "last")

    def __init__(self, conn: ServerConnection, sub_id: str, from_seq: int | None,
                 book: bool = True) -> None:
        super().__init__(conn, sub_id)
        #: The last seq the client has (None: nothing yet, send the current snapshot).
        self.last = from_seq
        #: Whether its snapshots carry the intents and orders.
        self.book = book

    def frame(self, seq: int, body: bytes) -> bytes:
        last = self.last
        skipped = b"null" if last is None or last + 1 > seq - 1 else (
            b"[%d,%d]" % (last + 1, seq - 1))
        return b'{"type":"snapshot","sub":"%s","seq":%d,"skipped":%s,"snapshot":%s}' % (
            self._id, seq, skipped, body)


class EventSub(Sub):
    __slots__ = ("cursor", "kinds", "since")

    def __init__(self, conn: ServerConnection, sub_id: str, since: int,
                 kinds: frozenset[str] | None) -> None:
        super().__init__(conn, sub_id)
        self.since = since
        self.kinds = kinds
        #: The next seq to send, once live.
        self.cursor = since + 1

    def frame(self, seq: int, body: bytes) -> bytes:
        return b'{"type":"event","sub":"%s","seq":%d,"event":%s}' % (self._id, seq, body)


class Fanout:
    def __init__(self, hub: Hub, *, max_lag_s: float,
                 open_log: Callable[[], Awaitable[EventLog]],
                 on_lagging: Callable[[ServerConnection], None],
                 log: structlog.typing.FilteringBoundLogger | None = None) -> None:
        """`open_log` opens a read-only connection to the log (for backfills);
        `on_lagging(conn)` closes a connection that stopped taking frames."""
        self.hub = hub
        self.max_lag_s = max_lag_s
        self._open_log = open_log
        self._on_lagging = on_lagging
        self._log = log or structlog.get_logger("exkernel.api")
        self._snapshots: dict[SnapshotSub, None] = {}
        self._events: dict[EventSub, None] = {}  # live ones
        self._retained: set[EventSub] = set()
        #: Connections found lagging during a pass, closed after it.
        self._lagging_conns: dict[ServerConnection, None] = {}
        self._news = asyncio.Event()
        self._closed = False
        hub.listen(self._news.set)

    @property
    def count(self) -> int:
        return len(self._snapshots) + len(self._retained)

    # -- subscribing -------------------------------------------------------------------

    def add_snapshots(self, sub: SnapshotSub) -> None:
        """Start sending to `sub` (after its subscribe reply went out)."""
        self._snapshots[sub] = None
        self._news.set()

    def retain(self, sub: EventSub) -> None:
        """Have the hub keep every event committed from now on for `sub`: call when it
        subscribes, before its reply names the current seq."""
        self.hub.retain_events()
        self._retained.add(sub)

    def go_live(self, sub: EventSub) -> bool:
        """Send `sub` events from its cursor on, from the ring (True), if the ring holds
        them with room to spare: its cursor at most half the ring behind the newest.
        Else (False) it needs `backfill` first: turned live at the ring's tail, the next
        commit could push it out."""
        hub = self.hub
        if sub not in self._retained or sub.cursor < hub.oldest_event or (
                hub.seq - sub.cursor >= hub.backlog // 2):
            return False
        self._events[sub] = None
        self._news.set()
        return True

    async def backfill(self, sub: EventSub) -> None:
        """Send `sub` the events after its cursor from the log until it is close to the
        newest, then turn it live. Awaits `sub`'s socket (this is its own task), for at
        most `max_lag_s` a frame; a reader slower than the writer stays here, fed from
        disk at its own pace, costing no memory."""
        log = await self._open_log()
        rounds = sent = 0
        try:
            # Each round reads what was committed when it began (the reader sees every
            # commit before the hub does); more is committed meanwhile, so there may be
            # another round, until the ring holds the rest.
            while sub in self._retained and not self.go_live(sub):
                rounds += 1
                until = self.hub.seq
                rows = log.rows(since=sub.cursor - 1, until=until,
                                kinds=tuple(sub.kinds or ()), chunk=BACKFILL_CHUNK)
                async with contextlib.aclosing(rows):  # closed before the log is
                    async for row in rows:
                        frame = sub.frame(row.seq, row.payload)
                        try:
                            async with asyncio.timeout(self.max_lag_s):
                                await sub.conn.send(frame, text=True)
                        except TimeoutError:
                            self._lagging(sub.conn)
                            return
                        sent += 1
                sub.cursor = until + 1
        finally:
            await log.close()
        self._log.debug("api subscriber live", sub=sub.sub_id, cursor=sub.cursor,
                        from_log=sent, rounds=rounds)

    def remove(self, sub: Sub) -> None:
        if isinstance(sub, SnapshotSub):
            self._snapshots.pop(sub, None)
        elif isinstance(sub, EventSub):
            self._events.pop(sub, None)
            if sub in self._retained:
                self._retained.discard(sub)
                self.hub.release_events()

    def drop(self, conn: ServerConnection) -> None:
        """Forget every subscription of `conn`."""
        for sub in [s for s in (*self._snapshots, *self._retained) if s.conn is conn]:
            self.remove(sub)

    # -- sending -----------------------------------------------------------------------

    async def run(self) -> None:
        """Until `close` (or the hub's): a pass after each commit, and every `TICK_S`
        while anyone is behind."""
        while not (self._closed or self.hub.closed):
            self._news.clear()
            behind = self.send_pass(time.monotonic())
            # asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a cancel that
            # lands as the event is set, and news comes with every commit.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S if behind else None):
                    await self._news.wait()

    def close(self) -> None:
        self._closed = True
        self._news.set()

    def send_pass(self, now: float) -> bool:
        """Write what each subscriber can take now; True if any is still behind."""
        behind = self._send_snapshots(now) | self._send_events(now)
        lagging, self._lagging_conns = self._lagging_conns, {}
        for conn in lagging:
            self._lagging(conn)
        return behind

    def _send_snapshots(self, now: float) -> bool:
        latest = self.hub.latest
        if latest is None or not self._snapshots:
            return False
        seq = latest.seq
        behind = False
        bodies: dict[bool, bytes] = {}
        groups: dict[tuple[bytes, int | None, bool],
                     tuple[bytes, list[ServerConnection]]] = {}
        sent: list[SnapshotSub] = []
        for sub in self._snapshots:
            if sub.last is not None and sub.last >= seq:
                continue
            if not self._ready(sub, now):
                behind = True
                continue
            body = bodies.get(sub.book)
            if body is None:
                found = self.hub.snapshot_body(book=sub.book)
                assert found is not None and found[0] == seq
                body = bodies[sub.book] = found[1]
            key = (sub._id, sub.last, sub.book)
            group = groups.get(key)
            if group is None:
                group = groups[key] = (sub.frame(seq, body), [])
            group[1].append(sub.conn)
            sent.append(sub)
        for frame, conns in groups.values():
            broadcast(conns, frame, text=True)
        for sub in sent:
            sub.last = seq
        return behind

    def _send_events(self, now: float) -> bool:
        hub = self.hub
        behind = False
        for sub in self._events:
            kinds = sub.kinds
            sent = 0
            while sub.cursor <= hub.seq and sent < EVENTS_PER_PASS:
                logged = hub.event(sub.cursor)
                if logged is None:  # the ring moved past it: more than the backlog behind
                    self._log.info("api subscriber lagging", sub=sub.sub_id,
                                   cursor=sub.cursor, oldest=hub.oldest_event,
                                   why="more than max_event_backlog events behind")
                    self._lagging_conns[sub.conn] = None
                    break
                if kinds is None or logged.kind in kinds:
                    if not self._ready(sub, now):
                        break
                    broadcast([sub.conn], sub.frame(logged.seq, logged.body()), text=True)
                    sent += 1
                sub.cursor += 1
            behind = behind or sub.cursor <= hub.seq
        return behind

    def _ready(self, sub: Sub, now: float) -> bool:
        """True if `sub`'s socket took every byte written so far. Tracks how long it has
        not (a shrinking buffer is progress) and closes it past `max_lag_s`."""
        conn = sub.conn
        if conn.protocol.state is not State.OPEN:
            return False
        size = conn.transport.get_write_buffer_size()
        if size == 0:
            sub.stuck_since = None
            sub.buffered = 0
            return True
        if sub.stuck_since is None or size < sub.buffered:
            sub.stuck_since = now
        sub.buffered = size
        if now - sub.stuck_since >= self.max_lag_s and conn not in self._lagging_conns:
            self._log.info("api subscriber lagging", sub=sub.sub_id, buffered=size,
                           why=f"its socket took nothing for {self.max_lag_s} s")
            self._lagging_conns[conn] = None
        return False

    def _lagging(self, conn: ServerConnection) -> None:
        self.drop(conn)
        self._on_lagging(conn)
