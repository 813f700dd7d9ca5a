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
from typing import Any, NamedTuple, TypeAlias

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
#: Each event type's kind (`KINDS` the other way): `TAGS[type(event)]`.
TAGS: dict[type[Any], str] = {t: kind for kind, t in KINDS.items()}

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
    untyped tree (`_unique_keys_only`, `_plain_decimals`), unless `data` is the log's own
    form: `encode`'s bytes of the event it holds, then at most whitespace (what a
    program writing events with this codec gives), which gives no key twice and writes
    every decimal plainly."""
    event = decode_logged(data)
    raw = data.encode() if isinstance(data, str) else data
    # `encode`'s bytes are one whole JSON object, and the decoder read `raw` whole as one
    # value: so what follows them can only be whitespace.
    if raw.startswith(_encoder.encode(event)):
        return event
    tree = _untyped.decode(raw)
    _unique_keys_only(raw, tree)
    _plain_decimals(tree, _DECIMALS[type(event)], type(event).__name__)
    return event


_untyped = msgspec.json.Decoder()
_untyped_encoder = msgspec.json.Encoder()


def _unique_keys_only(text: bytes, tree: Any) -> None:
    """Raise if an object of the valid JSON `text` (decoded: `tree`) gives a key twice.

    The check in C: without a backslash in `text`, every `"` opens or closes a string,
    and a key given twice is a key string (and maybe a string value) that `tree` no
    longer holds, so `tree` written out again has fewer `"`. Only a text with escapes,
    or one that lost a string, is parsed again, slowly, to name the key."""
    if b"\\" not in text and text.count(b'"') == _untyped_encoder.encode(tree).count(b'"'):
        return
    try:
        json.loads(text, object_pairs_hook=_unique_keys)
    except msgspec.ValidationError:
        raise
    except ValueError as e:  # what msgspec read, the standard library should read too
        raise msgspec.DecodeError(f"JSON is not valid: {e}") from e


# A decimal as JSON writes a number: ASCII digits, no underscores, no spaces.
_PLAIN = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?\Z")
_plain = _PLAIN.match


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise msgspec.ValidationError(f"key {k!r} appears twice in one object")
        out[k] = v
    return out


class _Decimals(NamedTuple):
    """Where a struct holds Decimals: its own Decimal fields, and its fields of structs
    (or of lists of structs) that hold some."""

    fields: tuple[str, ...]
    nested: tuple[tuple[str, _Decimals], ...]


def _plain_decimals(tree: Any, where: _Decimals, path: str) -> None:
    if not isinstance(tree, dict):
        return
    for name in where.fields:
        value = tree.get(name)
        if value.__class__ is str and not _plain(value):
            raise msgspec.ValidationError(
                f"{path}.{name} must be written as a plain decimal (like \"1.25\"),"
                f" was {value!r}")
    for name, inner in where.nested:
        value = tree.get(name)
        if isinstance(value, list):
            for i, item in enumerate(value):
                _plain_decimals(item, inner, f"{path}.{name}[{i}]")
        elif value is not None:
            _plain_decimals(value, inner, f"{path}.{name}")


def _decimal_paths(cls: type[Any]) -> _Decimals:
    fields: list[str] = []
    nested: list[tuple[str, _Decimals]] = []
    for name, hint in typing.get_type_hints(cls).items():
        if name not in cls.__struct_fields__:
            continue
        for arg in (hint, *typing.get_args(hint), *(
                a for t in typing.get_args(hint) for a in typing.get_args(t))):
            if arg is Decimal:
                fields.append(name)
                break
            if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
                nested.append((name, _decimal_paths(arg)))
                break
    return _Decimals(tuple(fields), tuple(nested))


_DECIMALS: dict[type[Any], _Decimals] = {t: _decimal_paths(t) for t in EVENT_TYPES}


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
