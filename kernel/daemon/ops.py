"""The API's ops: what each request does, once its connection said hello and holds the
op's scope (kernel/daemon/api.py sees to both).

Reads take the writer's current state, an immutable value, as it is; `get_snapshot` at a
past seq rebuilds it from the log on a read-only connection, one at a time, yielding to
the event loop as it folds. Subscriptions register with the fan-out
(`kernel/daemon/subscribers.py`) and start pushing after their reply went out
(`Session.after`). The ops that log (intents, halt, resume) run inside the writer as
submissions (`kernel/daemon/intake.py`) and answer after the commit.
"""

from __future__ import annotations

import asyncio
import typing
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import structlog
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from events.codec import KINDS, decode_logged
from events.control import TradingHalted, TradingResumed
from events.log import EventLog
from kernel import intake, protocol
from kernel.daemon.auth import Grant, TokenBucket
from kernel.daemon.hub import Hub, encode_public
from kernel.daemon.intake import log_control, log_intent
from kernel.daemon.replay import start_state
from kernel.daemon.subscribers import EventSub, Fanout, SnapshotSub, Sub
from kernel.daemon.writer import Writer
from kernel.daemon.writer_loop import WriterLoop
from kernel.errors import EventValidationError, KernelError
from kernel.intake import Done, Refused
from kernel.intents import IntentStatus
from kernel.protocol import Reply, fail, ok
from kernel.public import book_out
from kernel.reconcile import ReconcileConfig
from kernel.risk import RiskConfig
from kernel.snapshot import project
from kernel.state import AccountState, Draft, settled

MAX_SUBSCRIPTIONS = 16
#: Events folded between yields to the event loop when rebuilding a past snapshot.
REBUILD_CHUNK = 200
_STATUSES = frozenset(typing.get_args(IntentStatus))


class Session:
    """One client connection's state."""

    def __init__(self, ws: ServerConnection, peer: str, bucket: TokenBucket) -> None:
        self.ws = ws
        self.peer = peer
        self.bucket = bucket
        self.grant: Grant | None = None
        self.errors = 0
        self.limited = 0
        self.subs: dict[str, Sub] = {}
        self.backfills: dict[str, asyncio.Task[None]] = {}
        self.next_sub = 1
        self.idle = asyncio.Event()
        self.idle.set()
        #: Run after the current reply went out (a subscription starts pushing).
        self.after: Callable[[], None] | None = None

    async def ended(self) -> None:
        """Stop this connection's backfills (it is gone)."""
        for task in self.backfills.values():
            task.cancel()
        await asyncio.gather(*self.backfills.values(), return_exceptions=True)


class Ops:
    def __init__(self, *, hub: Hub, writer_loop: WriterLoop, fanout: Fanout,
                 reconcile: ReconcileConfig, db: Path, status: Callable[[], dict[str, Any]],
                 bye: Callable[[ServerConnection, str, int], Awaitable[None]],
                 log: structlog.typing.FilteringBoundLogger,
                 limits: RiskConfig | None = None) -> None:
        self.limits = limits
        self.hub = hub
        self.writer_loop = writer_loop
        self.fanout = fanout
        self.reconcile = reconcile
        self.db = db
        self.status = status
        self._bye = bye
        self.log = log
        self.writer: Writer | None = None
        self._rebuilds = asyncio.Semaphore(1)
        self.table: dict[type[Any], Callable[[Session, Any], Awaitable[Reply]]] = {
            protocol.GetSnapshot: self._get_snapshot,
            protocol.SubscribeSnapshots: self._subscribe_snapshots,
            protocol.SubscribeEvents: self._subscribe_events,
            protocol.Unsubscribe: self._unsubscribe,
            protocol.ListIntents: self._list_intents,
            protocol.Status: self._status,
            protocol.PlaceIntent: self._place,
            protocol.AmendIntent: self._amend,
            protocol.CancelIntent: self._cancel,
            protocol.Halt: self._halt,
            protocol.Resume: self._resume,
        }

    def state(self) -> AccountState:
        assert self.writer is not None, "the server is not started"
        return self.writer.state

    async def reader(self) -> EventLog:
        return await EventLog.open(self.db, readonly=True)

    # -- read ops ----------------------------------------------------------------------

    async def _get_snapshot(self, conn: Session, req: protocol.GetSnapshot) -> Reply:
        last = self.hub.seq
        if req.seq is None or req.seq == last:
            found = self.hub.snapshot_body()
            assert found is not None
            return ok(req.id, snapshot=msgspec.Raw(found[1]))
        if req.seq < 0:
            return fail(req.id, "invalid", f"seq must be >= 0, was {req.seq}", "seq")
        if req.seq > last:
            return fail(req.id, "not_found", f"no event {req.seq}: the last is {last}", "seq")
        async with self._rebuilds:  # CPU-bound: one at a time, yielding as it goes
            state = await self._state_at(req.seq)
        body = encode_public(project(state, self.reconcile), state.book)
        return ok(req.id, snapshot=msgspec.Raw(body))

    async def _state_at(self, seq: int) -> AccountState:
        log = await self.reader()
        try:
            draft = Draft(await start_state(log, seq))
            async for chunk in log.payloads(since=draft.seq, until=seq, chunk=REBUILD_CHUNK):
                for at, payload, key in chunk:
                    draft.fold(decode_logged(payload), at, key)
                await asyncio.sleep(0)  # the writer and the other clients go on meanwhile
            return settled(draft.state())  # K's valuations once, as the replay does
        finally:
            await log.close()

    def _new_sub(self, conn: Session, req: protocol.RequestId, seq: int | None,
                 field: str) -> Reply | str:
        """A new subscription id, or the error reply."""
        if len(conn.subs) >= MAX_SUBSCRIPTIONS:
            return fail(req, "invalid", f"at most {MAX_SUBSCRIPTIONS} subscriptions per"
                        " connection: unsubscribe one first", "op")
        if seq is not None and seq < 0:
            return fail(req, "invalid", f"{field} must be >= 0, was {seq}", field)
        if seq is not None and seq > self.hub.seq:
            return fail(req, "not_found", f"{field} {seq} is past the last event"
                        f" {self.hub.seq}: is this the log you read before?", field)
        sub_id = f"s{conn.next_sub}"
        conn.next_sub += 1
        return sub_id

    async def _subscribe_snapshots(self, conn: Session, req: protocol.SubscribeSnapshots
                                   ) -> Reply:
        sub_id = self._new_sub(conn, req.id, req.from_seq, "from_seq")
        if isinstance(sub_id, Reply):
            return sub_id
        sub = SnapshotSub(conn.ws, sub_id, req.from_seq, req.book)
        conn.subs[sub_id] = sub
        conn.after = lambda: self.fanout.add_snapshots(sub)
        return ok(req.id, sub=sub_id, seq=self.hub.seq)

    async def _subscribe_events(self, conn: Session, req: protocol.SubscribeEvents) -> Reply:
        for i, kind in enumerate(req.kinds):
            if kind not in KINDS:
                return fail(req.id, "invalid", f"unknown event kind {kind!r}; kinds:"
                            f" {', '.join(sorted(KINDS))}", f"kinds[{i}]")
        sub_id = self._new_sub(conn, req.id, req.since, "since")
        if isinstance(sub_id, Reply):
            return sub_id
        since = self.hub.seq if req.since is None else req.since
        sub = EventSub(conn.ws, sub_id, since, frozenset(req.kinds) or None)
        conn.subs[sub_id] = sub
        self.fanout.retain(sub)  # from this commit on, nothing is missed

        def after() -> None:
            if not self.fanout.go_live(sub):
                conn.backfills[sub_id] = asyncio.create_task(self._backfill(conn, sub))

        conn.after = after
        return ok(req.id, sub=sub_id, seq=self.hub.seq)

    async def _backfill(self, conn: Session, sub: EventSub) -> None:
        try:
            await self.fanout.backfill(sub)
        except ConnectionClosed:
            pass
        except KernelError as e:  # the log could not be read
            self.log.error("api backfill failed", sub=sub.sub_id, peer=conn.peer, exc_info=e)
            await self._bye(conn.ws, "internal", 1011)
        finally:
            conn.backfills.pop(sub.sub_id, None)

    async def _unsubscribe(self, conn: Session, req: protocol.Unsubscribe) -> Reply:
        sub = conn.subs.pop(req.sub, None)
        if sub is None:
            return fail(req.id, "not_found", f"no subscription {req.sub!r} on this"
                        " connection", "sub")
        self.fanout.remove(sub)
        task = conn.backfills.pop(req.sub, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return ok(req.id, sub=req.sub)

    async def _list_intents(self, conn: Session, req: protocol.ListIntents) -> Reply:
        for i, status in enumerate(req.status):
            if status not in _STATUSES:
                return fail(req.id, "invalid", f"unknown status {status!r}; statuses:"
                            f" {', '.join(sorted(_STATUSES))}", f"status[{i}]")
        state = self.state()
        intents, orders = book_out(state.book, frozenset(req.status) or None)
        return ok(req.id, seq=state.seq, intents=intents, orders=orders)

    async def _status(self, conn: Session, req: protocol.Status) -> Reply:
        return ok(req.id, **self.status(), subscribers=self.fanout.count)

    # -- ops that log ------------------------------------------------------------------

    def _now(self) -> int:
        assert self.writer is not None
        return self.writer.now()

    async def _place(self, conn: Session, req: protocol.PlaceIntent) -> Reply:
        event = intake.placed(req.intent, self._now())
        if isinstance(event, Refused):
            return _refused(req.id, event)
        return _answer(req.id, await log_intent(self.writer_loop, event, self.limits), always=True)

    async def _amend(self, conn: Session, req: protocol.AmendIntent) -> Reply:
        event = intake.amended(req, self._now())
        if isinstance(event, Refused):
            return _refused(req.id, event)
        return _answer(req.id, await log_intent(self.writer_loop, event, self.limits))

    async def _cancel(self, conn: Session, req: protocol.CancelIntent) -> Reply:
        event = intake.canceled(req, self._now())
        if isinstance(event, Refused):
            return _refused(req.id, event)
        return _answer(req.id, await log_intent(self.writer_loop, event, self.limits))

    async def _halt(self, conn: Session, req: protocol.Halt) -> Reply:
        assert conn.grant is not None
        try:
            event = TradingHalted(venue_ts=self._now(), reason=req.reason, by=conn.grant.name)
        except EventValidationError as e:
            return fail(req.id, "invalid", str(e), "reason")
        return _answer(req.id, await log_control(self.writer_loop, event))

    async def _resume(self, conn: Session, req: protocol.Resume) -> Reply:
        assert conn.grant is not None
        try:
            event = TradingResumed(venue_ts=self._now(), reason=req.reason, by=conn.grant.name)
        except EventValidationError as e:
            return fail(req.id, "invalid", str(e), "reason")
        return _answer(req.id, await log_control(self.writer_loop, event))



def _refused(rid: protocol.RequestId, r: Refused) -> Reply:
    return fail(rid, r.code, r.message, r.field)


def _answer(rid: protocol.RequestId, outcome: Done | Refused, always: bool = False) -> Reply:
    """`{"seq"}` (with `duplicate`: always for a placement, else only when true)."""
    if isinstance(outcome, Refused):
        return _refused(rid, outcome)
    if always or outcome.duplicate:
        return ok(rid, seq=outcome.seq, duplicate=outcome.duplicate)
    return ok(rid, seq=outcome.seq)
