"""The account book: wallet, positions, trades and income, in exact decimals.

Position accounting is Binance's: average entry price per position key (symbol, and side in
hedge mode); a reducing fill realizes `(price - entry) * closed_qty` for a long and
`(entry - price) * closed_qty` for a short, leaving the entry price unchanged; a one-way fill
that crosses zero realizes only the closing part and opens the rest at the fill price.

Rounding, as Binance books it: realized PnL (`rp` on the stream, `realizedPnl` on
`/fapi/v1/userTrades`), commission, funding and every wallet movement are amounts with 8
decimals. Binance's own docs show a trade with `"realizedPnl": "-0.91539999"` where the exact
value is -0.9154 (Account-Trade-List example): the venue truncates toward zero after its own
float arithmetic. The fake truncates every such amount (realized PnL, commission, funding) from
the *exact* decimal toward zero at 8 places (ROUND_DOWN, `q8`), so it reproduces the truncation
but not float artefacts like that one. Entry prices are kept at full precision (the PnL uses
them unrounded) and shown with 8 decimals. A kernel that computes realized PnL exactly differs
from the venue's `rp` by less than 1e-8 per fill, always toward zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN
from decimal import Decimal as D

ZERO = D(0)
EIGHT = D("0.00000001")


def q8(x: D) -> D:
    """An amount as Binance books it: 8 decimals, truncated toward zero."""
    return x.quantize(EIGHT, rounding=ROUND_DOWN)


@dataclass
class Position:
    """One position key. `amount` is signed: a SHORT side always holds a negative amount."""

    symbol: str
    side: str  # BOTH, LONG or SHORT
    amount: D = ZERO
    entry: D = ZERO
    realized: D = ZERO  # accumulated pre-fee realized PnL, the stream's `cr`
    update_ms: int = 0

    def apply_fill(self, signed_qty: D, price: D) -> D:
        """Book a fill of `signed_qty` (+ buy, - sell) at `price`; return the exact realized PnL.

        The caller rounds the result (`q8`) and adds the rounded amount to `realized`.
        """
        if signed_qty == 0:
            raise ValueError("a fill needs a nonzero quantity")
        old = self.amount
        if old == 0 or (old > 0) == (signed_qty > 0):
            new = old + signed_qty
            self.entry = (self.entry * abs(old) + price * abs(signed_qty)) / abs(new)
            self.amount = new
            return ZERO
        closing = min(abs(signed_qty), abs(old))
        direction = D(1) if old > 0 else D(-1)
        realized = (price - self.entry) * closing * direction
        new = old + signed_qty
        if new == 0:
            self.entry = ZERO
        elif (new > 0) != (old > 0):
            self.entry = price  # crossed zero: the remainder opens at the fill price
        self.amount = new
        return realized

    def unrealized(self, mark: D) -> D:
        return (mark - self.entry) * self.amount if self.amount else ZERO

    def notional(self, mark: D) -> D:
        return self.amount * mark


@dataclass(frozen=True)
class Trade:
    """One of the account's fills, as `/fapi/v1/userTrades` lists it."""

    id: int
    order_id: int
    symbol: str
    side: str
    position_side: str
    price: D
    qty: D
    commission: D
    commission_asset: str
    realized_pnl: D
    maker: bool
    time: int

    @property
    def quote_qty(self) -> D:
        return self.price * self.qty


@dataclass(frozen=True)
class Income:
    """One line of `/fapi/v1/income`: TRANSFER, REALIZED_PNL, COMMISSION, FUNDING_FEE, ..."""

    symbol: str
    income_type: str
    income: D
    asset: str
    info: str
    time: int
    tran_id: int
    trade_id: str = ""


@dataclass
class Book:
    """Balances and positions of one USD-M account."""

    wallet: dict[str, D] = field(default_factory=dict)
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    income: list[Income] = field(default_factory=list)

    def position(self, symbol: str, side: str) -> Position:
        key = (symbol, side)
        if key not in self.positions:
            self.positions[key] = Position(symbol, side)
        return self.positions[key]

    def credit(self, asset: str, amount: D) -> D:
        """Move the wallet by an already-rounded `amount`; return the new balance."""
        self.wallet[asset] = self.wallet.get(asset, ZERO) + amount
        return self.wallet[asset]

    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.amount != 0]
