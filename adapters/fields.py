"""Reading one field of a venue payload, or saying exactly why not. Pure; shared by the
adapters (the sim and the ccxt.pro one both read Binance's dialect).

Every reader takes the payload, the key and a path for the message (`o.l`), and raises
`ParseError` naming the path and the value: a missing key, a wrong type, NaN, a
negative quantity. Money is read from the venue's own decimal strings; a JSON float has
already lost digits and is refused (`dec`), except where a ccxt unified structure is all
there is (`unified_dec`, documented there).
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any, TypeVar

Msg = dict[str, Any]
T = TypeVar("T")
NS_PER_MS = 1_000_000
_MAX_MS = (2**63 - 1) // NS_PER_MS


class ParseError(ValueError):
    """The payload does not have the shape of the message it claims to be."""


def get(d: Any, k: str, path: str) -> Any:
    if not isinstance(d, dict):
        raise ParseError(f"{path} must be an object, was {type(d).__name__}")
    if k not in d or d[k] is None:
        raise ParseError(f"{path}.{k} is missing")
    return d[k]


def _of(d: Any, k: str, path: str, kind: type[T], what: str) -> T:
    v = get(d, k, path)
    if not isinstance(v, kind):
        raise ParseError(f"{path}.{k} must be {what}, was {v!r}")
    return v


def has(d: Any, k: str) -> bool:
    return isinstance(d, dict) and d.get(k) is not None


def text(d: Any, k: str, path: str) -> str:
    return _of(d, k, path, str, "a string")


def ident(d: Any, k: str, path: str) -> str:
    """An id the venue writes as a JSON integer or a string (Binance: both)."""
    v = get(d, k, path)
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise ParseError(f"{path}.{k} must be an id, was {v!r}")
    s = str(v)
    if not s or s != s.strip():
        raise ParseError(f"{path}.{k} must be a non-empty id, was {v!r}")
    return s


def boolean(d: Any, k: str, path: str) -> bool:
    return _of(d, k, path, bool, "a boolean")


def obj(d: Any, k: str, path: str) -> Msg:
    return _of(d, k, path, dict, "an object")


def items(d: Any, k: str, path: str) -> list[Any]:
    return _of(d, k, path, list, "a list")


def ms(d: Any, k: str, path: str) -> int:
    """A time in ms (an integer, or an integer in a string) as ns."""
    v = get(d, k, path)
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= _MAX_MS:
        raise ParseError(f"{path}.{k} must be a time in ms, was {v!r}")
    return v * NS_PER_MS


def _decimal(v: Any, where: str) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise ParseError(f"{where} must be a decimal string, was {v!r}")
    try:
        x = Decimal(v)
    except decimal.InvalidOperation:
        raise ParseError(f"{where} must be a decimal, was {v!r}") from None
    if not x.is_finite():
        raise ParseError(f"{where} must be finite, was {v!r}")
    return x


def dec(d: Any, k: str, path: str, *, nonneg: bool = False) -> Decimal:
    """A decimal from the venue's string (or integer); a float is refused."""
    x = _decimal(get(d, k, path), f"{path}.{k}")
    if nonneg and x < 0:
        raise ParseError(f"{path}.{k} must be >= 0, was {x}")
    return x


def price(d: Any, k: str, path: str) -> Decimal | None:
    """A price Binance writes as "0" (or leaves out) when there is none."""
    if not has(d, k):
        return None
    x = dec(d, k, path, nonneg=True)
    return x if x else None


def unified_dec(d: Any, k: str, path: str, *, nonneg: bool = False) -> Decimal:
    """A number from a ccxt unified structure. ccxt keeps numbers as Python floats; the
    shortest decimal that reads back as the same float is the venue's own figure when
    that had at most 15 significant digits (a float's guarantee), which is the limit of
    this path: venues with a raw dialect (`adapters.ccxtpro.parse`) never use it."""
    v = get(d, k, path)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ParseError(f"{path}.{k} must be finite, was {v!r}")
        v = repr(v)
    x = _decimal(v, f"{path}.{k}")
    if nonneg and x < 0:
        raise ParseError(f"{path}.{k} must be >= 0, was {x}")
    return x


def pick(table: dict[str, Any], v: str, path: str) -> Any:
    if v not in table:
        raise ParseError(f"{path} has unknown value {v!r}")
    return table[v]
