"""Rebuilding fold state from the log: the newest sound checkpoint, then the tail.

Startup is replay, and crash recovery is startup. Checkpoints hold the msgpack
encoding of `AccountState`; decoding one and folding on gives the very state (and
bytes) a full replay from genesis gives.

A checkpoint is trusted only if its bytes still hash to the `state_hash` stored with
them, decode, and hold the state after its own seq. One that fails (a flipped bit on
disk, a hand edit, a checkpoint of a version-1 log, which has no hash) is passed
over with a warning naming its seq and the cause, and the next older one is tried,
then genesis: a slower start, never a wrong one. Events are never passed over: an
event that does not decode stops replay with `CorruptLogError`.
"""

from __future__ import annotations

import msgspec
import structlog

from events.codec import decode_logged as decode
from events.log import Checkpoint, EventLog, state_hash
from kernel import money
from kernel.errors import CorruptLogError
from kernel.state import GENESIS, AccountState, Draft, settled

_encoder = msgspec.msgpack.Encoder(decimal_format="string")
_decoder = msgspec.msgpack.Decoder(AccountState)
_log = structlog.get_logger("exkernel.replay")


def encode_state(state: AccountState) -> bytes:
    return _encoder.encode(state)


def decode_state(data: bytes) -> AccountState:
    return _decoder.decode(data)


def checkpoint_fault(cp: Checkpoint) -> str | AccountState:
    """Why `cp` cannot be trusted, or the state it holds."""
    if cp.state_hash is None:
        return "no state hash (written by schema version 1)"
    if state_hash(cp.state) != cp.state_hash:
        return "state hash mismatch: the stored state bytes changed after they were written"
    try:
        state = decode_state(cp.state)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return "state does not decode"
    if state.seq != cp.seq:
        return f"state is the state after seq {state.seq}"
    return state


async def start_state(log: EventLog, until: int | None = None) -> AccountState:
    """The state of the newest sound checkpoint at or before `until`, else genesis."""
    at_most = until
    while (cp := await log.latest_checkpoint(at_most)) is not None:
        found = checkpoint_fault(cp)
        if isinstance(found, AccountState):
            return found
        if cp.state_hash is None:
            # Checkpoints only grow newer, so every older one is unhashed as well.
            _log.warning("checkpoint not used", seq=cp.seq, cause=found, fallback="genesis",
                         db=str(log.path))
            return GENESIS
        _log.warning("checkpoint not used", seq=cp.seq, cause=found,
                     fallback="the next older checkpoint, else genesis", db=str(log.path))
        at_most = cp.seq - 1
    return GENESIS


async def load_state(
    log: EventLog, until: int | None = None, *, use_checkpoints: bool = True
) -> AccountState:
    """The state after event `until` (default: the last), from the newest sound
    checkpoint at or before it, or from genesis when `use_checkpoints` is false.
    Raises `CorruptLogError` if an event does not decode."""
    money.require()
    with money.context():  # whatever another library did to the current context
        return await _load(log, until, use_checkpoints)


async def _load(log: EventLog, until: int | None, use_checkpoints: bool) -> AccountState:
    state = await start_state(log, until) if use_checkpoints else GENESIS
    draft = Draft(state)  # one draft for the whole tail: the same state, fewer copies
    async for chunk in log.payloads(since=state.seq, until=until):
        for seq, payload, key in chunk:
            try:
                event = decode(payload)
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                raise CorruptLogError(f"event at seq {seq} does not decode: {e}", seq=seq) from e
            draft.fold(event, seq, key)
    return settled(draft.state())  # K's valuations once, not per event: the same state
