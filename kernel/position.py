"""One position key: average cost, realized PnL, and its fills in the venue's order.

Average-cost accounting depends on the order of fills: a venue applies them in its own
order (venue time, then trade id), while the kernel may receive one late, dropped from
the stream and recovered by a resync. Each position key therefore keeps a journal of
its last `WINDOW` fills, each with the position just before it. A fill that sorts
before the journal's last entry is inserted where the venue applied it, the entries
after it are applied again from the position before it, and the difference in realized
PnL moves the wallet. A fill older than the whole window is applied last (R1 and R2 will
show the divergence it leaves); `WINDOW` fills on one key is a long time to be late.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from decimal import Decimal

import msgspec

from events.facts import InstrumentDefined, PositionSide
from kernel.money import ONE, ZERO, q18

WINDOW = 128
_PAD = 32  # numeric trade ids compare as numbers once zero-padded


class Position(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    symbol: str
    position_side: PositionSide = "both"
    qty: Decimal = ZERO
    avg_open: Decimal = ZERO
    realized_pnl: Decimal = ZERO


def trade(
    pos: Position, q: Decimal, px: Decimal, inst: InstrumentDefined
) -> tuple[Position, Decimal]:
    """Apply a signed fill quantity `q` at `px`; return the new position and the realized PnL."""
    old = pos.qty
    # Comparisons with ZERO, not 0: a Decimal compares with a Decimal twice as fast.
    long = old > ZERO
    if not old or long == (q > ZERO):
        new_qty = old + q
        if not old:
            avg = px
        elif inst.instrument_kind == "inverse":
            avg = q18(abs(new_qty) / (abs(old) / pos.avg_open + abs(q) / px))
        else:
            avg = q18((pos.avg_open * abs(old) + px * abs(q)) / abs(new_qty))
        return msgspec.structs.replace(pos, qty=new_qty, avg_open=avg), ZERO
    size, held = abs(q), abs(old)
    closing = held if held < size else size  # min(size, held), as written
    direction = ONE if long else -ONE
    cs = inst.contract_size
    if inst.instrument_kind == "inverse":
        realized = q18((ONE / pos.avg_open - ONE / px) * closing * cs * direction)
    else:
        realized = q18((px - pos.avg_open) * closing * cs * direction)
    new_qty = old + q
    if not new_qty:
        avg = ZERO
    elif (new_qty > ZERO) != long:
        avg = px  # crossed zero: the remainder opens at the fill price
    else:
        avg = pos.avg_open
    return (
        msgspec.structs.replace(
            pos, qty=new_qty, avg_open=avg, realized_pnl=pos.realized_pnl + realized
        ),
        realized,
    )


class Entry(msgspec.Struct, frozen=True, gc=False, array_like=True):
    venue_ts: int
    trade_id: str
    q: Decimal  # signed: buys > 0
    px: Decimal
    realized: Decimal
    before: Position
    #: Base coin taken from a spot holding after the trade (a fee paid in the base coin).
    shrink: Decimal = ZERO
    #: The venue's realized PnL for this fill, when it reported one (rule R2).
    venue: Decimal | None = None

    @property
    def order(self) -> tuple[int, str]:
        return (self.venue_ts, self.trade_id.zfill(_PAD))


Residual = Callable[[Decimal], Decimal]


def _none(_: Decimal) -> Decimal:
    return ZERO


class Booked(msgspec.Struct, frozen=True, gc=False):
    """What booking one fill did to its key."""

    journal: tuple[Entry, ...]
    #: The position after all the key's fills.
    position: Position
    #: The fill's own realized PnL.
    realized: Decimal
    #: The change in the key's total realized PnL (other fills re-priced included).
    delta: Decimal
    #: The change in Σ residual(realized) over the key's fills: what the venue's per-fill
    #: rounding adds to `delta`.
    residual: Decimal
    #: The entries re-priced after a late fill (empty in the common, in-order case).
    repriced: tuple[Entry, ...] = ()


def book(
    journal: tuple[Entry, ...],
    current: Position,
    venue_ts: int,
    trade_id: str,
    q: Decimal,
    px: Decimal,
    inst: InstrumentDefined,
    shrink: Decimal = ZERO,
    venue: Decimal | None = None,
    residual: Residual = _none,
) -> Booked:
    """Book one fill (and, for spot, the base coin its fee took: `shrink`). `residual(x)`
    is the venue's rounding of a realized figure less the figure."""
    last = journal[-1] if journal else None
    if last is None or venue_ts > last.venue_ts or (
        venue_ts == last.venue_ts and trade_id.zfill(_PAD) >= last.trade_id.zfill(_PAD)
    ):  # in order, the common case: append
        after, realized = trade(_fresh(current), q, px, inst)
        if shrink:
            after = msgspec.structs.replace(after, qty=after.qty - shrink)
        last_of = (Entry(venue_ts, trade_id, q, px, realized, current, shrink, venue),)
        journal = journal + last_of if len(journal) < WINDOW else journal[1:] + last_of
        return Booked(journal, after, realized, realized, residual(realized))
    entry = Entry(venue_ts, trade_id, q, px, ZERO, current, shrink, venue)
    at = bisect_right([e.order for e in journal], entry.order)
    if at == 0 and len(journal) == WINDOW:  # older than the window: applied last
        after, entry = _apply(current, entry, inst)
        return Booked((*journal[1:], entry), after, entry.realized, entry.realized,
                      residual(entry.realized))
    pos = journal[at].before
    rebuilt = list(journal[:at])
    own = delta = rdelta = ZERO
    for i, old in enumerate((entry, *journal[at:])):
        pos, new = _apply(pos, old, inst)
        rebuilt.append(new)
        delta += new.realized - (ZERO if i == 0 else old.realized)
        rdelta += residual(new.realized) - (ZERO if i == 0 else residual(old.realized))
        if i == 0:
            own = new.realized
    return Booked(tuple(rebuilt[-WINDOW:]), pos, own, delta, rdelta, tuple(rebuilt[at + 1:]))


def _apply(pos: Position, entry: Entry, inst: InstrumentDefined) -> tuple[Position, Entry]:
    """`entry`'s fill applied to `pos`: the position after, and the entry as booked."""
    after, realized = trade(_fresh(pos), entry.q, entry.px, inst)
    if entry.shrink:
        after = msgspec.structs.replace(after, qty=after.qty - entry.shrink)
    return after, msgspec.structs.replace(entry, realized=realized, before=pos)


def _fresh(pos: Position) -> Position:
    """A flat position starts a new life: its cumulative realized PnL restarts at 0."""
    if not pos.qty and (pos.avg_open or pos.realized_pnl):
        return Position(symbol=pos.symbol, position_side=pos.position_side)
    return pos
