"""The intent reconciler's task: diff the committed state, log each command, send it, log
its outcome. The decisions are `kernel.diff.diff` (pure); this module only waits, logs,
sends and times out.

One pass, run whenever a snapshot is published (and every `tick_s` regardless):

1. `diff(state)` over the state the writer last committed.
2. Write-ahead: the commands of the actions that are due are committed through the one
   writer (`commit`) *before* anything is sent. The next pass diffs a state that holds
   them, so no action is repeated, and after a crash the log says what may have been sent.
3. Each command goes to the adapter under a timeout; its answer is committed. A timeout
   or a lost connection is `command_outcome_unknown`, never a failure: only the venue can
   say what happened, and a query by client order id will ask it.
4. Queries (`Query` actions) ask the venue for one client order id, with jittered backoff
   per intent; the answer is committed as `order_status_reported` or `order_not_found`.

The kill switch (`kernel.killswitch`) reads every published snapshot and each outcome;
on a trigger the pass commits `trading_halted`, and the diff cancels working orders.
Orders are sent at most `orders_per_s` (a token bucket); a command over budget waits.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Annotated, Any

import msgspec
import structlog

from adapters.base import Outcome, Venue
from events.codec import Event
from events.control import TradingHalted
from events.facts import OrderNotFound
from events.orders import (
    AmendOrder,
    CancelOrder,
    CommandAcknowledged,
    CommandOutcomeUnknown,
    CommandRejected,
    PlaceOrder,
)
from kernel.backoff import backoff
from kernel.daemon.supervise import FATAL
from kernel.diff import Action, Cancel, DiffConfig, Fail, Query, command_event, diff
from kernel.errors import KernelError
from kernel.killswitch import KillSwitch, KillSwitchConfig
from kernel.snapshot import AccountSnapshotV2
from kernel.state import AccountState

Commit = Callable[[Sequence[Event]], Awaitable[Any]]


class ReconcilerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    #: Pass at least this often, snapshot or not (outcomes to query, windows to close).
    tick_s: Annotated[float, msgspec.Meta(gt=0)] = 0.5
    #: A venue call that takes longer is an unknown outcome.
    command_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    orders_per_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    burst: Annotated[int, msgspec.Meta(ge=1)] = 20
    #: Orders on the venue with this instance's prefix but no intent in the log (a log
    #: lost to a power cut under synchronous = NORMAL): cancel them, or only report them.
    cancel_unknown: bool = False
    diff: DiffConfig = DiffConfig()
    kill_switch: KillSwitchConfig = KillSwitchConfig()


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; `take` waits for one."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens, self._at = float(burst), clock()

    async def take(self) -> None:
        while True:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) / self.rate)


class Reconciler:
    def __init__(self, venue: Venue, cfg: ReconcilerConfig, *,
                 state: Callable[[], AccountState | None], commit: Commit,
                 connected: Callable[[], bool] = lambda: True,
                 clock: Callable[[], int] = time.time_ns,
                 log: Any = None, rng: random.Random | None = None) -> None:
        self.venue = venue
        self.cfg = cfg
        self._state = state
        self._commit = commit
        self._clock = clock
        self.log = log or structlog.get_logger("exkernel")
        self._rng = rng or random.Random()
        self.wake = asyncio.Event()
        self.kill = KillSwitch(cfg.kill_switch)
        self._halt: str | None = None
        self._bucket = TokenBucket(cfg.orders_per_s, cfg.burst)
        #: Per intent: when its next query (or retried cancel) may go, and the delays.
        self._retry: dict[str, tuple[float, Iterator[float], str]] = {}
        self.passes = 0
        self._connected = connected
        self._was_connected = False
        #: The (book, halted) of the last pass whose diff was empty.
        self._idle: tuple[object, bool] | None = None

    # -- what the daemon calls ----------------------------------------------------------

    def published(self, snap: AccountSnapshotV2) -> None:
        """After each published snapshot (one per committed batch): feed the kill switch,
        wake the pass."""
        if self._halt is None and (reason := self.kill.snapshot(snap)) is not None:
            self._halt = reason
        self.wake.set()

    async def run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a cancel that
            # lands as the wait ends (the wake is set on every snapshot), and the daemon's
            # stop would then wait for this task forever.
            ticked = False
            try:
                async with asyncio.timeout(self.cfg.tick_s):
                    await self.wake.wait()
            except TimeoutError:
                ticked = True
            self.wake.clear()
            try:
                await self.step(ticked=ticked)
            except KernelError:
                raise
            except Exception:  # a task boundary: log, and try again on the next pass
                self.log.warning("reconciler pass failed", exc_info=True)

    # -- one pass -------------------------------------------------------------------------

    async def step(self, *, ticked: bool = True) -> None:
        """One pass. A pass woken by a snapshot whose intents and halt are the very
        objects an earlier pass found nothing to do for is skipped: a mark changes
        nothing the diff reads (what time alone changes, the `tick_s` pass sees)."""
        state = self._state()
        if state is None:
            return
        if not self._connected():
            self._was_connected = False
            return  # commands wait for the venue; sending now would only time out
        if not self._was_connected:
            self._was_connected = True
            await self._adopt(state)
            state = self._state() or state
        idle = (state.book, state.halted)
        if not ticked and self._idle is not None and self._idle[0] is idle[0] \
                and self._idle[1] == idle[1] and self._halt is None:
            return
        self.passes += 1
        if self._halt is not None:
            reason, self._halt = self._halt, None
            if not state.halted:
                self.log.warning("kill switch: halting trading", reason=reason)
                await self._commit([TradingHalted(venue_ts=self._clock(), reason=reason,
                                                  by="kernel")])
                return  # the next pass diffs the halted state: it cancels working orders
        found = diff(state, self.cfg.diff)
        self._idle = idle if not found else None
        actions = [a for a in found if self._due(a)]
        if not actions:
            return
        now = self._clock()
        logged = [(a, command_event(state, a, now)) for a in actions
                  if not isinstance(a, Query)]
        if logged:
            await self._commit([e for _, e in logged])  # write-ahead: before any send
        for a, _ in logged:
            if isinstance(a, Fail):
                self.log.warning("place failed", intent_id=a.intent_id, reason=a.reason)
        sends = [e for a, e in logged if not isinstance(a, Fail)]
        results = await asyncio.gather(*(self._send(e) for e in sends),  # type: ignore[arg-type]
                                       *(self._query(state, a) for a in actions
                                         if isinstance(a, Query)))
        answers = [r for r in results if r is not None]
        if answers:
            await self._commit(answers)

    async def _adopt(self, state: AccountState) -> None:
        """After every (re)connect: ask the venue for each working order of the log (one
        that filled or was canceled while the kernel was away is not among the open
        orders), and look at the venue's open orders for ones the log does not know."""
        prefix = f"{self.cfg.diff.prefix}-"
        # A command in flight here was sent (or not) by an earlier life of the daemon,
        # which died before logging the answer: only the venue can say what happened.
        unknown = [
            CommandOutcomeUnknown(venue_ts=self._clock(), command_id=o.in_flight.command_id,
                                  reason="no answer was logged before the daemon stopped")
            for _, o in sorted(state.book.orders.items())
            if o.in_flight is not None and not o.in_flight.unknown]
        if unknown:
            self.log.warning("commands without a logged answer; asking the venue",
                             commands=[e.command_id for e in unknown])
            await self._commit(unknown)
            state = self._state() or state
        answers: list[Event] = []
        for intent_id, order in sorted(state.book.orders.items()):
            if order.client_order_id is None or order.status in ("FAILED", "COMPLETED",
                                                                 "CANCELED", "PENDING"):
                continue
            found = await self._query(state, Query(intent_id=intent_id,
                                                   client_order_id=order.client_order_id,
                                                   reason="reconnected: what happened to it"))
            if found is not None:
                answers.append(found)
        try:
            open_orders = await self.venue.open_orders()
        except FATAL:  # no retry fixes these: the daemon stops (kernel.daemon.supervise)
            raise
        except Exception as e:
            self.log.warning("open orders unavailable; not checked for unknown orders",
                             error=f"{type(e).__name__}: {e}")
            open_orders = []
        for o in open_orders:
            cid = o.client_order_id or ""
            if cid in state.book.by_client:
                continue
            if cid.startswith(prefix):
                self.log.warning("venue order with this instance's prefix has no intent in"
                                 " the log", client_order_id=cid, symbol=o.symbol,
                                 order_id=o.order_id, cancel=self.cfg.cancel_unknown)
                if self.cfg.cancel_unknown:
                    await self._send(CancelOrder(
                        venue_ts=self._clock(), command_id=f"{cid}:cancel:unknown",
                        intent_id=f"unknown:{cid}", client_order_id=cid, symbol=o.symbol))
            else:
                self.log.info("foreign order left alone", client_order_id=o.client_order_id,
                              symbol=o.symbol, order_id=o.order_id)
        if answers:
            await self._commit(answers)

    def _due(self, a: Action) -> bool:
        """Queries, and cancels after the first, of one intent wait out a jittered
        backoff: a venue that cannot find an order is asked again, not hammered."""
        retry = isinstance(a, Query) or (isinstance(a, Cancel)
                                         and not a.command_id.endswith(":cancel:1"))
        if not retry:
            return True
        key = f"{type(a).__name__}:{getattr(a, 'client_order_id', '')}"
        entry = self._retry.get(a.intent_id)
        now = time.monotonic()
        if entry is None or entry[2] != key:
            delays = backoff(initial=0.2, max_delay=10.0, rng=self._rng)
            self._retry[a.intent_id] = (now + next(delays), delays, key)
            return True
        at, delays, _ = entry
        if now < at:
            return False
        self._retry[a.intent_id] = (now + next(delays), delays, key)
        return True

    async def _send(self, cmd: PlaceOrder | AmendOrder | CancelOrder) -> Event:
        await self._bucket.take()
        call = {PlaceOrder: self.venue.place, AmendOrder: self.venue.amend,
                CancelOrder: self.venue.cancel}[type(cmd)]
        try:
            async with asyncio.timeout(self.cfg.command_timeout_s):
                out: Outcome = await call(cmd)  # type: ignore[operator]
        except TimeoutError:
            out = CommandOutcomeUnknown(venue_ts=self._clock(), command_id=cmd.command_id,
                                        reason=f"no answer within {self.cfg.command_timeout_s} s")
        except FATAL:  # no retry fixes these: the daemon stops (kernel.daemon.supervise)
            raise
        except Exception as e:  # the connection dropped mid-call: the venue may have acted
            out = CommandOutcomeUnknown(venue_ts=self._clock(), command_id=cmd.command_id,
                                        reason=f"{type(e).__name__}: {e}"[:200])
        bad = isinstance(out, CommandRejected | CommandOutcomeUnknown)
        if isinstance(out, CommandAcknowledged):
            self._retry.pop(cmd.intent_id, None)
        if (reason := self.kill.outcome(self._clock(), bad)) is not None and self._halt is None:
            self._halt = reason
        self.log.info("command", kind=type(cmd).__struct_config__.tag,
                      command_id=cmd.command_id, intent_id=cmd.intent_id,
                      outcome=type(out).__struct_config__.tag,
                      reason=getattr(out, "reason", None), code=getattr(out, "code", None))
        return out

    async def _query(self, state: AccountState, q: Query) -> Event | None:
        symbol = state.book.intents[q.intent_id].symbol
        try:
            async with asyncio.timeout(self.cfg.command_timeout_s):
                found = await self.venue.order(symbol, q.client_order_id)
        except FATAL:  # no retry fixes these: the daemon stops (kernel.daemon.supervise)
            raise
        except Exception as e:
            self.log.info("order query failed; will retry", intent_id=q.intent_id,
                          client_order_id=q.client_order_id, error=f"{type(e).__name__}: {e}")
            return None
        self.log.info("order queried", intent_id=q.intent_id, reason=q.reason,
                      client_order_id=q.client_order_id,
                      found=None if found is None else found.status)
        if found is None:
            return OrderNotFound(venue_ts=self._clock(), symbol=symbol,
                                 client_order_id=q.client_order_id)
        return found
