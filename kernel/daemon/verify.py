"""`verify`: does the log agree with itself?

Checks, row by row: the sequence has no gaps, the hash chain holds, every payload
decodes and matches its row's kind, dedup key and times, the fold accepts it, and at
every checkpoint the stored state still hashes to its `state_hash` (schema 2), the
replayed state encodes to the very bytes stored, and the checkpoint's chain hash is its
row's. Stops at the first fault and names its row.
"""

from __future__ import annotations

import contextlib

import msgspec

from events.codec import Event
from events.codec import decode_logged as decode
from events.log import GENESIS_HASH, EventLog, Row, chain, state_hash
from kernel import money
from kernel.daemon.replay import encode_state
from kernel.errors import KernelError
from kernel.state import GENESIS, fold


class Fault(msgspec.Struct, frozen=True):
    seq: int
    message: str


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    events: int
    checkpoints: int
    fault: Fault | None


async def verify(log: EventLog) -> VerifyReport:
    money.require()
    with money.context():  # a private copy: nothing else can change its rounding
        return await _verify(log)


async def _verify(log: EventLog) -> VerifyReport:
    checkpoints = {cp.seq: cp for cp in await log.checkpoints()}
    state = GENESIS
    prev = GENESIS_HASH
    expected = 1
    checked = 0

    def report(fault: Fault | None) -> VerifyReport:
        return VerifyReport(events=expected - 1, checkpoints=checked, fault=fault)

    async with contextlib.aclosing(log.rows()) as rows:
        async for row in rows:
            checked_row = _check_row(row, expected, prev)
            if isinstance(checked_row, Fault):
                return report(checked_row)
            event = checked_row
            prev = row.hash
            try:
                state = fold(state, event, row.seq, row.dedup_key)
            except (KernelError, ArithmeticError) as e:
                return report(Fault(row.seq, f"fold failed: {e}"))
            cp = checkpoints.get(row.seq)
            if cp is not None:
                if cp.hash != row.hash:
                    return report(Fault(row.seq, "checkpoint hash differs from its row's hash"))
                if cp.state_hash is not None and state_hash(cp.state) != cp.state_hash:
                    return report(Fault(row.seq, "checkpoint state hash mismatch: its state"
                                                 " bytes changed after they were written"))
                if cp.state != encode_state(state):
                    return report(Fault(row.seq,
                                        "checkpoint state differs from the replayed state"))
                checked += 1
            expected += 1
    stray = sorted(s for s in checkpoints if s >= expected)
    if stray:
        return report(Fault(stray[0], "checkpoint past the last event"))
    return report(None)


def _check_row(row: Row, expected: int, prev: bytes) -> Fault | Event:
    """The fault in one row's own columns, or the event it holds."""
    if row.seq != expected:
        return Fault(expected, f"sequence gap: row {expected} is missing (next is {row.seq})")
    if not isinstance(row.payload, bytes) or not isinstance(row.hash, bytes):
        return Fault(row.seq, "payload or hash is not stored as a BLOB")
    if chain(prev, row.seq, row.payload) != row.hash:
        return Fault(row.seq, "hash chain broken: stored hash does not match payload")
    try:
        event = decode(row.payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        return Fault(row.seq, f"payload does not decode: {e}")
    columns = (row.kind, row.dedup_key, row.venue_ts, row.recv_ts)
    decoded = (type(event).__struct_config__.tag, event.dedup_key, event.venue_ts,
               event.recv_ts)
    if columns != decoded:
        return Fault(row.seq, f"row columns {columns} disagree with payload {decoded}")
    return event
