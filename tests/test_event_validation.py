"""The bad-input matrix for the event schema: every bad value is refused by the codec.

One valid example per kind (`VALID`) and a table of every field's rules (`SPEC`) drive
the matrix: for each field, each bad value is written into a copy of the example, and
`events.codec.decode` must raise `msgspec.ValidationError` or `msgspec.DecodeError` whose
message names the field. Test ids read `kind.field.case`.

The last section pins schema bugs found in review by the behaviour that fixed them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import types
import typing
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import codec
from events.codec import KINDS, decode, encode, identity
from events.control import MAX_RAW_BYTES, InputQuarantined, quarantine
from events.facts import AssetBalance, MarginReport, ReportedPosition

T0 = 1_717_171_717_000_000_000

# One valid event per kind, with every optional field given, so each can be mutated.
VALID: dict[str, dict[str, Any]] = {
    "instrument_defined": {
        "venue_ts": T0, "recv_ts": T0 + 1, "symbol": "BTCUSDT", "instrument_kind": "linear",
        "base": "BTC", "quote": "USDT", "settle": "USDT", "tick_size": "0.1",
        "lot_size": "0.001", "min_notional": "5", "contract_size": "1",
    },
    "leverage_set": {"venue_ts": T0, "recv_ts": 0, "symbol": "BTCUSDT", "leverage": "10"},
    "mark_price_observed": {
        "venue_ts": T0, "recv_ts": 0, "symbol": "BTCUSDT", "price": "67012.5",
    },
    "order_filled": {
        "venue_ts": T0, "recv_ts": 0, "symbol": "BTCUSDT", "trade_id": "5550001",
        "order_id": "880001", "side": "buy", "qty": "0.010", "price": "67010.0",
        "fee": "0.26804", "fee_currency": "USDT", "client_order_id": "k-c1",
        "liquidity": "taker", "position_side": "both", "venue_realized_pnl": "-1.5",
    },
    "order_status_reported": {
        "venue_ts": T0, "recv_ts": 0, "symbol": "BTCUSDT", "order_id": "880001",
        "status": "partially_filled", "side": "sell", "order_type": "stop_limit",
        "qty": "0.020", "filled_qty": "0.010", "client_order_id": "k-c1",
        "price": "67010.0", "trigger_price": "67000", "avg_fill_price": "67010.0",
        "time_in_force": "GTC", "reduce_only": True, "post_only": False,
    },
    "balance_reported": {
        "venue_ts": T0, "recv_ts": 0,
        "balances": [
            {"asset": "USDT", "wallet": "10000.5", "available": "9933.4"},
            {"asset": "BNB", "wallet": "0.25"},
        ],
        "margin": {"asset": "USDT", "used": "67.01", "maintenance": "2.68", "available": "-3"},
        "margins": [{"asset": "BTC", "used": "0.01", "maintenance": "0.002",
                     "available": "0.24"}],
    },
    "positions_reported": {
        "venue_ts": T0, "recv_ts": 0,
        "positions": [
            {
                "symbol": "BTCUSDT", "qty": "-0.010", "position_side": "both",
                "entry_price": "67010.0", "mark_price": "67012.5",
                "unrealized_pnl": "-0.025", "leverage": "10", "notional": "-670.125",
            },
            {"symbol": "ETHUSDT", "qty": "0.5", "position_side": "long"},
        ],
    },
    "funding_settled": {
        "venue_ts": T0, "recv_ts": 0, "symbol": "BTCUSDT", "asset": "USDT",
        "amount": "-0.067", "rate": "0.0001", "position_side": "short",
        "funding_id": "8855001",
    },
    "transfer_completed": {
        "venue_ts": T0, "recv_ts": 0, "transfer_id": "tx-1", "asset": "USDT",
        "direction": "withdrawal", "amount": "10000",
    },
    "venue_connected": {"venue_ts": T0, "recv_ts": 0, "venue": "binanceusdm", "session": "s-1"},
    "venue_disconnected": {
        "venue_ts": T0, "recv_ts": 0, "venue": "binanceusdm", "reason": "ping timeout",
    },
    "intent_placed": {
        "venue_ts": T0, "recv_ts": 0, "intent_id": "i-1", "strategy": "trend",
        "oco_group": "g-1", "symbol": "BTCUSDT", "side": "buy", "order_type": "stop_limit",
        "qty": "0.020", "price": "67010.0", "trigger_price": "67000.0",
        "time_in_force": "IOC", "reduce_only": False, "post_only": False,
    },
    "intent_amended": {
        "venue_ts": T0, "recv_ts": 0, "intent_id": "i-1", "revision": 1, "qty": "0.030",
        "price": "67005.0", "trigger_price": "66990",
    },
    "intent_canceled": {"venue_ts": T0, "recv_ts": 0, "intent_id": "i-1"},
    "place_order": {
        "venue_ts": T0, "recv_ts": 0, "command_id": "c-1", "intent_id": "i-1",
        "client_order_id": "k-c1", "symbol": "BTCUSDT", "side": "buy",
        "order_type": "stop_limit", "qty": "0.020", "price": "67010.0",
        "trigger_price": "67000.0", "time_in_force": "GTC", "reduce_only": False,
        "post_only": False, "revision": 2,
    },
    "amend_order": {
        "venue_ts": T0, "recv_ts": 0, "command_id": "c-2", "intent_id": "i-1",
        "client_order_id": "k-c1", "symbol": "BTCUSDT", "qty": "0.030", "price": "67005.0",
        "trigger_price": "66990", "revision": 3,
    },
    "order_not_found": {
        "venue_ts": T0, "recv_ts": 0, "symbol": "BTCUSDT", "client_order_id": "k-c1",
    },
    "cancel_order": {
        "venue_ts": T0, "recv_ts": 0, "command_id": "c-3", "intent_id": "i-1",
        "client_order_id": "k-c1", "symbol": "BTCUSDT", "purpose": "replace",
    },
    "command_acknowledged": {
        "venue_ts": T0, "recv_ts": 0, "command_id": "c-1", "order_id": "880001",
    },
    "command_rejected": {
        "venue_ts": T0, "recv_ts": 0, "command_id": "c-2", "reason": "would trigger",
        "code": "-2021",
    },
    "command_outcome_unknown": {
        "venue_ts": T0, "recv_ts": 0, "command_id": "c-3", "reason": "no answer in 5 s",
    },
    "trading_halted": {"venue_ts": T0, "recv_ts": 0, "reason": "reconcile ERROR", "by": "kernel"},
    "trading_resumed": {"venue_ts": T0, "recv_ts": 0, "reason": "explained", "by": "alice"},
    "manual_adjustment": {
        "venue_ts": T0, "recv_ts": 0, "adjustment_id": "adj-1", "asset": "USDT",
        "amount": "-1.25", "reason": "opening balance",
    },
    "asset_defined": {
        "venue_ts": T0, "recv_ts": 0, "asset": "USDT", "precision": 8, "rounding": "half_up",
    },
    "resync_completed": {
        "venue_ts": T0, "recv_ts": 0, "stream": "funding", "since": T0 - 60_000_000_000,
    },
    "input_quarantined": {
        "venue_ts": T0, "recv_ts": 0, "source": "ingest:f.jsonl:3", "reason": "bad",
        "raw": "{", "raw_sha256": hashlib.sha256(b"{").hexdigest(), "raw_len": 1,
    },
}


@dataclass(frozen=True)
class F:
    """One field's rules. `kind`: ts, int (> 0), nat (>= 0), dec, ident, text (non-empty), free,
    enum, bool, sha256, list, obj. `sign` for dec: pos (> 0), nonneg (>= 0), nonzero, or ''."""

    kind: str
    required: bool = True
    nullable: bool = False
    sign: str = ""


TS, TS_OPT = F("ts"), F("ts", required=False)
ID, ID_OPT = F("ident"), F("ident", required=False, nullable=True)
ID_DEFAULT = F("ident", required=False)
DEC, POS, NONNEG = F("dec"), F("dec", sign="pos"), F("dec", sign="nonneg")
DEC_OPT = F("dec", required=False, nullable=True)
POS_OPT = F("dec", required=False, nullable=True, sign="pos")
NONNEG_OPT = F("dec", required=False, nullable=True, sign="nonneg")
ENUM, ENUM_DEFAULT = F("enum"), F("enum", required=False)
BOOL = F("bool", required=False)
TEXT = F("text")
FREE_DEFAULT, FREE_OPT = F("free", required=False), F("free", required=False, nullable=True)

_TIMES = {"venue_ts": TS, "recv_ts": TS_OPT}
_ORDER_SPEC = {
    "symbol": ID, "side": ENUM, "order_type": ENUM, "qty": POS, "price": POS_OPT,
    "trigger_price": POS_OPT, "time_in_force": ENUM_DEFAULT, "reduce_only": BOOL,
    "post_only": BOOL,
}
_AMEND = {"qty": POS_OPT, "price": POS_OPT, "trigger_price": POS_OPT}

# Every field of every kind. Nested fields are written `parent[0].child` / `parent.child`.
SPEC: dict[str, dict[str, F]] = {
    "instrument_defined": {
        **_TIMES, "symbol": ID, "instrument_kind": ENUM, "base": ID, "quote": ID, "settle": ID,
        "tick_size": POS, "lot_size": POS, "min_notional": NONNEG,
        "contract_size": F("dec", required=False, sign="pos"),
    },
    "leverage_set": {**_TIMES, "symbol": ID, "leverage": POS},
    "mark_price_observed": {**_TIMES, "symbol": ID, "price": POS},
    "order_filled": {
        **_TIMES, "symbol": ID, "trade_id": ID, "order_id": ID, "side": ENUM, "qty": POS,
        "price": POS, "fee": DEC, "fee_currency": ID, "client_order_id": ID_OPT,
        "liquidity": ENUM_DEFAULT, "position_side": ENUM_DEFAULT, "venue_realized_pnl": DEC_OPT,
    },
    "order_status_reported": {
        **_TIMES, "symbol": ID, "order_id": ID, "status": ENUM, "side": ENUM,
        "order_type": ENUM, "qty": POS, "filled_qty": NONNEG, "client_order_id": ID_OPT,
        "price": POS_OPT, "trigger_price": POS_OPT, "avg_fill_price": POS_OPT,
        "time_in_force": ENUM_DEFAULT, "reduce_only": BOOL, "post_only": BOOL,
    },
    "balance_reported": {
        **_TIMES, "balances": F("list"), "margin": F("obj", required=False, nullable=True),
        "balances[0].asset": ID, "balances[0].wallet": DEC, "balances[0].available": DEC_OPT,
        "margin.asset": ID, "margin.used": NONNEG_OPT, "margin.maintenance": NONNEG_OPT,
        "margin.available": DEC_OPT, "margins": F("list", required=False),
        "margins[0].asset": ID, "margins[0].used": NONNEG_OPT,
        "margins[0].maintenance": NONNEG_OPT, "margins[0].available": DEC_OPT,
    },
    "positions_reported": {
        **_TIMES, "positions": F("list"),
        "positions[0].symbol": ID, "positions[0].qty": DEC,
        "positions[0].position_side": ENUM_DEFAULT, "positions[0].entry_price": NONNEG_OPT,
        "positions[0].mark_price": POS_OPT, "positions[0].unrealized_pnl": DEC_OPT,
        "positions[0].leverage": POS_OPT, "positions[0].notional": DEC_OPT,
    },
    "funding_settled": {
        **_TIMES, "symbol": ID, "asset": ID, "amount": DEC, "rate": DEC_OPT,
        "position_side": ENUM_DEFAULT, "funding_id": ID_OPT,
    },
    "asset_defined": {**_TIMES, "asset": ID, "precision": F("nat"), "rounding": ENUM_DEFAULT},
    "resync_completed": {**_TIMES, "stream": ENUM, "since": F("nat")},
    "transfer_completed": {
        **_TIMES, "transfer_id": ID, "asset": ID, "direction": ENUM, "amount": POS,
    },
    "venue_connected": {**_TIMES, "venue": ID, "session": FREE_DEFAULT},
    "venue_disconnected": {**_TIMES, "venue": ID, "reason": FREE_DEFAULT},
    "intent_placed": {
        **_TIMES, **_ORDER_SPEC, "intent_id": ID, "strategy": ID_DEFAULT, "oco_group": ID_OPT,
    },
    "intent_amended": {**_TIMES, "intent_id": ID, "revision": F("int"), **_AMEND},
    "intent_canceled": {**_TIMES, "intent_id": ID},
    "place_order": {
        **_TIMES, **_ORDER_SPEC, "command_id": ID, "intent_id": ID, "client_order_id": ID,
        "revision": F("nat", required=False),
    },
    "amend_order": {
        **_TIMES, "command_id": ID, "intent_id": ID, "client_order_id": ID, "symbol": ID,
        **_AMEND, "revision": F("nat", required=False),
    },
    "order_not_found": {**_TIMES, "symbol": ID, "client_order_id": ID},
    "cancel_order": {
        **_TIMES, "command_id": ID, "intent_id": ID, "client_order_id": ID, "symbol": ID,
        "purpose": ENUM_DEFAULT,
    },
    "command_acknowledged": {**_TIMES, "command_id": ID, "order_id": ID_OPT},
    "command_rejected": {**_TIMES, "command_id": ID, "reason": TEXT, "code": FREE_OPT},
    "command_outcome_unknown": {**_TIMES, "command_id": ID, "reason": TEXT},
    "trading_halted": {**_TIMES, "reason": TEXT, "by": ID_DEFAULT},
    "trading_resumed": {**_TIMES, "reason": TEXT, "by": ID_DEFAULT},
    "manual_adjustment": {
        **_TIMES, "adjustment_id": ID, "asset": ID, "amount": F("dec", sign="nonzero"),
        "reason": TEXT,
    },
    "input_quarantined": {
        **_TIMES, "source": TEXT, "reason": TEXT, "raw": F("free"), "raw_sha256": F("sha256"),
        "raw_len": F("int"),
    },
}

NESTED = {
    ("balance_reported", "balances[0]"): AssetBalance,
    ("balance_reported", "margin"): MarginReport,
    ("balance_reported", "margins[0]"): MarginReport,
    ("positions_reported", "positions[0]"): ReportedPosition,
}

# --- building cases -------------------------------------------------------------------

Path = tuple[str | int, ...]


def parse_path(name: str) -> Path:
    out: list[str | int] = []
    for part in name.split("."):
        if part.endswith("]"):
            field, index = part[:-1].split("[")
            out += [field, int(index)]
        else:
            out.append(part)
    return tuple(out)


def show(path: Path) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else p)
    return s


_MISSING = object()


def mutated(kind: str, path: Path, value: Any) -> dict[str, Any]:
    """A copy of `VALID[kind]` with the field at `path` set to `value` (or removed)."""
    doc = copy.deepcopy(VALID[kind])
    node: Any = doc
    for p in path[:-1]:
        node = node[p]
    if value is _MISSING:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return {"kind": kind, **doc}


@dataclass(frozen=True)
class Case:
    kind: str
    line: bytes
    fragments: tuple[str, ...]  # every one must appear in the error message


def post_init(kind: str, path: Path) -> tuple[str, ...]:
    """__post_init__ errors read `ClassName.field rule, was value`."""
    return (f"{KINDS[kind].__name__}.{show(path)} ",)


def type_error(path: Path) -> tuple[str, ...]:
    """msgspec's own errors end `- at `$.field``."""
    return (f"`$.{show(path)}`",)


def dumps(doc: object) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


BAD_DECIMALS = {
    "NaN": "NaN", "sNaN": "sNaN", "Infinity": "Infinity", "-Infinity": "-Infinity",
    "1e400": "1e400", "-1e400": "-1e400", "1e30": "1e30", "-1e30": "-1e30",
    "19_decimals": "0.0000000000000000001", "1e18": "1000000000000000000",
    "1.5E-19": "1.5E-19", "1.0000000000000000001": "1.0000000000000000001",
}
BAD_DECIMAL_NUMBERS = {"json_number_1e400": "1e400", "json_number_1e30": "1e30"}
BAD_BY_SIGN = {
    "pos": {"zero": "0", "minus_zero": "-0", "minus_one": "-1"},
    "nonneg": {"minus_one": "-1", "minus_tiny": "-0.000000000000000001"},
    "nonzero": {"zero": "0"},
    "": {},
}
BAD_IDENTS = {
    "empty": "", "leading_space": "   x", "trailing_space": "x   ", "trailing_tab": "x\t",
    "257_chars": "x" * 257, "300_chars": "x" * 300,
}
BAD_TS = {"minus_one": -1, "2**63": 2**63, "2**64": 2**64}
WRONG_TS_TYPES = {"float_1.5": 1.5, "float_1.0": 1.0, "string_1": "1", "true": True}
WRONG_TYPES: dict[str, dict[str, Any]] = {
    "ts": {"list": [], "object": {}, "null": None},
    "int": {"list": [], "object": {}, "true": True, "float_1.5": 1.5, "string_1": "1",
            "null": None},
    "dec": {"list": [], "object": {}, "true": True, "false": False, "hex_string": "0x10",
            "empty_string": "", "word": "one"},
    "ident": {"int": 1, "list": [], "object": {}, "true": True},
    "text": {"int": 1, "list": [], "object": {}, "true": True},
    "free": {"int": 1, "list": ["x"], "object": {}, "true": True},
    "sha256": {"int": 1, "list": [], "object": {}},
    "enum": {"int": 1, "list": [], "object": {}, "unknown_value": "NOPE", "empty": "",
             "true": True},
    "bool": {"string_true": "true", "int_1": 1, "list": [], "object": {}},
    "list": {"object": {}, "string": "x", "int": 1, "element_int": [1], "element_list": [[]]},
    "obj": {"list": [], "string": "x", "int": 1, "true": True},
}

SCHEMA_BUG_RAW_LEN: tuple[Any, ...] = ()
SCHEMA_BUG_SHA: tuple[Any, ...] = ()


def build_cases() -> list[Any]:
    params: list[Any] = []

    def add(kind: str, name: str, case: str, doc: object, frags: tuple[str, ...],
            marks: Any = ()) -> None:
        params.append(pytest.param(
            Case(kind, doc if isinstance(doc, bytes) else dumps(doc), frags),
            id=f"{kind}.{name}.{case}", marks=marks,
        ))

    for kind, fields in SPEC.items():
        for name, spec in fields.items():
            path = parse_path(name)
            leaf = path[-1]
            if spec.required:
                frags: tuple[str, ...] = (f"missing required field `{leaf}`",)
                if len(path) > 1:
                    frags += (f"`$.{show(path[:-1])}`",)
                add(kind, name, "missing", mutated(kind, path, _MISSING), frags)
            wrong = dict(WRONG_TYPES["int" if spec.kind == "nat" else spec.kind])
            if spec.nullable:
                wrong.pop("null", None)
            elif spec.kind not in ("ts", "int", "nat"):
                wrong["null"] = None
            for case, value in wrong.items():
                where = (*path, 0) if case.startswith("element_") else path
                add(kind, name, f"wrong_type_{case}", mutated(kind, path, value),
                    type_error(where))
            if spec.kind == "ts":
                for case, value in BAD_TS.items():
                    add(kind, name, case, mutated(kind, path, value), post_init(kind, path))
                for case, value in WRONG_TS_TYPES.items():
                    add(kind, name, case, mutated(kind, path, value), type_error(path))
            elif spec.kind in ("int", "nat"):
                marks = SCHEMA_BUG_RAW_LEN if name == "raw_len" else ()
                for case, value in {"zero": 0, "minus_one": -1}.items():
                    if (name == "raw_len" or spec.kind == "nat") and value == 0:
                        continue  # an empty payload has length 0
                    add(kind, name, case, mutated(kind, path, value), post_init(kind, path),
                        marks)
            elif spec.kind == "dec":
                bad = {**BAD_DECIMALS, **BAD_BY_SIGN[spec.sign]}
                for case, value in bad.items():
                    add(kind, name, case, mutated(kind, path, value), post_init(kind, path))
                for case, text in BAD_DECIMAL_NUMBERS.items():
                    line = dumps(mutated(kind, path, "@@")).replace(b'"@@"', text.encode())
                    add(kind, name, case, line, post_init(kind, path))
            elif spec.kind == "ident":
                for case, value in BAD_IDENTS.items():
                    add(kind, name, case, mutated(kind, path, value), post_init(kind, path))
            elif spec.kind == "text":
                add(kind, name, "empty", mutated(kind, path, ""), post_init(kind, path))
            elif spec.kind == "sha256":
                add(kind, name, "short", mutated(kind, path, "ab" * 31), post_init(kind, path))
                add(kind, name, "not_hex", mutated(kind, path, "z" * 64), post_init(kind, path),
                    SCHEMA_BUG_SHA)
        add(kind, "<extra>", "unknown_field", {"kind": kind, **VALID[kind], "extra": 1},
            ("unknown field `extra`",))
    for (kind, parent), _ in NESTED.items():
        path = parse_path(parent)
        doc = mutated(kind, (*path, "extra"), 1)
        add(kind, parent, "unknown_field", doc, ("unknown field `extra`", f"`$.{parent}`"))
    return params


CASES = build_cases()

# Rules that relate two fields, or a list's elements to each other.
RULES: list[tuple[str, str, dict[str, Any], str]] = [
    ("instrument_defined", "symbol_with_key_sep", {"symbol": "BTC|long"}, "symbol"),
    ("instrument_defined", "spot_settle_not_quote",
     {"instrument_kind": "spot", "settle": "BTC"}, "settle"),
    ("instrument_defined", "spot_contract_size_not_1",
     {"instrument_kind": "spot", "contract_size": "2"}, "contract_size"),
    ("instrument_defined", "inverse_settle_not_base",
     {"instrument_kind": "inverse", "base": "BTC", "quote": "USD", "settle": "USD"}, "settle"),
    ("order_status_reported", "filled_above_qty", {"filled_qty": "0.021"}, "filled_qty"),
    ("balance_reported", "repeated_asset",
     {"balances": [{"asset": "USDT", "wallet": "1"}, {"asset": "USDT", "wallet": "2"}]},
     "balances[1].asset"),
    ("balance_reported", "repeated_margin_asset",
     {"margins": [{"asset": "USDT", "used": "1"}]}, "margins[0].asset"),
    ("positions_reported", "repeated_key",
     {"positions": [{"symbol": "BTCUSDT", "qty": "1"}, {"symbol": "BTCUSDT", "qty": "2"}]},
     "positions[1]"),
    ("positions_reported", "repeated_hedge_key",
     {"positions": [{"symbol": "X", "qty": "1", "position_side": "long"},
                    {"symbol": "X", "qty": "2", "position_side": "long"}]},
     "positions[1]"),
    ("positions_reported", "long_negative",
     {"positions": [{"symbol": "X", "qty": "-1", "position_side": "long"}]}, "positions[0].qty"),
    ("positions_reported", "short_positive",
     {"positions": [{"symbol": "X", "qty": "1", "position_side": "short"}]}, "positions[0].qty"),
    ("asset_defined", "precision_19", {"precision": 19}, "precision"),
    ("resync_completed", "since_after_venue_ts", {"since": T0 + 1}, "since"),
    ("intent_amended", "nothing_changed",
     {"qty": None, "price": None, "trigger_price": None}, "qty"),
    ("amend_order", "nothing_changed", {"qty": None, "price": None, "trigger_price": None}, "qty"),
]
for _kind in ("intent_placed", "place_order"):
    RULES += [
        (_kind, "limit_without_price",
         {"order_type": "limit", "price": None, "trigger_price": None}, "price"),
        (_kind, "market_with_price", {"order_type": "market", "trigger_price": None}, "price"),
        (_kind, "stop_without_trigger",
         {"order_type": "stop", "price": None, "trigger_price": None}, "trigger_price"),
        (_kind, "limit_with_trigger", {"order_type": "limit"}, "trigger_price"),
        (_kind, "stop_limit_without_trigger", {"trigger_price": None}, "trigger_price"),
        (_kind, "post_only_not_limit", {"post_only": True}, "post_only"),
    ]


# --- the tests ------------------------------------------------------------------------


def test_spec_covers_every_field_of_every_kind() -> None:
    """SPEC lists each field with the schema's own required/nullable flags, so a new or
    changed field fails here until the matrix covers it."""
    assert set(SPEC) == set(KINDS) == set(VALID)

    def flags(cls: type[Any]) -> dict[str, tuple[bool, bool]]:
        return {
            f.name: (f.required, type(None) in typing.get_args(f.type))
            for f in msgspec.structs.fields(cls)
        }

    for kind, cls in KINDS.items():
        top = {n: (s.required, s.nullable) for n, s in SPEC[kind].items() if "." not in n
               and "[" not in n}
        assert top == flags(cls), kind
    for (kind, parent), cls in NESTED.items():
        prefix = parent + "."
        nested = {n[len(prefix):]: (s.required, s.nullable) for n, s in SPEC[kind].items()
                  if n.startswith(prefix)}
        assert nested == flags(cls), f"{kind}.{parent}"


def test_union_types_are_what_spec_assumes() -> None:
    """`dec` fields are Decimal, `ts`/`int` int, `bool` bool, text-like str."""
    expected = {"ts": int, "int": int, "dec": Decimal, "bool": bool,
                "ident": str, "text": str, "free": str, "sha256": str}
    for kind, cls in KINDS.items():
        for f in msgspec.structs.fields(cls):
            spec = SPEC[kind][f.name]
            if spec.kind in expected:
                args = typing.get_args(f.type) if isinstance(f.type, types.UnionType) else ()
                base = next((a for a in args if a is not type(None)), f.type)
                assert base is expected[spec.kind], f"{kind}.{f.name}"


@pytest.mark.parametrize("kind", list(VALID))
def test_valid_example_decodes_to_its_kind(kind: str) -> None:
    event = decode(dumps({"kind": kind, **VALID[kind]}))
    assert type(event) is KINDS[kind]


@pytest.mark.parametrize("kind", list(VALID))
def test_encode_decode_round_trips(kind: str) -> None:
    event = decode(dumps({"kind": kind, **VALID[kind]}))
    again = decode(encode(event))
    assert again == event
    assert encode(again) == encode(event)
    assert again.dedup_key == event.dedup_key


@pytest.mark.parametrize("kind", list(VALID))
def test_the_logs_own_form_is_taken_as_written_and_a_key_after_it_is_still_refused(
        kind: str) -> None:
    event = decode(dumps({"kind": kind, **VALID[kind]}))
    own = encode(event)
    for line in (own, own + b"\n", own + b" \r\n"):
        assert decode(line) == event
    # The own form with its last key given again, same value: every byte of the own
    # form but its closing brace comes first, so only that brace may tell them apart.
    fields = json.loads(own)
    last = list(fields)[-1]
    again = own[:-1] + b"," + dumps({last: fields[last]})[1:]
    with pytest.raises(msgspec.ValidationError, match=f"key '{last}' appears twice"):
        decode(again)


@pytest.mark.parametrize("kind", list(VALID))
def test_encoded_decimals_are_strings_and_keep_their_text(kind: str) -> None:
    encoded = json.loads(encode(decode(dumps({"kind": kind, **VALID[kind]}))))
    for name, spec in SPEC[kind].items():
        if spec.kind != "dec":
            continue
        node_in: Any = VALID[kind]
        node_out: Any = encoded
        for p in parse_path(name):
            node_in, node_out = node_in[p], node_out[p]
        assert node_out == node_in, f"{kind}.{name}"


@pytest.mark.parametrize("kind", list(VALID))
def test_identity_ignores_only_recv_ts(kind: str) -> None:
    a = decode(dumps({"kind": kind, **VALID[kind], "recv_ts": 5}))
    b = decode(dumps({"kind": kind, **VALID[kind], "recv_ts": 6}))
    c = decode(dumps({"kind": kind, **VALID[kind], "recv_ts": 5, "venue_ts": T0 + 1}))
    assert a != b
    assert identity(a) == identity(b)
    assert identity(a) != identity(c)


@pytest.mark.parametrize("case", CASES)
def test_bad_field_is_refused_naming_the_field(case: Case) -> None:
    with pytest.raises((msgspec.ValidationError, msgspec.DecodeError)) as info:
        decode(case.line)
    for fragment in case.fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("kind", "changes", "field"),
    [(k, ch, f) for k, _, ch, f in RULES],
    ids=[f"{k}.{f}.{name}" for k, name, _, f in RULES],
)
def test_cross_field_rule_is_enforced(kind: str, changes: dict[str, Any], field: str) -> None:
    doc: dict[str, Any] = {"kind": kind, **VALID[kind]}
    for name, value in changes.items():
        if value is None:
            doc.pop(name, None)
        else:
            doc[name] = value
    with pytest.raises(msgspec.ValidationError) as info:
        decode(dumps(doc))
    assert f"{KINDS[kind].__name__}.{field} " in str(info.value)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        pytest.param(b"", "truncated", id="line.empty"),
        pytest.param(b"\n", "truncated", id="line.newline_only"),
        pytest.param(b"   ", "truncated", id="line.spaces_only"),
        pytest.param(b"{", "truncated", id="json.unclosed_object"),
        pytest.param(b"{'kind': 'x'}", "malformed", id="json.single_quotes"),
        pytest.param(b'{"kind":"venue_connected",}', "malformed", id="json.trailing_comma"),
        pytest.param(b"\xff", "malformed", id="json.non_utf8_byte"),
        pytest.param(b'{"kind":"intent_canceled","venue_ts":1,"intent_id":"i"} {}', "trailing",
                     id="json.two_values_on_one_line"),
        pytest.param(b'{"kind":"mark_price_observed","venue_ts":1,"symbol":"X","price":NaN}',
                     "malformed", id="json.bare_nan"),
        pytest.param(b'{"kind":"venue_connected","venue_ts":1,"venue":"\\ud800"}', "",
                     id="json.lone_surrogate_escape"),
        pytest.param(b"[]", "Expected `object`", id="shape.array"),
        pytest.param(b"null", "Expected `object`", id="shape.null"),
        pytest.param(b'"order_filled"', "Expected `object`", id="shape.string"),
        pytest.param(b"{}", "missing required field `kind`", id="kind.missing"),
        pytest.param(b'{"kind":"order_updated","venue_ts":1}', "`$.kind`", id="kind.unknown"),
        pytest.param(b'{"kind":"Order_Filled","venue_ts":1}', "`$.kind`", id="kind.wrong_case"),
        pytest.param(b'{"kind":1,"venue_ts":1}', "`$.kind`", id="kind.not_a_string"),
        pytest.param(b'{"kind":null,"venue_ts":1}', "`$.kind`", id="kind.null"),
    ],
)
def test_bad_line_is_refused(line: bytes, fragment: str) -> None:
    with pytest.raises((msgspec.ValidationError, msgspec.DecodeError)) as info:
        decode(line)
    assert fragment in str(info.value)


def test_json_numbers_decode_exactly_from_their_text() -> None:
    line = b'{"kind":"mark_price_observed","venue_ts":1,"symbol":"X","price":0.1}'
    event = decode(line)
    assert str(event.price) == "0.1"  # type: ignore[union-attr]


# --- schema bugs found in review, each pinned by the behaviour that fixed it -------------


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b'{"kind":"venue_connected","venue_ts":1,"venue":"\xff"}', id="in_value"),
        pytest.param(b'{"kind":"venue_connected","venue_ts":1,"venue":"v","\xff":1}',
                     id="in_key"),
        pytest.param(b'{"kind":"venue_connected","venue_ts":1,"venue":"\xed\xa0\x80"}',
                     id="encoded_surrogate"),
        pytest.param(b'{"kind":"\xc3"}', id="truncated_sequence_in_kind"),
    ],
)
def test_non_utf8_inside_a_string_is_a_decode_error(line: bytes) -> None:
    with pytest.raises((msgspec.ValidationError, msgspec.DecodeError)):
        decode(line)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("1_000", id="underscore"),
        pytest.param(" 1", id="leading_space"),
        pytest.param("1\n", id="trailing_newline"),
        pytest.param("\uff11", id="fullwidth_digit"),
        pytest.param("\u0661\u0660", id="arabic_indic_digits"),
    ],
)
def test_decimal_string_outside_json_number_grammar_is_refused(text: str) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode(dumps({"kind": "mark_price_observed", **VALID["mark_price_observed"],
                      "price": text}))


def test_repeated_key_is_refused() -> None:
    line = (b'{"kind":"transfer_completed","venue_ts":1,"transfer_id":"t","asset":"USDT",'
            b'"direction":"deposit","amount":"5","amount":"5000"}')
    with pytest.raises((msgspec.ValidationError, msgspec.DecodeError)):
        decode(line)


def test_repeated_key_in_a_nested_object_is_refused_and_named() -> None:
    doc = dumps({"kind": "positions_reported", **VALID["positions_reported"]})
    # The first position's qty, written twice.
    line = doc.replace(b'"qty": ', b'"qty": "7", "qty": ', 1)
    assert line != doc
    with pytest.raises(msgspec.ValidationError, match="key 'qty' appears twice"):
        decode(line)


def test_a_repeated_key_is_refused_though_escaped_quotes_make_up_for_its_strings() -> None:
    # The repeat takes 4 `"` away (its key and "a"); the value kept writes 4 quotes as
    # \u0022, which written out again are 4 `"` more: the count alone would balance.
    line = (b'{"kind":"venue_connected","venue_ts":1,"venue":"a",'
            b'"venue":"\\u0022\\u0022\\u0022\\u0022"}')
    with pytest.raises(msgspec.ValidationError, match="key 'venue' appears twice"):
        decode(line)


def test_a_value_that_looks_like_a_key_is_not_counted_as_one() -> None:
    # Quotes, colons and backslashes inside strings: one key each, nothing repeated.
    event = decode(dumps({"kind": "venue_connected", "venue_ts": 1,
                          "venue": 'a\\":"venue":"b" : c'}))
    assert event.venue == 'a\\":"venue":"b" : c'


class Pairs(list[tuple[str, Any]]):
    """A JSON object as written, key by key: it may give a key twice."""


def _write(value: Any, space: str, escape: bool) -> str:
    """`value` as JSON text, `space` around its punctuation; with `escape`, every `"` in
    a string written `\\u0022` (a quote in JSON, as json.dumps never writes it)."""
    if isinstance(value, Pairs):
        return "{" + f",{space}".join(
            f"{_write(k, space, escape)}{space}:{space}{_write(v, space, escape)}"
            for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + f",{space}".join(_write(v, space, escape) for v in value) + "]"
    if isinstance(value, str) and escape:
        return '"' + "".join("\\u0022" if c == '"' else json.dumps(c, ensure_ascii=False)[1:-1]
                             for c in value) + '"'
    return json.dumps(value, ensure_ascii=False)


def _repeats_a_key(value: Any) -> bool:
    if isinstance(value, Pairs):
        keys = [k for k, _ in value]
        return len(set(keys)) != len(keys) or any(_repeats_a_key(v) for _, v in value)
    return isinstance(value, list) and any(_repeats_a_key(v) for v in value)


# Keys and strings made of what could fool a count of quotes or colons.
_tricky = st.text(alphabet='ab:" \\,{}\u00e9\n', max_size=6)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _tricky,
    lambda inner: st.lists(inner, max_size=4)
    | st.lists(st.tuples(st.sampled_from(["a", "b", ":", '"', "a\\"]) | _tricky, inner),
               max_size=4).map(Pairs),
    max_leaves=12,
)


@given(tree=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), _json), max_size=5).map(Pairs),
       space=st.sampled_from(["", " ", "\n\t"]), escape=st.booleans())
def test_a_repeated_key_is_found_wherever_it_is_and_only_then(
        tree: Pairs, space: str, escape: bool) -> None:
    text = _write(tree, space, escape).encode()
    assert json.loads(text) == msgspec.json.decode(text)
    if _repeats_a_key(tree):
        with pytest.raises(msgspec.ValidationError, match="appears twice in one object"):
            codec._unique_keys_only(text, msgspec.json.decode(text))
    else:
        codec._unique_keys_only(text, msgspec.json.decode(text))


def test_distinct_fills_have_distinct_dedup_keys() -> None:
    base = {"kind": "order_filled", **VALID["order_filled"]}
    a = decode(dumps({**base, "symbol": "BTC/USDT:USDT", "trade_id": "1"}))
    b = decode(dumps({**base, "symbol": "BTC/USDT", "trade_id": "USDT:1"}))
    assert identity(a) != identity(b)
    assert a.dedup_key != b.dedup_key


def test_same_order_status_has_one_dedup_key() -> None:
    base = {"kind": "order_status_reported", **VALID["order_status_reported"]}
    a = decode(dumps({**base, "filled_qty": "0.010"}))
    b = decode(dumps({**base, "filled_qty": "0.01"}))
    assert identity(a) == identity(b)
    assert a.dedup_key == b.dedup_key


# --- quarantine() ------------------------------------------------------------------------


def _q(raw: str | bytes, **kw: Any) -> InputQuarantined:
    args: dict[str, Any] = {"source": "test", "reason": "bad", "venue_ts": T0, **kw}
    return quarantine(raw, **args)


def _round_trips(q: InputQuarantined) -> None:
    again = decode(encode(q))
    assert again == q


def test_quarantine_keeps_non_utf8_bytes_as_escapes() -> None:
    data = b'{"kind":"\xff\xfe","venue_ts":1}'
    q = _q(data)
    assert q.raw == '{"kind":"\\xff\\xfe","venue_ts":1}'
    assert "\ufffd" not in q.raw
    assert q.raw_len == len(data)
    assert q.raw_sha256 == hashlib.sha256(data).hexdigest()
    assert q.dedup_key == f"quarantine:{q.raw_sha256}"
    _round_trips(q)


def test_quarantine_of_a_1mb_payload_truncates_raw_and_describes_the_whole() -> None:
    data = b'{"kind":"order_filled","pad":"' + b"a" * (1 << 20) + b'"}'
    q = _q(data)
    assert q.raw == data[:MAX_RAW_BYTES].decode("ascii")
    assert len(q.raw.encode("utf-8")) == MAX_RAW_BYTES
    assert q.raw_len == len(data)
    assert q.raw_sha256 == hashlib.sha256(data).hexdigest()
    _round_trips(q)
    assert len(encode(q)) < MAX_RAW_BYTES + 1024


def test_quarantine_of_a_1mb_non_utf8_payload() -> None:
    data = b"\xff" * (1 << 20)
    q = _q(data)
    assert q.raw == "\\xff" * (MAX_RAW_BYTES // 4)
    assert len(q.raw.encode("utf-8")) <= MAX_RAW_BYTES
    assert q.raw_len == 1 << 20
    assert q.raw_sha256 == hashlib.sha256(data).hexdigest()
    _round_trips(q)


def test_quarantine_dedup_key_depends_only_on_the_raw_payload() -> None:
    data = b'{"kind":"nope"}'
    keys = {
        _q(data).dedup_key,
        _q(data, source="other", reason="other", venue_ts=T0 + 99, recv_ts=5).dedup_key,
        _q(data.decode()).dedup_key,
    }
    assert keys == {f"quarantine:{hashlib.sha256(data).hexdigest()}"}
    assert _q(data + b" ").dedup_key not in keys


def test_quarantine_of_surrogateescaped_text_matches_its_bytes() -> None:
    data = b'{"venue":"\xff"}'
    assert _q(data.decode("utf-8", "surrogateescape")).dedup_key == _q(data).dedup_key


def test_payloads_differing_past_the_truncation_have_different_keys() -> None:
    head = b"a" * (2 * MAX_RAW_BYTES)
    a, b = _q(head + b"1"), _q(head + b"2")
    assert a.raw == b.raw
    assert a.dedup_key != b.dedup_key


def test_quarantine_accepts_text_with_a_lone_surrogate() -> None:
    q = _q('{"venue":"\ud800"}')
    _round_trips(q)


def test_quarantine_truncates_on_a_character_boundary() -> None:
    text = "a" * (MAX_RAW_BYTES - 1) + "é" * 10
    q = _q(text)
    assert text.startswith(q.raw)
    assert len(q.raw.encode("utf-8")) <= MAX_RAW_BYTES
