"""The one tagged union of every event the kernel logs, and its prebuilt codec.

JSON on the wire and in the log: `{"kind": "order_filled", ...}`, Decimals as
strings. Decoding validates types and runs each event's `__post_init__` checks; any
failure is a `msgspec.ValidationError` or `msgspec.DecodeError` whose message names
the field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeAlias

import msgspec

from events.control import (
    InputQuarantined,
    ManualAdjustment,
    TradingHalted,
    TradingResumed,
    VenueConnected,
    VenueDisconnected,
)
from events.facts import (
    BalanceReported,
    FundingSettled,
    InstrumentDefined,
    LeverageSet,
    MarkPriceObserved,
    OrderFilled,
    OrderStatusReported,
    PositionsReported,
    TransferCompleted,
)
from events.orders import (
    AmendOrder,
    CancelOrder,
    CommandAcknowledged,
    CommandOutcomeUnknown,
    CommandRejected,
    IntentAmended,
    IntentCanceled,
    IntentPlaced,
    PlaceOrder,
)

Event: TypeAlias = (
    InstrumentDefined
    | LeverageSet
    | MarkPriceObserved
    | OrderFilled
    | OrderStatusReported
    | BalanceReported
    | PositionsReported
    | FundingSettled
    | TransferCompleted
    | VenueConnected
    | VenueDisconnected
    | IntentPlaced
    | IntentAmended
    | IntentCanceled
    | PlaceOrder
    | AmendOrder
    | CancelOrder
    | CommandAcknowledged
    | CommandRejected
    | CommandOutcomeUnknown
    | TradingHalted
    | TradingResumed
    | ManualAdjustment
    | InputQuarantined
)

EVENT_TYPES: tuple[type[Any], ...] = Event.__args__
KINDS: dict[str, type[Any]] = {t.__struct_config__.tag: t for t in EVENT_TYPES}

_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(Event)


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes | str) -> Event:
    """The event in `data`; raises `msgspec.DecodeError` or `msgspec.ValidationError`."""
    try:
        event: Event = _decoder.decode(data)
    except UnicodeDecodeError as e:  # msgspec lets a bad byte inside a string through
        raise msgspec.DecodeError(f"JSON is not valid UTF-8: {e}") from e
    return event


def identity(event: Event) -> Event:
    """The event without the kernel's receive time: what must match for a redelivery
    to count as a duplicate rather than a conflict."""
    return msgspec.structs.replace(event, recv_ts=0)


def to_builtins(value: object) -> Any:
    """Plain JSON-ready values (Decimals as strings) of any event or kernel struct."""
    return msgspec.to_builtins(value, builtin_types=None, enc_hook=_enc_hook)


def _enc_hook(obj: object) -> object:
    if isinstance(obj, Decimal):
        return str(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")
