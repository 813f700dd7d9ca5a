"""The one writer: every event enters the log and the fold through here.

The writer runs with the log's writer lock held (`EventLog.open` takes it before
anything is read), so exactly one process appends and folds.

For each batch: stamp receive times, look the dedup keys up in the log, screen each
event (duplicate: skip and count; same key with another payload: conflict, logged as
`InputQuarantined`; inadmissible against the state: quarantined), fold the rest,
then append them all in one transaction (with a checkpoint every `checkpoint_every`
events). Every event has its state, but only the batch's last is projected into a
snapshot (the reconcile is most of a snapshot's cost), and that one snapshot is
published after the commit (`publish`, once per batch that appended anything). Then
the batch is reported (`committed`, once per `ingest`, whoever called it: the writer
loop with venue facts, or a submission running in the writer's task). If the append
fails, the writer's state is as before the batch, because states are immutable values.

The lookup is skipped while no key has been coming twice (the last batch that appended
had no duplicate and no conflict; never for a life's first batch, which a resync may
redeliver): the log's unique index is then the screen. Should the batch hold a logged
key after all, its append is refused whole (`KeyLogged`), and it is screened again with
a lookup, from the same immutable state. So is a batch in which admission refuses an
event: a logged event is a duplicate before it is inadmissible. Either way the result
is the one a lookup first would have given.

`ingest_all` (a bulk import) overlaps the two halves of a batch's work: batch N+1 is
screened and folded from the state N will have while SQLite commits N (its insert is one
statement, run with the GIL released: events/log/store.py). N+1 is appended only after N
committed, and screened again if N was. The fold holds the GIL, so what runs beside it
is SQLite's own work and the disk's.

A state inside a batch is never reconciled live. Its reconcile is a function of that
state alone, so `project(state)` gives the same snapshot on demand as it would have
eagerly; that is how `exkernel snapshot --at SEQ` and `exkernel tail` show it.
docs/snapshot.md says what is computed when.

Receive times never go back: a stamp is `max(clock(), state.now)`, the newest
`recv_ts` already folded, so a wall clock stepped back cannot date a fact before the
facts it follows (and so past a settling deadline). An `EventClock` (the daemon's)
also keeps advancing with the monotonic clock between stamps; the writer starts it
no earlier than the log's `now`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Sequence

import msgspec

from events.base import key as dedup_key
from events.codec import Event, encode, identity
from events.codec import decode_logged as decode
from events.control import InputQuarantined, quarantine
from events.facts import FundingSettled
from events.log import EventLog
from kernel import money
from kernel.admit import admit
from kernel.daemon.clock import EventClock
from kernel.daemon.replay import encode_state, load_state
from kernel.errors import KeyLogged
from kernel.reconcile import ReconcileConfig
from kernel.snapshot import AccountSnapshotV2, project
from kernel.state import AccountState, Draft, settled

Clock = Callable[[], int]
#: How long `send` waits at most for SQLite's thread to take a batch's rows: long
#: enough for a thread to wake on a busy machine, short beside the fold of a batch.
_HAND_OFF_S = 0.002
Publish = Callable[[AccountSnapshotV2], None]
Committed = Callable[["BatchResult"], None]


class BatchResult(msgspec.Struct, kw_only=True):
    #: Events handed to `ingest` (before dedup and screening).
    received: int = 0
    appended: int = 0
    duplicates: int = 0
    conflicts: int = 0
    quarantined: int = 0
    last_seq: int = 0
    #: Seconds spent screening, folding and projecting (no I/O), and committing.
    fold_seconds: float = 0.0
    commit_seconds: float = 0.0
    #: The events appended, in log order (a conflict or an inadmissible event as the
    #: quarantine that replaced it); the batch's snapshot follows the last.
    events: list[Event] = []
    #: Their dedup keys, in the same order.
    keys: list[str] = []

    def add(self, other: BatchResult) -> None:
        self.received += other.received
        self.appended += other.appended
        self.duplicates += other.duplicates
        self.conflicts += other.conflicts
        self.quarantined += other.quarantined
        self.last_seq = other.last_seq
        self.fold_seconds += other.fold_seconds
        self.commit_seconds += other.commit_seconds


class Writer:
    def __init__(
        self,
        log: EventLog,
        state: AccountState,
        *,
        reconcile: ReconcileConfig,
        clock: Clock,
        checkpoint_every: int,
        last_checkpoint: int,
        publish: Publish | None = None,
        committed: Committed | None = None,
    ) -> None:
        self.log = log
        self.reconcile_config = reconcile
        self._clock = clock
        self._checkpoint_every = checkpoint_every
        self._publish = publish
        self._committed = committed
        #: What the next batch is screened from, as of the last commit. Not `unlooked`
        #: at first: a restart's resync redelivers.
        self._head = _Head(state, project(state, reconcile), False, last_checkpoint)
        #: The batch `send` left committing, with what it was screened as.
        self._flight: tuple[asyncio.Task[BatchResult], _Screened] | None = None

    @property
    def state(self) -> AccountState:
        """The state after the last committed event."""
        return self._head.state

    @property
    def snapshot(self) -> AccountSnapshotV2:
        """The last published snapshot (of `state`)."""
        return self._head.snapshot

    @property
    def _unlooked(self) -> bool:
        """Whether the next batch may skip the lookup of its keys: no key came twice in
        the last batch that appended."""
        return self._head.unlooked

    def now(self) -> int:
        """The receive time the writer would stamp now (ns): its clock, never before the
        state's `now`. Events the kernel originates (intents, halts) take it as their
        `venue_ts`, so they are dated on the kernel's own clock."""
        return max(self._clock(), self.state.now)

    @classmethod
    async def open(
        cls,
        log: EventLog,
        *,
        clock: Clock,
        reconcile: ReconcileConfig | None = None,
        checkpoint_every: int = 10_000,
        publish: Publish | None = None,
        committed: Committed | None = None,
    ) -> Writer:
        """Replay the log (newest sound checkpoint + tail) and stand ready to append.
        `log` must be open for writing (it then holds the writer lock). `clock` reads
        ns since the epoch; pass an `EventClock` for stamps that advance monotonically
        across wall-clock steps (a plain callable gets only the `state.now` floor).
        `publish` gets each batch's snapshot (of its last event) after the batch is
        committed; `committed` gets each `ingest`'s result after that (both are plain
        calls in the writer's task: they must not block)."""
        money.require()
        state = await load_state(log)
        if isinstance(clock, EventClock):
            clock.not_before(state.now)
        return cls(
            log,
            state,
            reconcile=reconcile or ReconcileConfig(),
            clock=clock,
            checkpoint_every=checkpoint_every,
            # The newest stored checkpoint, even one replay passed over: the next one
            # must have a later seq (checkpoints are append-only, one per seq).
            last_checkpoint=await log.last_checkpoint_seq(),
            publish=publish,
            committed=committed,
        )

    async def ingest(self, events: Sequence[Event]) -> BatchResult:
        """Log and fold one batch, all or nothing. Raises `LogError` if the log failed.
        The fold runs in a private copy of the kernel's decimal context (`money.context`).
        A batch `send` left committing commits first."""
        await self.flush()
        with money.context():
            return await self._commit(await self._prepare(events, self._head))

    async def send(self, events: Sequence[Event], *, hand_off: bool = True
                   ) -> BatchResult | None:
        """Start logging one batch as `ingest` would, beside the batch sent before it:
        screened and folded from the state that one will have while SQLite commits it,
        appended once it has committed (and screened again if it was). Returns the
        result of the batch before (None if there was none); this one's comes from the
        next `send` or from `flush`, and it is published and reported (`publish`,
        `committed`) as it commits.

        Call `flush` before reading `state` for a decision, before `checkpoint`, and
        before waiting on anything but the writer (a failed commit is raised only when
        awaited). With `hand_off` (when more is to be folded at once), wait until
        SQLite's thread has taken the rows (≤ `_HAND_OFF_S`), releasing the GIL it needs
        to take them. Raises the `LogError` of the batch before; a cancel cancels the
        commit it waits for (`flush` cancels this one's: `abandon`)."""
        with money.context():
            flight = self._flight
            screened = await self._prepare(
                events, self._head if flight is None else flight[1].after)
            done = None
            if flight is not None:
                self._flight = None
                done = await flight[0]
            if screened.base.state is not self.state:
                # The batch before was screened again (a key logged after all): this one
                # was screened from a state that never was.
                screened = await self._prepare(events, self._head)
            handed = threading.Event()
            # The task copies the decimal context: a batch screened again folds in it.
            self._flight = (asyncio.get_running_loop().create_task(
                self._commit(screened, handed)), screened)
        if hand_off:
            await asyncio.sleep(0)  # the commit hands its rows to SQLite's thread
            # ...which needs the GIL to take them: wait (releasing it) until it has, or
            # it would wait out the switch interval while the next batch folds.
            handed.wait(_HAND_OFF_S)
        return done

    async def flush(self) -> BatchResult | None:
        """Wait until the batch `send` left committing has; its result (None if none).
        Raises its `LogError`."""
        flight, self._flight = self._flight, None
        return None if flight is None else await flight[0]

    async def abandon(self) -> None:
        """Cancel the commit of the batch `send` left committing, if any, and wait for
        it to end: torn, as a canceled `ingest` (for a task being canceled itself)."""
        flight, self._flight = self._flight, None
        if flight is not None:
            flight[0].cancel()
            await asyncio.gather(flight[0], return_exceptions=True)

    async def ingest_all(self, batches: Iterable[Sequence[Event]]) -> BatchResult:
        """Log and fold `batches` in order, each as `ingest` would (one transaction, its
        snapshot published after its commit), while SQLite commits a batch the next one
        is screened and folded, from the state the first will have (`send`). Returns
        their results added up.

        A `LogError` stops it: the batches before the failed one are committed, the
        rest are not. An exception from `batches` itself is raised once the batch
        before it is committed; a cancel cancels the commit in flight, as it would an
        `ingest`'s."""
        await self.flush()
        total = BatchResult(last_seq=self.state.seq)
        try:
            for events in batches:
                done = await self.send(events)
                if done is not None:
                    total.add(done)
        except Exception:
            await self.flush()  # what came before is committed (or its error wins)
            raise
        except BaseException:
            await self.abandon()
            raise
        done = await self.flush()
        if done is not None:
            total.add(done)
        return total

    async def _prepare(self, events: Sequence[Event], base: _Head) -> _Screened:
        """Stamp, look up (unless `base` says no key came twice), screen and fold `events`
        from `base`: the batch as it will be appended."""
        now = max(self._clock(), base.state.now)
        stamped = [e if e.recv_ts else msgspec.structs.replace(e, recv_ts=now) for e in events]
        started = time.perf_counter()
        keys = [e.dedup_key for e in stamped]
        if base.unlooked:
            # No key came twice in the last batch: append without looking the keys up,
            # and let the log's UNIQUE index refuse the batch if one is logged after all.
            # (A funding payment's legacy key is in no row's index: those are looked up,
            # on a connection of their own, not behind the commit of a batch in flight.)
            legacy = _legacy_funding_keys(stamped)
            try:
                legacy_logged = await self.log.lookup_old(legacy) if legacy else {}
                return await self._screen(stamped, keys, legacy_logged, False, started, base)
            except _LookUp:
                pass
        return await self._screen_looked_up(stamped, keys, started, base)

    async def _screen_looked_up(self, stamped: list[Event], keys: list[str], started: float,
                                base: _Head) -> _Screened:
        """`_screen` after a lookup of every key of the batch (and the legacy keys)."""
        logged = await self.log.lookup([*keys, *_legacy_funding_keys(stamped)])
        return await self._screen(stamped, keys, logged, True, started, base)

    async def _screen(self, stamped: list[Event], keys: list[str],
                      logged: dict[str, tuple[int, bytes]], looked_up: bool,
                      started: float, base: _Head) -> _Screened:
        """Screen and fold `stamped` (`keys` their dedup keys) from `base`, of which
        `logged` holds those the log has already. Not `looked_up`, `logged` holds only
        funding payments' legacy keys; then an event judged by what the log holds
        raises `_LookUp` (one admission refuses: logged already, it is a duplicate, not
        a quarantine), and one whose key is logged makes the append raise `KeyLogged`."""
        seen: dict[str, tuple[int, Event]] = {}
        result = BatchResult(received=len(stamped))
        # The batch folds into a draft of the state: `base.state` is untouched, and a
        # batch screened again starts from it afresh.
        draft = Draft(base.state)
        accepted: list[Event] = []
        accepted_keys: list[str] = []
        for ev, key in zip(stamped, keys, strict=True):
            # The common case, a new key, needs no lookup beyond the batch's first one.
            prior = await self._prior(key, seen, logged) if key in seen or key in logged else None
            if prior is None and isinstance(ev, FundingSettled) and _logged_before_its_key(
                    ev, logged.get(_legacy_funding_key(ev))):
                result.duplicates += 1
                continue
            if prior is not None:
                # A quarantine's key is its raw payload's hash: same key, same input.
                if isinstance(ev, InputQuarantined) or identity(prior[1]) == identity(ev):
                    result.duplicates += 1
                    continue
                result.conflicts += 1
                ev = quarantine(
                    encode(identity(ev)),
                    source="dedup",
                    reason=f"conflict: dedup key {key!r} is logged at seq {prior[0]}"
                    " with a different payload",
                    venue_ts=ev.venue_ts,
                    recv_ts=ev.recv_ts,
                )
                key = ev.dedup_key
                if await self._prior(key, seen, logged) is not None:
                    continue  # this very conflict was recorded before
            reason = admit(draft, ev)
            if reason is not None:
                if not looked_up:
                    raise _LookUp
                ev = quarantine(encode(identity(ev)), source="admission", reason=reason,
                                venue_ts=ev.venue_ts, recv_ts=ev.recv_ts)
                key = ev.dedup_key
                if await self._prior(key, seen, logged) is not None:
                    result.duplicates += 1
                    continue
            if isinstance(ev, InputQuarantined) and ev.source != "dedup":
                result.quarantined += 1
            # K's valuations are computed once, for the batch's last state (`settled`).
            draft.fold(ev, draft.seq + 1, key)
            seen[key] = (draft.seq, ev)
            accepted.append(ev)
            accepted_keys.append(key)
        result.last_seq = draft.seq
        result.events, result.keys = accepted, accepted_keys
        if not accepted:
            result.fold_seconds = time.perf_counter() - started
            return _Screened(base, base, stamped, keys, looked_up, result, None)
        state = settled(draft.state())
        snap = project(state, self.reconcile_config, base.snapshot)
        result.fold_seconds = time.perf_counter() - started
        checkpoint = None
        if state.seq - base.last_checkpoint >= self._checkpoint_every:
            checkpoint = (state.seq, encode_state(state))
        after = _Head(state, snap, not result.duplicates and not result.conflicts,
                      base.last_checkpoint if checkpoint is None else state.seq)
        return _Screened(base, after, stamped, keys, looked_up, result, checkpoint)

    async def _commit(self, screened: _Screened,
                      handed: threading.Event | None = None) -> BatchResult:
        """Append a screened batch and make its state the writer's; then publish and
        report it. A batch screened without a lookup whose append is refused for a
        logged key is screened again with one, from the same state, and appended.
        `handed` as for `EventLog.append` (set at once if there is nothing to append)."""
        result = screened.result
        if not result.events:
            if handed is not None:
                handed.set()
        else:
            started = time.perf_counter()
            try:
                await self.log.append(result.events, screened.checkpoint, result.keys,
                                      handed)
            except KeyLogged:
                if screened.looked_up:
                    raise
                return await self._commit(await self._screen_looked_up(
                    screened.stamped, screened.keys, time.perf_counter(), screened.base))
            result.commit_seconds = time.perf_counter() - started
            self._head = screened.after
            result.appended = len(result.events)
            if self._publish is not None:
                self._publish(self._head.snapshot)
        if self._committed is not None:
            self._committed(result)
        return result

    async def checkpoint(self) -> bool:
        """Checkpoint the current state unless the last checkpoint already holds it
        (after the batch `send` left committing)."""
        await self.flush()
        head = self._head
        if head.state.seq <= head.last_checkpoint:
            return False
        await self.log.checkpoint(head.state.seq, encode_state(head.state))
        now = self._head
        self._head = _Head(now.state, now.snapshot, now.unlooked, head.state.seq)
        return True

    async def _prior(
        self,
        key: str,
        seen: dict[str, tuple[int, Event]],
        logged: dict[str, tuple[int, bytes]],
    ) -> tuple[int, Event] | None:
        """The event already holding `key`, in this batch or in the log, with its seq."""
        if key in seen:
            return seen[key]
        if key not in logged:
            found = await self.log.lookup([key]) if key.startswith("quarantine:") else {}
            if key not in found:
                return None
            logged[key] = found[key]
        seq, payload = logged[key]
        return seq, decode(payload)


class _Head:
    """What the writer screens a batch from: the state and snapshot after the last batch
    (committed, or in flight), whether the next may skip the lookup of its keys, and
    the seq of the newest checkpoint."""

    __slots__ = ("last_checkpoint", "snapshot", "state", "unlooked")

    def __init__(self, state: AccountState, snapshot: AccountSnapshotV2, unlooked: bool,
                 last_checkpoint: int) -> None:
        self.state = state
        self.snapshot = snapshot
        self.unlooked = unlooked
        self.last_checkpoint = last_checkpoint


class _Screened:
    """A batch screened and folded from `base`, not yet appended: `result.events` (and
    `keys`) are what its append logs, `after` the writer once it has, `checkpoint` the
    state to store with it (every `checkpoint_every` events)."""

    __slots__ = ("after", "base", "checkpoint", "keys", "looked_up", "result", "stamped")

    def __init__(self, base: _Head, after: _Head, stamped: list[Event], keys: list[str],
                 looked_up: bool, result: BatchResult,
                 checkpoint: tuple[int, bytes] | None) -> None:
        self.base = base
        self.after = after
        self.stamped = stamped
        self.keys = keys
        self.looked_up = looked_up
        self.result = result
        self.checkpoint = checkpoint


class _LookUp(Exception):
    """A batch screened without a lookup needs one after all (`Writer._screen`)."""


def _legacy_funding_keys(events: Iterable[Event]) -> list[str]:
    return [_legacy_funding_key(e) for e in events if isinstance(e, FundingSettled)]


def _legacy_funding_key(ev: FundingSettled) -> str:
    """How logs written before `position_side` and `funding_id` existed keyed a funding
    payment: symbol and time only."""
    return dedup_key("funding", ev.symbol, ev.venue_ts)


def _logged_before_its_key(ev: FundingSettled, logged: tuple[int, bytes] | None) -> bool:
    """A payment an older version of the kernel logged under its legacy key: the same
    symbol, time, asset and amount. (Its new key differs, so the UNIQUE key cannot see
    the repeat; without this a resync after the upgrade would book it twice.)"""
    if logged is None:
        return False
    old = decode(logged[1])
    return (isinstance(old, FundingSettled) and old.symbol == ev.symbol
            and old.venue_ts == ev.venue_ts and old.asset == ev.asset
            and old.amount == ev.amount)
