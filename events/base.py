"""The base of every event, and the field checks their `__post_init__` share.

Every event carries two times, both integer nanoseconds since the Unix epoch:
`venue_ts`, when the venue says the fact happened (for kernel-originated events,
when the kernel decided), and `recv_ts`, when the kernel received it. `recv_ts`
of 0 means "not stamped yet": the writer stamps it with its clock on admission.

Checks raise `EventValidationError` naming the event, the field and the value.
msgspec runs `__post_init__` on construction and on decode alike.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import ClassVar

import msgspec

from kernel.errors import EventValidationError

# Money and quantities are bounded so that no arithmetic in the kernel's
# 60-digit decimal context ever rounds: at most 18 integer digits and at most
# 18 fractional digits. One quantize in a 36-digit context checks both: more
# places is Inexact, more integer digits is an InvalidOperation.
_QUANTUM = Decimal("1e-18")
_BOUNDS = decimal.Context(prec=36, traps=[decimal.Inexact, decimal.InvalidOperation])
_ZERO = Decimal(0)
MAX_TS = 2**63 - 1
MAX_ID_LEN = 256


class EventBase(
    msgspec.Struct,
    frozen=True,
    gc=False,
    kw_only=True,
    tag_field="kind",
    forbid_unknown_fields=True,
):
    venue_ts: int
    recv_ts: int = 0

    #: True for facts reported by a venue (they carry the venue's identity in the dedup key).
    is_venue_fact: ClassVar[bool] = False

    @property
    def dedup_key(self) -> str:
        raise NotImplementedError

    def _check_times(self) -> None:
        if not (0 <= self.venue_ts <= MAX_TS and 0 <= self.recv_ts <= MAX_TS):
            for name in ("venue_ts", "recv_ts"):
                v = getattr(self, name)
                if not 0 <= v <= MAX_TS:
                    self._fail(name, v, f"must be ns since the epoch in [0, {MAX_TS}]")

    def _fail(self, field: str, value: object, rule: str) -> None:
        raise EventValidationError(f"{type(self).__name__}.{field} {rule}, was {value!r}")

    def _decimal(
        self, field: str, v: Decimal, *, positive: bool = False, nonneg: bool = False
    ) -> None:
        if not v.is_finite():
            self._fail(field, v, "must be finite")
        try:
            _BOUNDS.quantize(v, _QUANTUM)
        except decimal.Inexact:
            self._fail(field, v, "has more than 18 decimals")
        except decimal.InvalidOperation:
            self._fail(field, v, "is out of range (|x| < 1e18)")
        if positive and v <= _ZERO:
            self._fail(field, v, "must be > 0")
        if nonneg and v < _ZERO:
            self._fail(field, v, "must be >= 0")

    def _opt_decimal(
        self, field: str, v: Decimal | None, *, positive: bool = False, nonneg: bool = False
    ) -> None:
        if v is not None:
            self._decimal(field, v, positive=positive, nonneg=nonneg)

    def _ident(self, field: str, v: str) -> None:
        if not v or len(v) > MAX_ID_LEN or v != v.strip() or not v.isprintable():
            self._fail(field, v, f"must be a non-empty printable identifier of at most"
                                 f" {MAX_ID_LEN} chars")

    def _text(self, field: str, v: str) -> None:
        if not v.strip():
            self._fail(field, v, "must say why")

    def _opt_ident(self, field: str, v: str | None) -> None:
        if v is not None:
            self._ident(field, v)


def key(kind: str, *parts: object) -> str:
    """A dedup key: `kind:part:part...`. Parts are percent-escaped (`%` and `:`), so ids
    that contain `:` (ccxt's `BTC/USDT:USDT`) cannot make two facts share a key, and
    Decimals are written canonically (`0.010` and `0.01` are one value)."""
    out = kind
    for p in parts:
        if isinstance(p, str):
            if ":" in p or "%" in p:
                p = p.replace("%", "%25").replace(":", "%3A")
            out = f"{out}:{p}"
        elif isinstance(p, Decimal):
            out = f"{out}:{p.normalize():f}"
        else:
            out = f"{out}:{p}"
    return out
