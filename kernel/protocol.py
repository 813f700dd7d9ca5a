"""The strategy and ops API's messages (protocol version 1), as typed values: what a
client may send, what the server answers and pushes. Pure: the server
(`kernel/daemon/api.py`) and the client (`kernel/client/`) share it; docs/api.md is the
reference, with an example of every message, and its examples are decoded by a test.

Every request is one JSON object in one text frame with a client-chosen `id` (a string
or an integer) and an `op`; its reply echoes the `id`. A reply is `{"id", "ok": true,
"result": {...}}` or `{"id", "ok": false, "error": {"code", "message", "field"}}`.
Pushes carry no `id`: `{"type": "snapshot" | "event" | "bye", ...}`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal, TypeAlias

import msgspec

from events.facts import OrderType, Side, TimeInForce

VERSION = 1
VERSIONS = (1,)
Scope = Literal["read", "trade"]
RequestId: TypeAlias = str | int

#: Which scope each op needs.
SCOPES: dict[str, Scope] = {
    "hello": "read", "get_snapshot": "read", "subscribe_snapshots": "read",
    "subscribe_events": "read", "unsubscribe": "read", "list_intents": "read",
    "status": "read",
    "place_intent": "trade", "amend_intent": "trade", "cancel_intent": "trade",
    "halt": "trade", "resume": "trade",
}

ErrorCode = Literal[
    "bad_request",  # not a JSON object, or no usable id/op
    "unknown_op",
    "invalid",  # a field is missing or has a bad value (`field` names it)
    "unauthorized",  # no hello yet, or a wrong token
    "forbidden",  # the token's scopes do not include the op's
    "version",  # no protocol version in common
    "not_found",
    "conflict",  # an intent id already used with another body
    "rejected",  # the pre-trade gate refused the intent (`field` names why)
    "halted",  # trading is halted
    "rate_limited",
    "too_large",
    "unavailable",  # the daemon is starting or stopping
    "internal",
]


class _Msg(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
           tag_field="op"):
    id: RequestId


class Hello(_Msg, frozen=True, kw_only=True, tag="hello"):
    token: str
    versions: tuple[int, ...] = (VERSION,)
    client: str = ""


class GetSnapshot(_Msg, frozen=True, kw_only=True, tag="get_snapshot"):
    #: The snapshot after this event; null for the current one.
    seq: int | None = None


class SubscribeSnapshots(_Msg, frozen=True, kw_only=True, tag="subscribe_snapshots"):
    #: The last seq the client has seen: pushes start after it. Null: from now.
    from_seq: int | None = None
    #: False: each snapshot's `intents` and `orders` are empty lists (the locks they
    #: make are still in `k`): for a client that follows the book by `list_intents` or
    #: the event stream, and does not want the whole book in every frame.
    book: bool = True


class SubscribeEvents(_Msg, frozen=True, kw_only=True, tag="subscribe_events"):
    #: The last seq the client has seen: every event after it, then live. Null: from now.
    since: int | None = None
    kinds: tuple[str, ...] = ()


class Unsubscribe(_Msg, frozen=True, kw_only=True, tag="unsubscribe"):
    sub: str


class IntentSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    intent_id: str
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    time_in_force: TimeInForce = "GTC"
    reduce_only: bool = False
    post_only: bool = False
    oco_group: str | None = None
    strategy: str = "default"


class PlaceIntent(_Msg, frozen=True, kw_only=True, tag="place_intent"):
    intent: IntentSpec


class AmendIntent(_Msg, frozen=True, kw_only=True, tag="amend_intent"):
    intent_id: str
    #: The revision this amendment makes: one more than the intent's current revision.
    revision: int
    qty: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None


class CancelIntent(_Msg, frozen=True, kw_only=True, tag="cancel_intent"):
    intent_id: str


class ListIntents(_Msg, frozen=True, kw_only=True, tag="list_intents"):
    #: Only intents in these statuses (empty: all).
    status: tuple[str, ...] = ()


class Halt(_Msg, frozen=True, kw_only=True, tag="halt"):
    reason: str


class Resume(_Msg, frozen=True, kw_only=True, tag="resume"):
    reason: str


class Status(_Msg, frozen=True, kw_only=True, tag="status"):
    pass


Request: TypeAlias = (
    Hello | GetSnapshot | SubscribeSnapshots | SubscribeEvents | Unsubscribe | PlaceIntent
    | AmendIntent | CancelIntent | ListIntents | Halt | Resume | Status
)
OPS = {t.__struct_config__.tag for t in Request.__args__}


class Error(msgspec.Struct, frozen=True, kw_only=True):
    code: ErrorCode
    message: str
    field: str | None = None


class Reply(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """On the wire as docs/api.md shows it: `result` or `error`, never a null one."""

    id: RequestId | None
    ok: bool
    result: dict[str, Any] | None = None
    error: Error | None = None


def ok(request_id: RequestId, **result: Any) -> Reply:
    return Reply(id=request_id, ok=True, result=result)


def fail(request_id: RequestId | None, code: ErrorCode, message: str,
         field: str | None = None) -> Reply:
    return Reply(id=request_id, ok=False, error=Error(code=code, message=message, field=field))


class BadRequest(Exception):
    """A frame that is not a valid request: the error reply to send, with the request's
    `id` when one could be read."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.error.message if reply.error else "bad request")
        self.reply = reply


_decoder = msgspec.json.Decoder(Request)
_encoder = msgspec.json.Encoder(decimal_format="string")
_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def decode_request(frame: str | bytes) -> Request:
    """A request from one frame; raises `BadRequest` holding the error reply, in the
    kernel's words, naming the field."""
    try:
        raw = msgspec.json.decode(frame)
    except msgspec.DecodeError:
        raise BadRequest(fail(None, "bad_request", "the frame is not valid JSON")) from None
    if not isinstance(raw, dict):
        raise BadRequest(fail(None, "bad_request", "a request is a JSON object"))
    rid = raw.get("id")
    if not isinstance(rid, str | int) or isinstance(rid, bool):
        raise BadRequest(fail(None, "bad_request", "a request needs an id (a string or an"
                                                   " integer)", "id"))
    op = raw.get("op")
    if not isinstance(op, str):
        raise BadRequest(fail(rid, "bad_request", "a request needs an op", "op"))
    if op not in OPS:
        raise BadRequest(fail(rid, "unknown_op", f"unknown op {op!r}; ops: "
                                                 f"{', '.join(sorted(OPS))}", "op"))
    for field, value in _decimal_fields(op, raw):
        if value is not None and not (isinstance(value, str) and _PLAIN.match(value)):
            raise BadRequest(fail(rid, "invalid", f"{field}: expected a decimal in a string,"
                                                  f" like \"0.001\", was {value!r}", field))
    try:
        request: Request = msgspec.convert(raw, Request, strict=True)
    except msgspec.ValidationError as e:
        where, what = _where(str(e))
        raise BadRequest(fail(rid, "invalid", f"{where or op}: {what}", where)) from None
    return request


# A decimal as JSON writes a number, inside a string: no floats (they lose digits), no
# "1_000", no spaces, ASCII digits only.
_PLAIN = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?\Z")
_DECIMALS = ("qty", "price", "trigger_price")


def _decimal_fields(op: str, raw: dict[str, Any]) -> list[tuple[str, Any]]:
    if op == "place_intent" and isinstance(raw.get("intent"), dict):
        return [(f"intent.{f}", raw["intent"].get(f)) for f in _DECIMALS]
    if op == "amend_intent":
        return [(f, raw.get(f)) for f in _DECIMALS]
    return []


def _where(message: str) -> tuple[str | None, str]:
    """(field path, what was wrong) from a validation error, in plain words."""
    m = _AT.match(message)
    assert m is not None  # the pattern matches any string
    path = (m["path"] or "").lstrip(".") or None
    what = m["what"]
    if unknown := re.fullmatch(r"Object contains unknown field `(.+)`", what):
        return (f"{path}.{unknown[1]}" if path else unknown[1]), "unknown field"
    if missing := re.fullmatch(r"Object missing required field `(.+)`", what):
        return (f"{path}.{missing[1]}" if path else missing[1]), "required field is missing"
    return path, ("expected a decimal string, like \"0.001\"" if "decimal" in what.lower()
                  else "bad value: " + what[0].lower() + what[1:])


def encode(message: Reply | dict[str, Any]) -> bytes:
    return _encoder.encode(message)
