"""API requests that change what the kernel wants, logged through the one writer.

Each runs as a writer submission (`WriterLoop.submit`): the dedup-key lookup, the
decision (`kernel.intake.decide`, pure) and the append happen in the writer's task with
nothing folded in between, so two clients placing the same intent id at once get one
`intent_placed` and one duplicate, and a halt logged just before an intent is seen by
its check. The answer comes after the commit.
"""

from __future__ import annotations

from events.codec import decode_logged
from events.control import TradingHalted, TradingResumed
from events.log import EventLog
from kernel.daemon.writer import Writer
from kernel.daemon.writer_loop import WriterLoop
from kernel.errors import InvariantViolation
from kernel.intake import Append, Done, IntentEvent, Prior, Refused, decide
from kernel.risk import RiskConfig


async def prior(log: EventLog, key: str) -> Prior:
    """The logged event holding dedup key `key`, with its seq, if any."""
    found = (await log.lookup([key])).get(key)
    return None if found is None else (found[0], decode_logged(found[1]))


async def log_intent(loop: WriterLoop, event: IntentEvent, limits: RiskConfig | None = None
                     ) -> Done | Refused:
    """Log `event` unless `decide` answers otherwise (`limits`: the pre-trade limits).
    Raises `WriterClosed` (stopping)."""

    async def run(writer: Writer) -> Done | Refused:
        decision = decide(writer.state, event, await prior(writer.log, event.dedup_key),
                          limits)
        if isinstance(decision, Append):
            return await _append(writer, decision.event)
        return decision

    return await loop.submit(run)


async def log_control(loop: WriterLoop, event: TradingHalted | TradingResumed) -> Done:
    """Log a halt or a resume (always admitted)."""

    async def run(writer: Writer) -> Done:
        return await _append(writer, event)

    return await loop.submit(run)


async def _append(writer: Writer, event: TradingHalted | TradingResumed | IntentEvent
                  ) -> Done:
    result = await writer.ingest([event])
    if result.appended == 1 and not (result.conflicts or result.quarantined):
        return Done(result.last_seq, duplicate=False)
    if result.duplicates == 1 and (found := await prior(writer.log, event.dedup_key)):
        return Done(found[0])  # the same event, logged before (a halt in the same ns)
    raise InvariantViolation(
        f"{event.dedup_key} was screened out by the writer after the API's checks let it"
        f" through ({result.conflicts} conflicts, {result.quarantined} quarantined)")
