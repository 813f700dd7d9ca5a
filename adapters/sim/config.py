"""The simulated venue's settings (the `[venue.sim]` table of the kernel's TOML config).

Everything random is drawn from one `random.Random(seed)`, so a run is reproducible.
Money is Decimal (TOML strings); durations are seconds (float) unless named `_ms`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from events.facts import Rounding

#: Decimal places an asset's amounts are kept to (the range `asset_defined` allows).
Places = Annotated[int, msgspec.Meta(ge=0, le=18)]


class SimInstrument(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    symbol: str
    kind: Literal["linear", "inverse", "spot"] = "linear"
    base: str
    quote: str
    settle: str
    tick_size: Decimal
    lot_size: Decimal
    min_notional: Decimal = Decimal(5)
    contract_size: Decimal = Decimal(1)
    #: The price path: a seeded random walk from `start_price` with relative step
    #: `volatility` per tick, or the (timestamp_ms, price) rows of `price_csv`, replayed.
    start_price: Decimal
    volatility: Decimal = Decimal("0.0005")
    price_csv: str | None = None
    leverage: Decimal = Decimal(10)
    #: Funding rate per funding interval (longs pay shorts when positive).
    funding_rate: Decimal = Decimal("0.0001")


class SimFaults(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Faults on the push stream only; resync queries always tell the truth."""

    duplicate: float = 0.0  # probability a push is delivered twice
    reorder: float = 0.0  # probability a push is held back behind the next one
    drop: float = 0.0  # probability a push is lost (recoverable only through resync)
    malformed: float = 0.0  # probability a push is replaced by a malformed payload
    stale_reports: float = 0.0  # probability a balance/positions report is delayed 5x
    disconnect_every_s: float | None = None  # mean seconds between forced disconnects


class SimDrift(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Holes in the venue's own reporting, which no resync can repair: its reports
    disagree with the facts it gives. For the drift table (docs/reconcile.md): the kernel
    must turn each into an ERROR, never explain it away. Off by default."""

    wallet: Decimal = Decimal(0)  # added to every reported wallet of the first settle asset
    position_lots: int = 0  # lots added to each reported open position
    hide_funding: bool = False  # funding is booked, but neither pushed nor in its history


class SimTrader(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A scripted client trading this account on its own (until strategies exist), so the
    ledger has fills to show: every `every_s` seconds, a random market or limit order."""

    enabled: bool = True
    every_s: float = 2.0
    max_qty_lots: int = 50


class SimConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    seed: int = 1
    #: Binance's dualSidePosition: each perpetual symbol has a LONG and a SHORT position,
    #: and every order says which one it opens or closes (`adapters.sim.engine`).
    hedge_mode: bool = False
    #: The venue keeps every asset's amounts (wallets, fees, funding, each fill's realized
    #: PnL) to this many decimal places, rounded the `rounding` way, and reports them so
    #: (Binance USD-M: 8 for USDT); `asset_precision` names the exceptions per asset.
    precision: Places = 8
    asset_precision: dict[str, Places] = msgspec.field(default_factory=dict)
    rounding: Rounding = "half_even"
    instruments: tuple[SimInstrument, ...] = (
        SimInstrument(symbol="BTCUSDT", base="BTC", quote="USDT", settle="USDT",
                      tick_size=Decimal("0.1"), lot_size=Decimal("0.001"),
                      start_price=Decimal(60000)),
        SimInstrument(symbol="ETHUSDT", base="ETH", quote="USDT", settle="USDT",
                      tick_size=Decimal("0.01"), lot_size=Decimal("0.001"),
                      start_price=Decimal(3000), leverage=Decimal(5)),
    )
    #: The account's opening deposits, one transfer each.
    deposits: dict[str, Decimal] = msgspec.field(default_factory=lambda: {"USDT": Decimal(10000)})
    tick_s: float = 0.25  # mark price update interval
    funding_interval_s: float = 60.0
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0004")
    report_delay_ms: int = 200  # balance and positions reports follow fills by this much
    faults: SimFaults = SimFaults()
    drift: SimDrift = SimDrift()
    trader: SimTrader = SimTrader()
    #: Flood mode for benchmarks: push this many extra mark prices per second (0 = off).
    flood_per_s: int = 0

    def precision_of(self, asset: str) -> int:
        return self.asset_precision.get(asset, self.precision)

    def assets(self) -> list[str]:
        """Every asset the account can hold an amount of: the deposits, the settlement
        assets of the derivatives, and the base and quote of each spot pair."""
        held = set(self.deposits)
        for i in self.instruments:
            held |= {i.base, i.quote} if i.kind == "spot" else {i.settle}
        return sorted(held)
