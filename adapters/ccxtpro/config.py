"""The ccxt.pro adapter's own settings (the `[venue.ccxtpro.adapter]` table).

The venue itself (exchange id, symbols, ccxt options, URL overrides, the names of the
credential variables) is `kernel.daemon.config.CcxtProConfig`; this table holds how the
adapter drives it. Durations are seconds. Every default is what the reference venue
(Binance USD-M) wants; docs/venues.md explains each.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from events.facts import Rounding

Seconds = Annotated[float, msgspec.Meta(gt=0)]
Places = Annotated[int, msgspec.Meta(ge=0, le=18)]
Positive = Annotated[int, msgspec.Meta(gt=0)]


class CcxtProSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    #: The adapter renews the user-data listenKey this often itself (ccxt's Python
    #: keep-alive does not reschedule, see docs/venues.md). Binance expires a key that
    #: was not renewed for 60 minutes; ccxt's own rate is 20 minutes.
    listen_key_keepalive_s: Seconds = 1200.0
    #: After an account push (a balance or position change) the adapter asks REST for
    #: the complete balance and position reports, at most once per this many seconds.
    report_refresh_s: Seconds = 0.5
    #: How far back a query reaches when the kernel has no watermark yet (its first
    #: start): fills, funding and transfers older than this are not asked for.
    history_days: Annotated[float, msgspec.Meta(gt=0, le=180)] = 7.0
    #: A REST call that has not answered after this long is an unknown outcome.
    request_timeout_s: Seconds = 10.0
    #: ccxt's pacing of REST calls, in ms per unit of the endpoint's weight (ccxt's
    #: `rateLimit`; not set: ccxt's own figure for the exchange, 50 for Binance, which
    #: keeps under Binance's 2400 weight per minute). Only a local test venue wants less.
    rate_limit_ms: Annotated[float, msgspec.Meta(gt=0)] | None = None
    #: Decimal places the venue keeps an asset's money at, where the markets do not say
    #: (Binance USD-M keeps every wallet asset at 8); `asset_precision` names exceptions.
    default_asset_precision: Places = 8
    asset_precision: dict[str, Places] = msgspec.field(default_factory=dict)
    #: How the venue rounds to that precision (Binance does not document it).
    rounding: Rounding = "half_even"
    #: Pushes waiting for the kernel before the adapter drops the session as too slow
    #: (the resync after the reconnect recovers what it held).
    max_backlog: Positive = 50_000

    def precision_of(self, asset: str, from_markets: int | None) -> int:
        """An asset's precision: the configured exception, else the markets', else the
        default."""
        if asset in self.asset_precision:
            return self.asset_precision[asset]
        return self.default_asset_precision if from_markets is None else from_markets
