"""Rebuilding fold state from the log: the newest checkpoint, then the tail.

Startup is replay, and crash recovery is startup. Checkpoints hold the msgpack
encoding of `AccountState`; decoding one and folding on gives the very state (and
bytes) a full replay from genesis gives.
"""

from __future__ import annotations

import msgspec

from events.codec import decode_logged as decode
from events.log import EventLog
from kernel import money
from kernel.errors import CorruptLogError
from kernel.state import GENESIS, AccountState, fold

_encoder = msgspec.msgpack.Encoder(decimal_format="string")
_decoder = msgspec.msgpack.Decoder(AccountState)


def encode_state(state: AccountState) -> bytes:
    return _encoder.encode(state)


def decode_state(data: bytes) -> AccountState:
    return _decoder.decode(data)


async def load_state(
    log: EventLog, until: int | None = None, *, use_checkpoints: bool = True
) -> AccountState:
    """The state after event `until` (default: the last), from the newest checkpoint at or
    before it, or from genesis when `use_checkpoints` is false."""
    money.require()
    state = GENESIS
    if use_checkpoints:
        cp = await log.latest_checkpoint(until)
        if cp is not None:
            try:
                state = decode_state(cp.state)
            except msgspec.DecodeError as e:
                raise CorruptLogError(f"checkpoint at seq {cp.seq} does not decode: {e}",
                                      seq=cp.seq) from e
    async for chunk in log.payloads(since=state.seq, until=until):
        for seq, payload, key in chunk:
            try:
                event = decode(payload)
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                raise CorruptLogError(f"event at seq {seq} does not decode: {e}", seq=seq) from e
            state = fold(state, event, seq, key)
    return state
