"""What the daemon's log lines say: a fact's content, and the status line's figures.

Pure functions, no logging: the daemon passes their results to structlog. A fact's line
gets a `summary` an operator reads in the journal without a second tool (`BTCUSDT buy
0.010 @ 60000.1 fee 0.24000000 USDT`) and, beside it, the fact's own figures as exact
decimal strings for machines (`qty`, `price`, `fee`, ...). The status line shows money at
each asset's precision and prices at each instrument's tick, never a division's 18-digit
tail; the snapshot and the event log keep every digit.

Precision comes from the venue's definitions the snapshot carries: `AssetDefined.precision`
for money (rounded the asset's documented way), `InstrumentDefined.tick_size` for prices
and `lot_size` for quantities. Where the venue defined none, `DEFAULT_PLACES`.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from events.codec import Event
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
    OrderFilled,
    OrderStatusReported,
    PositionsReported,
    TransferCompleted,
    position_key,
)
from kernel.reconcile import Verdict
from kernel.snapshot import AccountSnapshotV2

#: Decimal places shown for an amount, price or quantity the venue gave no precision for.
DEFAULT_PLACES = 8
#: Wide enough for any bounded amount (18 integer digits) at 18 places: quantize never
#: raises, whatever context the caller runs in.
_CTX = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN)
_ROUNDING = {"half_even": decimal.ROUND_HALF_EVEN, "half_up": decimal.ROUND_HALF_UP,
             "down": decimal.ROUND_DOWN}

#: (summary, exact fields): what one log line adds to the event's kind and seq.
Line = tuple[str, dict[str, Any]]


def places(step: Decimal) -> int:
    """Decimal places of a tick or lot size: 0.1 -> 1, 0.50 -> 1, 0.001 -> 3, 5 -> 0."""
    exponent = step.normalize(_CTX).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else DEFAULT_PLACES


def fixed(value: Decimal, n: int, rounding: str = decimal.ROUND_HALF_EVEN) -> str:
    """`value` with exactly `n` decimals, in plain notation; never `-0.00`."""
    q = value.quantize(Decimal(1).scaleb(-n), rounding=rounding, context=_CTX)
    return f"{q.copy_abs() if q.is_zero() else q:f}"


class Precision:
    """How many places to show, read from the venue's definitions (a snapshot's
    `instruments` and `assets`)."""

    def __init__(self, instruments: Mapping[str, InstrumentDefined],
                 assets: Mapping[str, AssetDefined]) -> None:
        self.instruments = instruments
        self.assets = assets

    @classmethod
    def of(cls, snap: AccountSnapshotV2) -> Precision:
        return cls(snap.instruments, snap.assets)

    def money(self, value: Decimal, asset: str) -> str:
        """An amount of `asset` at the venue's precision for it, rounded its way."""
        a = self.assets.get(asset)
        if a is None:
            return fixed(value, DEFAULT_PLACES)
        return fixed(value, a.precision, _ROUNDING[a.rounding])

    def price(self, value: Decimal, symbol: str) -> str:
        inst = self.instruments.get(symbol)
        return fixed(value, DEFAULT_PLACES if inst is None else places(inst.tick_size))

    def qty(self, value: Decimal, symbol: str) -> str:
        inst = self.instruments.get(symbol)
        return fixed(value, DEFAULT_PLACES if inst is None else places(inst.lot_size))


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")


def fact_line(event: Event, p: Precision) -> Line | None:
    """The summary and exact fields of `event`'s log line; None for kinds whose line
    needs no content (marks, commands, intents)."""
    match event:
        case OrderFilled():
            return _fill(event, p)
        case FundingSettled():
            key = position_key(event.symbol, event.position_side)
            way = "received" if event.amount > 0 else "paid"
            text = f"{key} {way} {p.money(abs(event.amount), event.asset)} {event.asset}"
            fields = {"symbol": event.symbol, "position_side": event.position_side,
                      "amount": str(event.amount), "asset": event.asset}
            if event.rate is not None:
                text += f" at rate {event.rate}"
            if event.funding_id is not None:
                fields["funding_id"] = event.funding_id
            return text, fields
        case TransferCompleted():
            return (f"{event.direction} {p.money(event.amount, event.asset)} {event.asset}",
                    {"transfer_id": event.transfer_id, "direction": event.direction,
                     "amount": str(event.amount), "asset": event.asset})
        case BalanceReported():
            return _balances(event, p)
        case PositionsReported():
            parts = [f"{position_key(r.symbol, r.position_side)} {p.qty(r.qty, r.symbol)}"
                     + ("" if r.entry_price is None else f" @ {p.price(r.entry_price, r.symbol)}")
                     for r in event.positions]
            return (", ".join(parts) or "no open positions",
                    {"qty": {position_key(r.symbol, r.position_side): str(r.qty)
                             for r in event.positions}})
        case InputQuarantined():
            return (f"{event.source}: {event.reason}",
                    {"source": event.source, "reason": event.reason})
        case OrderStatusReported():
            price = "" if event.price is None else f" @ {p.price(event.price, event.symbol)}"
            return (f"{event.symbol} {event.side} {event.order_type}"
                    f" {p.qty(event.qty, event.symbol)}{price} {event.status},"
                    f" filled {p.qty(event.filled_qty, event.symbol)}",
                    {"symbol": event.symbol, "order_id": event.order_id,
                     "status": event.status, "filled_qty": str(event.filled_qty)})
        case InstrumentDefined():
            return (f"{event.symbol} {event.instrument_kind} settled in {event.settle},"
                    f" tick {event.tick_size} lot {event.lot_size}", {"symbol": event.symbol})
        case AssetDefined():
            return (f"{event.asset} amounts at {event.precision} places ({event.rounding})",
                    {"asset": event.asset, "precision": event.precision})
        case LeverageSet():
            return f"{event.symbol} {event.leverage}x", {"symbol": event.symbol}
        case ManualAdjustment():
            return (f"{p.money(event.amount, event.asset)} {event.asset}: {event.reason}",
                    {"amount": str(event.amount), "asset": event.asset})
        case VenueConnected():
            return event.venue, {}
        case VenueDisconnected():
            return event.reason or event.venue, {}
        case TradingHalted() | TradingResumed():
            return f"{event.reason} (by {event.by})", {}
        case ResyncCompleted():
            return f"{event.stream} since {iso(event.since)}", {"stream": event.stream}
        case _:
            return None


def _fill(f: OrderFilled, p: Precision) -> Line:
    text = (f"{position_key(f.symbol, f.position_side)} {f.side} {p.qty(f.qty, f.symbol)}"
            f" @ {p.price(f.price, f.symbol)} fee {p.money(f.fee, f.fee_currency)}"
            f" {f.fee_currency}")
    fields: dict[str, Any] = {
        "symbol": f.symbol, "side": f.side, "qty": str(f.qty), "price": str(f.price),
        "fee": str(f.fee), "fee_currency": f.fee_currency, "trade_id": f.trade_id,
    }
    if f.position_side != "both":
        fields["position_side"] = f.position_side
    if f.venue_realized_pnl is not None:
        inst = p.instruments.get(f.symbol)
        settle = f.fee_currency if inst is None else inst.settle
        text += f" realized {p.money(f.venue_realized_pnl, settle)} {settle}"
        fields["venue_realized_pnl"] = str(f.venue_realized_pnl)
    return text, fields


def _balances(b: BalanceReported, p: Precision) -> Line:
    parts = []
    for a in b.balances:
        part = f"{a.asset} wallet {p.money(a.wallet, a.asset)}"
        if a.available is not None:
            part += f" available {p.money(a.available, a.asset)}"
        parts.append(part)
    m = b.margin
    if m is not None and m.used is not None:
        parts.append(f"margin used {p.money(m.used, m.asset)} {m.asset}")
    return ("; ".join(parts) or "no balances",
            {"wallet": {a.asset: str(a.wallet) for a in b.balances}})


def status_fields(snap: AccountSnapshotV2) -> dict[str, Any]:
    """The status line's figures from K: capital and equity per asset at its precision,
    each position `qty @ avg` at its lot and tick, each spot holding's quantity."""
    p = Precision.of(snap)
    k = snap.k
    return {
        "capital": {a: p.money(v, a) for a, v in sorted(k.wallets.items())},
        "equity": {a: p.money(v, a) for a, v in sorted(k.equity.items())},
        "positions": {key: f"{p.qty(pos.qty, pos.symbol)} @ {p.price(pos.avg_open, pos.symbol)}"
                      for key, pos in sorted(k.positions.items())},
        "holdings": {sym: p.qty(h.qty, sym) for sym, h in sorted(k.holdings.items())},
    }


def not_ok(snap: AccountSnapshotV2) -> list[str]:
    """Each check that is not OK: `R3 BTCUSDT WARN PENDING_REPORT`."""
    return [f"{c.rule} {c.subject} {c.verdict.value} {c.reason}"
            for c in snap.reconcile.checks if c.verdict is not Verdict.OK]
