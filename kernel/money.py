"""The decimal context every kernel computation runs in.

Event validation bounds every amount to |x| < 1e18 with at most 18 decimals, so
sums and products of a few such values stay exact in 60 significant digits; only a
division (an average price, notional / leverage) can round, and it rounds the
same way on every replay; such results are rounded to 18 places (`q18`). Traps
turn an invalid operation or a division by zero into an exception instead of a NaN
or an infinity.

Python keeps the decimal context per thread (and per asyncio task, by contextvar):
`install()` sets it for the current context and as the template for new threads.
Every entry point calls it before folding; `require()` lets the fold's callers check.

The context *object* is shared, though, and libraries mutate it: ccxt's
`decimal_to_precision` sets the current context's rounding to ROUND_HALF_UP on every
call. A fold under that context would round differently from its own replay. So the
shell folds inside `context()`, a private copy of the kernel's context that nothing
else can touch.
"""

from __future__ import annotations

import decimal
import functools
from contextlib import AbstractContextManager
from decimal import Decimal

PRECISION = 60
ZERO = Decimal(0)
ONE = Decimal(1)
#: Results of a division (an average price, a margin) are rounded to 18 places, the
#: precision of the inputs, so that later arithmetic stays short and exact.
QUANTUM = Decimal("1e-18")

_TRAPS = [decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow]
#: The kernel's context: every fold runs in a copy of it (`context()`).
KERNEL = decimal.Context(prec=PRECISION, rounding=decimal.ROUND_HALF_EVEN,
                         Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=_TRAPS)


def context() -> AbstractContextManager[decimal.Context]:
    """`with money.context(): ...` folds in a fresh copy of the kernel's context,
    whatever another library did to the current one."""
    return decimal.localcontext(KERNEL)


def install() -> None:
    for ctx in (decimal.getcontext(), decimal.DefaultContext):
        ctx.prec = PRECISION
        ctx.rounding = decimal.ROUND_HALF_EVEN
        ctx.Emax = decimal.MAX_EMAX
        ctx.Emin = decimal.MIN_EMIN
        for trap in _TRAPS:
            ctx.traps[trap] = True


def q18(x: Decimal) -> Decimal:
    """`x` rounded half-even to 18 decimal places; when no digit is lost, `x` as written
    in plain form (`60500`, not `60500.000000000000000000` or `6.05E+4`)."""
    y = x.quantize(QUANTUM)
    # Nothing rounded: keep `x`'s own digits (adding 0 turns 6.05E+4 into 60500).
    return x + ZERO if y == x else y


_MODES = {
    "half_even": decimal.ROUND_HALF_EVEN,
    "half_up": decimal.ROUND_HALF_UP,
    "down": decimal.ROUND_DOWN,
}


def round_to(x: Decimal, places: int, mode: str) -> Decimal:
    """`x` rounded to `places` decimals the way a venue documents it (`half_even`,
    `half_up` or `down`, as `events.facts.Rounding` names them)."""
    return x.quantize(_quantum(places), rounding=_MODES[mode])


@functools.cache
def _quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def require() -> None:
    """Raise unless `install()` is in force in the calling context."""
    if decimal.getcontext().prec != PRECISION:
        raise RuntimeError("kernel.money.install() was not called in this context")
