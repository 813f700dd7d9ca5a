"""The one tagged union of every event the kernel logs, and its prebuilt codec.

JSON on the wire and in the log: `{"kind": "order_filled", ...}`, Decimals as
strings. `decode` is for input from outside (`exkernel ingest`, the API): it validates
types, runs each event's `__post_init__` checks, and refuses what a lenient parser would
quietly normalise (a key given twice, a decimal written `"1_000"`, `" 1"` or in
non-ASCII digits). `decode_logged` reads the log's own bytes, which `encode` wrote.
Every failure is a `msgspec.ValidationError` or `msgspec.DecodeError` whose message
names the field.
"""

from __future__ import annotations

import json
import re
import typing
from decimal import Decimal
from typing import Any, TypeAlias

import msgspec

from events.control import (
    InputQuarantined,
    ManualAdjustment,
    ResyncCompleted,
    TradingHalted,
    TradingResumed,
    VenueConnected,
    VenueDisconnected,
)
from events.facts import (
    AssetDefined,
    BalanceReported,
    FundingSettled,
    InstrumentDefined,
    LeverageSet,
    MarkPriceObserved,
    OrderFilled,
    OrderNotFound,
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
    | AssetDefined
    | ResyncCompleted
    | OrderNotFound
)

EVENT_TYPES: tuple[type[Any], ...] = Event.__args__
KINDS: dict[str, type[Any]] = {t.__struct_config__.tag: t for t in EVENT_TYPES}

_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(Event)


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode_logged(data: bytes | str) -> Event:
    """An event as the log stores it (written by `encode`): types and checks, no more."""
    try:
        event: Event = _decoder.decode(data)
    except UnicodeDecodeError as e:  # msgspec lets a bad byte inside a string through
        raise msgspec.DecodeError(f"JSON is not valid UTF-8: {e}") from e
    return event


def decode(data: bytes | str) -> Event:
    """An event from outside; raises `msgspec.DecodeError` or `msgspec.ValidationError`.

    Stricter than the log's own decoding: no key twice in one object (msgspec keeps the
    last), and every decimal written in JSON's number grammar. Both are checked on the
    untyped tree: a key repeated is a key token the tree does not hold (only then is the
    text parsed again, slowly, to name the key)."""
    event = decode_logged(data)
    raw = data.encode() if isinstance(data, str) else data
    tree = _untyped.decode(raw)
    if len(_KEY_TOKEN.findall(raw)) != _keys(tree):
        json.loads(data, object_pairs_hook=_unique_keys)
        raise msgspec.ValidationError("a key appears twice in one object")
    _plain_decimals(tree, _DECIMALS[type(event)], type(event).__name__)
    return event


_untyped = msgspec.json.Decoder()
# A JSON string followed by a colon: in valid JSON, exactly the object keys.
_KEY_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"[ \t\n\r]*:', re.DOTALL)


def _keys(tree: Any) -> int:
    """How many keys the objects of `tree` hold, nested ones included."""
    if isinstance(tree, dict):
        n = len(tree)
        for v in tree.values():
            if isinstance(v, dict | list):
                n += _keys(v)
        return n
    if isinstance(tree, list):
        return sum(_keys(v) for v in tree if isinstance(v, dict | list))
    return 0


# A decimal as JSON writes a number: ASCII digits, no underscores, no spaces.
_PLAIN = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?\Z")
_Paths: TypeAlias = dict[str, Any]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise msgspec.ValidationError(f"key {k!r} appears twice in one object")
        out[k] = v
    return out


def _plain_decimals(tree: Any, paths: _Paths, where: str) -> None:
    for name, spec in paths.items():
        value = tree.get(name) if isinstance(tree, dict) else None
        if value is None:
            continue
        if spec is Decimal:
            if isinstance(value, str) and not _PLAIN.match(value):
                raise msgspec.ValidationError(
                    f"{where}.{name} must be written as a plain decimal (like \"1.25\"),"
                    f" was {value!r}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                _plain_decimals(item, spec, f"{where}.{name}[{i}]")
        else:
            _plain_decimals(value, spec, f"{where}.{name}")


def _decimal_paths(cls: type[Any]) -> _Paths:
    """Where `cls` holds Decimals: field -> Decimal, or the paths inside a nested struct."""
    out: _Paths = {}
    for name, hint in typing.get_type_hints(cls).items():
        if name not in cls.__struct_fields__:
            continue
        for arg in (hint, *typing.get_args(hint), *(
                a for t in typing.get_args(hint) for a in typing.get_args(t))):
            if arg is Decimal:
                out[name] = Decimal
                break
            if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
                out[name] = _decimal_paths(arg)
                break
    return out


_DECIMALS: dict[type[Any], _Paths] = {t: _decimal_paths(t) for t in EVENT_TYPES}


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
