"""The instruments the fake lists, with Binance's real USD-M trading rules.

The defaults are BTCUSDT and ETHUSDT perpetuals with the filters `GET /fapi/v1/exchangeInfo`
reported for them (tick 0.10 / 0.01, step 0.001, MIN_NOTIONAL 100 / 20, PERCENT_PRICE 1.05 /
0.95) and their first leverage brackets from `GET /fapi/v1/leverageBracket`. Field meanings:
https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Exchange-Information
and .../account/rest-api/Notional-and-Leverage-Brackets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal as D


@dataclass(frozen=True)
class Bracket:
    """One notional bracket: up to `cap` notional, at most `max_leverage`, maintenance `mmr`."""

    bracket: int
    max_leverage: int
    cap: D
    floor: D
    mmr: D
    cum: D


@dataclass(frozen=True)
class Instrument:
    symbol: str
    base: str
    quote: str
    tick: D
    step: D
    min_qty: D
    max_qty: D
    market_max_qty: D
    min_notional: D
    min_price: D
    max_price: D
    price_precision: int
    qty_precision: int
    brackets: tuple[Bracket, ...]
    mark: D
    percent_up: D = D("1.0500")
    percent_down: D = D("0.9500")
    default_leverage: int = 20
    onboard_ms: int = 1569398400000
    margin_asset: str = field(default="")

    def __post_init__(self) -> None:
        if not self.margin_asset:
            object.__setattr__(self, "margin_asset", self.quote)

    @property
    def max_leverage(self) -> int:
        return self.brackets[0].max_leverage

    def bracket_for(self, notional: D) -> Bracket:
        for b in self.brackets:
            if notional <= b.cap:
                return b
        return self.brackets[-1]


def default_instruments() -> dict[str, Instrument]:
    btc = Instrument(
        symbol="BTCUSDT", base="BTC", quote="USDT", tick=D("0.10"), step=D("0.001"),
        min_qty=D("0.001"), max_qty=D("1000"), market_max_qty=D("120"), min_notional=D("100"),
        min_price=D("556.80"), max_price=D("4529764"), price_precision=2, qty_precision=3,
        mark=D("60000.00"),
        brackets=(
            Bracket(1, 125, D("50000"), D("0"), D("0.004"), D("0")),
            Bracket(2, 100, D("600000"), D("50000"), D("0.005"), D("50")),
            Bracket(3, 75, D("3000000"), D("600000"), D("0.0065"), D("950")),
            Bracket(4, 50, D("12000000"), D("3000000"), D("0.01"), D("11450")),
        ),
    )
    eth = Instrument(
        symbol="ETHUSDT", base="ETH", quote="USDT", tick=D("0.01"), step=D("0.001"),
        min_qty=D("0.001"), max_qty=D("10000"), market_max_qty=D("2000"), min_notional=D("20"),
        min_price=D("39.86"), max_price=D("306177"), price_precision=2, qty_precision=3,
        mark=D("3000.00"), onboard_ms=1569398400000,
        brackets=(
            Bracket(1, 125, D("50000"), D("0"), D("0.004"), D("0")),
            Bracket(2, 100, D("600000"), D("50000"), D("0.005"), D("50")),
            Bracket(3, 75, D("3000000"), D("600000"), D("0.0065"), D("950")),
        ),
    )
    return {btc.symbol: btc, eth.symbol: eth}
