"""Venue facts: what a venue says happened, in past tense.

Each fact's `dedup_key` is built from the venue's own identity for it (trade id,
symbol + funding time, transfer id, report time), so the same fact delivered
twice (a reconnect, a REST backfill, a duplicate push) has the same key.
Signs are from the account's point of view: funding > 0 was received.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import ClassVar, Literal

import msgspec

from events.base import EventBase, key

Side = Literal["buy", "sell"]
PositionSide = Literal["both", "long", "short"]
InstrumentKind = Literal["linear", "inverse", "spot"]
Liquidity = Literal["maker", "taker", "unknown"]
OrderType = Literal["market", "limit", "stop", "take_profit", "stop_limit", "take_profit_limit"]
TimeInForce = Literal["GTC", "IOC", "FOK"]
OrderStatus = Literal["new", "partially_filled", "filled", "canceled", "rejected", "expired"]
TransferDirection = Literal["deposit", "withdrawal"]

KEY_SEP = "|"


def position_key(symbol: str, position_side: str) -> str:
    """`BTCUSDT` in one-way mode; `BTCUSDT|long` / `BTCUSDT|short` in hedge mode."""
    return symbol if position_side == "both" else f"{symbol}{KEY_SEP}{position_side}"


def fill_key(symbol: str, trade_id: str) -> str:
    """A fill's dedup key: the venue's trade id is unique per symbol."""
    return key("fill", symbol, trade_id)


def key_symbol(key: str) -> str:
    return key.split(KEY_SEP, 1)[0]


_digest_encoder = msgspec.json.Encoder(decimal_format="string")


def _digest(content: object) -> str:
    return hashlib.sha256(_digest_encoder.encode(content)).hexdigest()[:16]


class VenueFact(EventBase, frozen=True, kw_only=True):
    is_venue_fact: ClassVar[bool] = True


class InstrumentDefined(VenueFact, frozen=True, kw_only=True, tag="instrument_defined"):
    """The venue's trading rules for one symbol. A later definition replaces an earlier one."""

    symbol: str
    instrument_kind: InstrumentKind
    base: str
    quote: str
    settle: str
    tick_size: Decimal
    lot_size: Decimal
    min_notional: Decimal
    contract_size: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        self._check_times()
        for f in ("symbol", "base", "quote", "settle"):
            self._ident(f, getattr(self, f))
        if KEY_SEP in self.symbol:
            self._fail("symbol", self.symbol, f"must not contain {KEY_SEP!r}")
        self._decimal("tick_size", self.tick_size, positive=True)
        self._decimal("lot_size", self.lot_size, positive=True)
        self._decimal("min_notional", self.min_notional, nonneg=True)
        self._decimal("contract_size", self.contract_size, positive=True)
        if self.instrument_kind == "spot" and self.settle != self.quote:
            self._fail("settle", self.settle, f"must equal quote {self.quote!r} for spot")
        if self.instrument_kind == "spot" and self.contract_size != 1:
            self._fail("contract_size", self.contract_size, "must be 1 for spot")
        if self.instrument_kind == "inverse" and self.settle != self.base:
            self._fail("settle", self.settle, f"must equal base {self.base!r} for inverse")

    @property
    def dedup_key(self) -> str:
        return key("instrument", self.symbol, self.venue_ts)


Rounding = Literal["half_even", "half_up", "down"]


class AssetDefined(VenueFact, frozen=True, kw_only=True, tag="asset_defined"):
    """The venue's precision for amounts of one asset: it rounds balances, fees, funding
    and each fill's realized PnL to `precision` decimal places, the `rounding` way (8
    places for USDT on Binance USD-M). Reconcile uses it to reproduce the venue's figures
    from K's exact ones; a later definition replaces an earlier one."""

    asset: str
    precision: int
    rounding: Rounding = "half_even"

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("asset", self.asset)
        if not 0 <= self.precision <= 18:
            self._fail("precision", self.precision, "must be decimal places in [0, 18]")

    @property
    def dedup_key(self) -> str:
        return key("asset", self.asset, self.venue_ts)


class LeverageSet(VenueFact, frozen=True, kw_only=True, tag="leverage_set"):
    symbol: str
    leverage: Decimal

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("symbol", self.symbol)
        self._decimal("leverage", self.leverage, positive=True)

    @property
    def dedup_key(self) -> str:
        return key("leverage", self.symbol, self.venue_ts)


class MarkPriceObserved(VenueFact, frozen=True, kw_only=True, tag="mark_price_observed"):
    symbol: str
    price: Decimal

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("symbol", self.symbol)
        self._decimal("price", self.price, positive=True)

    @property
    def dedup_key(self) -> str:
        # Two marks may share a millisecond; the price (as written) tells them apart.
        return key("mark", self.symbol, self.venue_ts, str(self.price))


class OrderFilled(VenueFact, frozen=True, kw_only=True, tag="order_filled"):
    """One execution. `fee` is what the account paid (negative for a rebate).

    `venue_realized_pnl` is the venue's own realized-PnL figure for this fill, when
    it reports one; rule R2 compares it with the kernel's.
    """

    symbol: str
    trade_id: str
    order_id: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    client_order_id: str | None = None
    liquidity: Liquidity = "unknown"
    position_side: PositionSide = "both"
    venue_realized_pnl: Decimal | None = None

    def __post_init__(self) -> None:
        self._check_times()
        for f in ("symbol", "trade_id", "order_id", "fee_currency"):
            self._ident(f, getattr(self, f))
        self._opt_ident("client_order_id", self.client_order_id)
        self._decimal("qty", self.qty, positive=True)
        self._decimal("price", self.price, positive=True)
        self._decimal("fee", self.fee)
        self._opt_decimal("venue_realized_pnl", self.venue_realized_pnl)

    @property
    def dedup_key(self) -> str:
        return fill_key(self.symbol, self.trade_id)


class OrderStatusReported(VenueFact, frozen=True, kw_only=True, tag="order_status_reported"):
    """The venue's view of one order at one moment."""

    symbol: str
    order_id: str
    status: OrderStatus
    side: Side
    order_type: OrderType
    qty: Decimal
    filled_qty: Decimal
    client_order_id: str | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    avg_fill_price: Decimal | None = None
    time_in_force: TimeInForce = "GTC"
    reduce_only: bool = False
    post_only: bool = False

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("symbol", self.symbol)
        self._ident("order_id", self.order_id)
        self._opt_ident("client_order_id", self.client_order_id)
        self._decimal("qty", self.qty, positive=True)
        self._decimal("filled_qty", self.filled_qty, nonneg=True)
        if self.filled_qty > self.qty:
            self._fail("filled_qty", self.filled_qty, f"must be <= qty {self.qty}")
        self._opt_decimal("price", self.price, positive=True)
        self._opt_decimal("trigger_price", self.trigger_price, positive=True)
        self._opt_decimal("avg_fill_price", self.avg_fill_price, positive=True)

    @property
    def dedup_key(self) -> str:
        return key("order", self.symbol, self.order_id, self.venue_ts, self.status, self.filled_qty)


class OrderNotFound(VenueFact, frozen=True, kw_only=True, tag="order_not_found"):
    """The venue answered a query for this client order id: it has no such order. Venues
    briefly fail to find orders they have just accepted (Binance: seconds after a create,
    minutes for conditional orders), so one answer is not evidence of anything; the intent
    reconciler counts them."""

    symbol: str
    client_order_id: str

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("symbol", self.symbol)
        self._ident("client_order_id", self.client_order_id)

    @property
    def dedup_key(self) -> str:
        return key("not_found", self.client_order_id, self.venue_ts)


class AssetBalance(msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True):
    asset: str
    wallet: Decimal
    available: Decimal | None = None


class MarginReport(msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True):
    """Account-level margin figures, all in `asset`. A figure not reported is None."""

    asset: str
    used: Decimal | None = None
    maintenance: Decimal | None = None
    available: Decimal | None = None


class BalanceReported(VenueFact, frozen=True, kw_only=True, tag="balance_reported"):
    """A complete balance report: it replaces the previous one whole. `margin` is the
    account-level margin summary; `margins` holds per-asset figures where the venue gives
    them (Binance's account `assets[].initialMargin`), one report per asset at most."""

    balances: tuple[AssetBalance, ...]
    margin: MarginReport | None = None
    margins: tuple[MarginReport, ...] = ()

    def __post_init__(self) -> None:
        self._check_times()
        seen: set[str] = set()
        for i, b in enumerate(self.balances):
            self._ident(f"balances[{i}].asset", b.asset)
            if b.asset in seen:
                self._fail(f"balances[{i}].asset", b.asset, "must not repeat")
            seen.add(b.asset)
            self._decimal(f"balances[{i}].wallet", b.wallet)
            self._opt_decimal(f"balances[{i}].available", b.available)
        reports = [] if self.margin is None else [("margin", self.margin)]
        reports += [(f"margins[{i}]", m) for i, m in enumerate(self.margins)]
        assets: set[str] = set()
        for where, m in reports:
            self._ident(f"{where}.asset", m.asset)
            if m.asset in assets:
                self._fail(f"{where}.asset", m.asset, "must not repeat a margin asset")
            assets.add(m.asset)
            self._opt_decimal(f"{where}.used", m.used, nonneg=True)
            self._opt_decimal(f"{where}.maintenance", m.maintenance, nonneg=True)
            self._opt_decimal(f"{where}.available", m.available)

    @property
    def content_digest(self) -> str:
        """16 hex digits of the report's content: two reports in one millisecond differ."""
        # A report without per-asset margins digests as it did before they existed.
        if self.margins:
            return _digest((self.balances, self.margin, self.margins))
        return _digest((self.balances, self.margin))

    @property
    def dedup_key(self) -> str:
        return key("balance", self.venue_ts, self.content_digest)


class ReportedPosition(
    msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True
):
    """One position as the venue reports it. `qty` is signed (short < 0)."""

    symbol: str
    qty: Decimal
    position_side: PositionSide = "both"
    entry_price: Decimal | None = None
    mark_price: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    leverage: Decimal | None = None
    #: The venue's own open notional of the position (|qty|·cs·mark in the settlement
    #: asset), where it reports one (Binance's positionRisk `notional`).
    notional: Decimal | None = None

    @property
    def key(self) -> str:
        return position_key(self.symbol, self.position_side)


class PositionsReported(VenueFact, frozen=True, kw_only=True, tag="positions_reported"):
    """A complete positions report: it replaces the previous one whole; absent means flat."""

    positions: tuple[ReportedPosition, ...]

    def __post_init__(self) -> None:
        self._check_times()
        seen: set[str] = set()
        for i, p in enumerate(self.positions):
            self._ident(f"positions[{i}].symbol", p.symbol)
            if p.key in seen:
                self._fail(f"positions[{i}]", p.key, "must not repeat a position key")
            seen.add(p.key)
            self._decimal(f"positions[{i}].qty", p.qty)
            if (p.position_side == "long" and p.qty < 0) or (
                p.position_side == "short" and p.qty > 0
            ):
                self._fail(f"positions[{i}].qty", p.qty, f"has the wrong sign for {p.key}")
            self._opt_decimal(f"positions[{i}].entry_price", p.entry_price, nonneg=True)
            self._opt_decimal(f"positions[{i}].mark_price", p.mark_price, positive=True)
            self._opt_decimal(f"positions[{i}].unrealized_pnl", p.unrealized_pnl)
            self._opt_decimal(f"positions[{i}].leverage", p.leverage, positive=True)
            self._opt_decimal(f"positions[{i}].notional", p.notional)

    @property
    def content_digest(self) -> str:
        """16 hex digits of the report's content: two reports in one millisecond differ."""
        return _digest(self.positions)

    @property
    def dedup_key(self) -> str:
        return key("positions", self.venue_ts, self.content_digest)


class FundingSettled(VenueFact, frozen=True, kw_only=True, tag="funding_settled"):
    """A funding payment. `amount` > 0 was received, < 0 was paid, in `asset`.

    In hedge mode the venue settles the long and the short side of one symbol at the
    same time, as two payments: `position_side` tells them apart. `funding_id` is the
    venue's own id for the payment (Binance's income `tranId`), where it has one.
    """

    symbol: str
    asset: str
    amount: Decimal
    rate: Decimal | None = None
    position_side: PositionSide = "both"
    funding_id: str | None = None

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("symbol", self.symbol)
        self._ident("asset", self.asset)
        self._decimal("amount", self.amount)
        self._opt_decimal("rate", self.rate)
        self._opt_ident("funding_id", self.funding_id)

    @property
    def dedup_key(self) -> str:
        # The venue's id where it gives one; else what tells two payments at one time
        # apart: the symbol, the side (hedge mode pays both sides at once) and the asset.
        if self.funding_id is not None:
            return key("funding", self.symbol, "id", self.funding_id)
        return key("funding", self.symbol, self.venue_ts, self.position_side, self.asset)


class TransferCompleted(VenueFact, frozen=True, kw_only=True, tag="transfer_completed"):
    """A deposit into or withdrawal from the account. `amount` is always > 0."""

    transfer_id: str
    asset: str
    direction: TransferDirection
    amount: Decimal

    def __post_init__(self) -> None:
        self._check_times()
        self._ident("transfer_id", self.transfer_id)
        self._ident("asset", self.asset)
        self._decimal("amount", self.amount, positive=True)

    @property
    def signed_amount(self) -> Decimal:
        return self.amount if self.direction == "deposit" else -self.amount

    @property
    def dedup_key(self) -> str:
        return key("transfer", self.transfer_id)
