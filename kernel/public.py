"""The public, versioned wire form of AccountSnapshotV2: what `exkernel snapshot --json`
prints and the API sends. docs/snapshot.md explains every field; docs/snapshot.schema.json
is generated from these types (`schema()`), and a test fails when the two disagree.

Rules of the form, for consumers in any language:

* Decimals are JSON strings, never numbers, so every digit the kernel computed is kept:
  JSON's number grammar inside a string (`"60000.5"`, and for some tiny or zero values
  with many places, exponent form such as `"0E-8"` or `"-9E-9"`), as any decimal library
  reads it. Times are integer nanoseconds since the Unix epoch.
* A figure the venue has not reported is `null`, never `0`. A figure K computes is always
  present (0 when it is zero).
* Names are stable. A new field may be added (with a default); a field's type or meaning
  never changes without a new `version`.
* The fold's internals (fill journals, per-rule reuse, pending clocks) stay out.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import msgspec

from kernel.intents import IntentBook
from kernel.locks import LockConfig, locked_in
from kernel.money import ZERO
from kernel.snapshot import AccountSnapshotV2

VERSION: Literal[2] = 2
Verdict = Literal["OK", "UNKNOWN", "WARN", "ERROR"]


class _Wire(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class AssetK(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """K, the kernel's ledger, for one asset."""

    capital: Decimal
    realized_pnl: Decimal
    fees: Decimal
    funding: Decimal
    transfers: Decimal
    adjustments: Decimal
    unrealized_pnl: Decimal
    equity: Decimal
    open_notional: Decimal
    used_margin: Decimal
    available_margin: Decimal
    peak_capital: Decimal
    drawdown: Decimal
    venue_rounding: Decimal
    #: Margin and fee locked by the kernel's own working intents (docs/intents.md), and
    #: what is left available after them: the figure a strategy can trust before the
    #: venue confirms anything.
    locked: Decimal = Decimal(0)
    available_after_locks: Decimal = Decimal(0)


class PositionK(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    symbol: str
    position_side: Literal["both", "long", "short"]
    qty: Decimal
    avg_open: Decimal
    #: K's mark for the symbol, null before the first one (the position is then valued
    #: at its average: no unrealized PnL).
    mark: Decimal | None
    leverage: Decimal
    notional: Decimal
    unrealized_pnl: Decimal
    margin: Decimal
    settle: str


class HoldingK(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    symbol: str
    qty: Decimal
    avg_cost: Decimal


class InstrumentOut(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The venue's trading rules for one symbol: intents must sit on its tick and lot."""

    kind: Literal["linear", "inverse", "spot"]
    base: str
    quote: str
    settle: str
    tick_size: Decimal
    lot_size: Decimal
    min_notional: Decimal
    contract_size: Decimal


class LedgerK(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    assets: dict[str, AssetK]
    positions: dict[str, PositionK]
    holdings: dict[str, HoldingK]
    realized_by_symbol: dict[str, Decimal]
    marks: dict[str, Decimal]


class BalanceE(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    wallet: Decimal
    available: Decimal | None


class MarginE(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    asset: str
    used: Decimal | None
    maintenance: Decimal | None
    available: Decimal | None


class PositionE(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    symbol: str
    position_side: Literal["both", "long", "short"]
    qty: Decimal
    entry_price: Decimal | None
    mark_price: Decimal | None
    unrealized_pnl: Decimal | None
    leverage: Decimal | None
    notional: Decimal | None


class VenueE(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """E, the venue's latest reports. `null` where it has not reported."""

    balances: dict[str, BalanceE] | None
    #: Margin figures by asset (the account-level summary and any per-asset figures).
    margins: dict[str, MarginE] | None
    balances_ts: int | None
    positions: dict[str, PositionE] | None
    positions_ts: int | None
    notional: dict[str, Decimal] | None
    stale_reports: int


class CheckOut(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    rule: Literal["R1", "R2", "R3", "R4", "R5", "R6", "R7"]
    subject: str
    verdict: Verdict
    reason: str
    #: The compared values: decimals as strings; R6 compares comma-joined key sets.
    kernel: str | None
    venue: str | None
    expires_at: int | None
    explained: Decimal | None
    detail: str


class ReconcileOut(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    verdict: Verdict
    expires_at: int | None
    checks: list[CheckOut]


class IntentOut(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A strategy's intent and where the kernel is with it (filled in by the intent
    reconciler; see docs/intents.md)."""

    intent_id: str
    strategy: str
    symbol: str
    side: Literal["buy", "sell"]
    order_type: str
    qty: Decimal
    price: Decimal | None
    trigger_price: Decimal | None
    time_in_force: str
    reduce_only: bool
    post_only: bool
    oco_group: str | None
    revision: int
    status: str
    created_ts: int
    updated_ts: int
    #: The strategy canceled it; the venue's order may still be working until the cancel
    #: is acknowledged (`status` then turns CANCELED, or COMPLETED if it filled first).
    cancel_requested: bool = False


class OrderOut(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The venue's order working an intent."""

    intent_id: str
    client_order_id: str
    superseded: list[str]
    venue_order_id: str | None
    venue_status: str | None
    status: str
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    last_sync_ts: int | None
    error: str | None


class PublicSnapshot(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: Literal[2]
    seq: int
    #: The dedup key and kind of the event this snapshot follows, and its venue time.
    event_id: str
    event_kind: str
    event_ts: int
    #: The kernel's event-time clock: the largest receive time folded.
    now: int
    connected: bool | None
    halted: bool
    quarantined: int
    k: LedgerK
    e: VenueE
    reconcile: ReconcileOut
    intents: list[IntentOut]
    orders: list[OrderOut]
    #: The venue's rules per symbol, and its precision (decimal places) per asset.
    instruments: dict[str, InstrumentOut] = {}
    asset_precision: dict[str, int] = {}


def _text(v: Decimal | str | None) -> str | None:
    return None if v is None else v if isinstance(v, str) else f"{v:f}"


def public(snap: AccountSnapshotV2, intents: list[IntentOut] | None = None,
           orders: list[OrderOut] | None = None, book: IntentBook | None = None,
           locks: LockConfig | None = None, locked: dict[str, Decimal] | None = None
           ) -> PublicSnapshot:
    """The public form of `snap`; with the intent `book`, each asset's locks too
    (`locked`: those locks, when the caller computed them already)."""
    k, e = snap.k, snap.e
    if locked is None:
        locked = {} if book is None else locked_in(book, snap.instruments, k,
                                                   locks or LockConfig())
    assets = sorted(k.wallets.keys() | k.open_notional.keys() | k.realized_pnl.keys()
                    | k.fees.keys() | k.funding.keys())

    def z(m: dict[str, Decimal], a: str) -> Decimal:
        return m.get(a, ZERO)

    ledger = LedgerK(
        assets={a: AssetK(
            capital=z(k.wallets, a), realized_pnl=z(k.realized_pnl, a), fees=z(k.fees, a),
            funding=z(k.funding, a), transfers=z(k.transfers, a),
            adjustments=z(k.adjustments, a), unrealized_pnl=z(k.unrealized_pnl, a),
            equity=k.equity.get(a, z(k.wallets, a)), open_notional=z(k.open_notional, a),
            used_margin=z(k.used_margin, a),
            available_margin=k.available_margin.get(a, z(k.wallets, a)),
            peak_capital=z(k.peak_capital, a), drawdown=z(k.drawdown, a),
            venue_rounding=z(k.venue_rounding, a), locked=z(locked, a),
            available_after_locks=k.available_margin.get(a, z(k.wallets, a)) - z(locked, a),
        ) for a in assets},
        positions={key: PositionK(
            symbol=p.symbol, position_side=p.position_side, qty=p.qty, avg_open=p.avg_open,
            mark=k.marks.get(p.symbol), leverage=k.leverage.get(p.symbol, Decimal(1)),
            notional=v.notional, unrealized_pnl=v.unrealized_pnl, margin=v.margin,
            settle=v.asset,
        ) for key, p in sorted(k.positions.items()) for v in (k.valuations[key],)},
        holdings={s: HoldingK(symbol=s, qty=h.qty, avg_cost=h.avg_open)
                  for s, h in sorted(k.holdings.items())},
        realized_by_symbol=dict(sorted(k.realized_by_symbol.items())),
        marks=dict(sorted(k.marks.items())),
    )
    venue = VenueE(
        balances=None if e.balances is None else {
            a: BalanceE(wallet=b.wallet, available=b.available)
            for a, b in sorted(e.balances.items())},
        margins=None if e.margins is None else {
            a: MarginE(asset=m.asset, used=m.used, maintenance=m.maintenance,
                       available=m.available) for a, m in sorted(e.margins.items())},
        balances_ts=e.balances_ts,
        positions=None if e.positions is None else {
            key: PositionE(symbol=p.symbol, position_side=p.position_side, qty=p.qty,
                           entry_price=p.entry_price, mark_price=p.mark_price,
                           unrealized_pnl=p.unrealized_pnl, leverage=p.leverage,
                           notional=p.notional)
            for key, p in sorted(e.positions.items())},
        positions_ts=e.positions_ts,
        notional=None if e.notional is None else dict(sorted(e.notional.items())),
        stale_reports=e.stale_reports,
    )
    r = snap.reconcile
    return PublicSnapshot(
        version=VERSION, seq=snap.seq, event_id=snap.source_event_id,
        event_kind=snap.event_kind, event_ts=snap.event_ts, now=snap.now,
        connected=snap.connected, halted=snap.halted, quarantined=snap.quarantined,
        k=ledger, e=venue,
        reconcile=ReconcileOut(
            verdict=r.verdict.value, expires_at=r.expires_at,
            checks=[CheckOut(rule=c.rule, subject=c.subject, verdict=c.verdict.value,
                             reason=c.reason, kernel=_text(c.kernel), venue=_text(c.venue),
                             expires_at=c.expires_at, explained=c.explained,
                             detail=c.detail) for c in r.checks]),
        intents=intents or [], orders=orders or [],
        instruments={s: InstrumentOut(
            kind=i.instrument_kind, base=i.base, quote=i.quote, settle=i.settle,
            tick_size=i.tick_size, lot_size=i.lot_size, min_notional=i.min_notional,
            contract_size=i.contract_size) for s, i in sorted(snap.instruments.items())},
        asset_precision={a: d.precision for a, d in sorted(snap.assets.items())},
    )


def book_out(book: IntentBook, statuses: frozenset[str] | None = None
             ) -> tuple[list[IntentOut], list[OrderOut]]:
    """The book's intents and the orders working them, in the public form, by intent id;
    only intents whose status is in `statuses`, when given (and their orders)."""
    intents: list[IntentOut] = []
    orders: list[OrderOut] = []
    for intent_id, i in sorted(book.intents.items()):
        o = book.orders[intent_id]
        if statuses is not None and o.status not in statuses:
            continue
        intents.append(IntentOut(
            intent_id=i.intent_id, strategy=i.strategy, symbol=i.symbol, side=i.side,
            order_type=i.order_type, qty=i.qty, price=i.price, trigger_price=i.trigger_price,
            time_in_force=i.time_in_force, reduce_only=i.reduce_only, post_only=i.post_only,
            oco_group=i.oco_group, revision=i.revision, status=o.status,
            created_ts=i.created_ts, updated_ts=i.updated_ts,
            cancel_requested=i.cancel_requested))
        if o.client_order_id is not None:
            orders.append(OrderOut(
                intent_id=o.intent_id, client_order_id=o.client_order_id,
                superseded=list(o.superseded), venue_order_id=o.venue_order_id,
                venue_status=o.venue_status, status=o.status, filled_qty=o.filled_qty,
                avg_fill_price=o.avg_fill_price, last_sync_ts=o.last_sync_ts, error=o.error))
    return intents, orders


_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(PublicSnapshot)


def encode(snap: PublicSnapshot) -> bytes:
    return _encoder.encode(snap)


def decode(data: bytes | str) -> PublicSnapshot:
    return _decoder.decode(data)


def schema() -> dict[str, Any]:
    """The JSON Schema of the public snapshot (docs/snapshot.schema.json)."""
    out: dict[str, Any] = msgspec.json.schema(PublicSnapshot)
    out["$id"] = "https://exchange-kernel/schemas/snapshot-v2.json"
    out["title"] = "exchange-kernel AccountSnapshotV2 (public wire form, version 2)"
    return out
