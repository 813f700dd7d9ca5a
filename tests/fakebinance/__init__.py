"""A fake Binance USD-M futures venue on loopback, speaking Binance's real wire format.

Unmodified ccxt (verified with 4.5.90: `ccxt.pro.binanceusdm`, `ccxt.async_support`) talks to
it over HTTP and websockets, configured by URL overrides only. Binance's formats come from its
USD-M docs (https://developers.binance.com/docs/derivatives/usds-margined-futures/, scraped
2026-05-28 in github.com/shubhamtaywade82/binance-docs-scraper) and from ccxt's own source;
each module cites its pages.

URL-override recipe (what `FakeBinance.apply_to(exchange)` does)
-----------------------------------------------------------------
Start the venue, then on a `ccxt.pro.binanceusdm({"apiKey": ..., "secret": ...})`:

    rest = venue.rest_url                      # "http://127.0.0.1:<port>"
    for name, url in exchange.urls["api"].items():
        if isinstance(url, str):               # keep each base's path, swap scheme and host:
            exchange.urls["api"][name] = rest + urlsplit(url).path
    exchange.urls["api"]["ws"]["linear"] = venue.ws_url   # "ws://127.0.0.1:<port>/ws"

The keys binanceusdm actually uses are `fapiPublic` (/fapi/v1: exchangeInfo, time,
premiumIndex), `fapiPrivate` (/fapi/v1: listenKey, order, openOrders, userTrades, income,
leverageBracket, algoOrder, positionSide/dual, symbolConfig), `fapiPrivateV2` and
`fapiPrivateV3` (/fapi/v2|v3: account, positionRisk), `fapiPublicV2`/`fapiPublicV3`, `sapi`
(/sapi/v1: `load_markets` calls `capital/config/getall` through `fetch_currencies` whenever
keys are set; set `options["fetchCurrencies"] = False` instead if you prefer not to override
it), and `ws.linear`. Moving *every* REST base, as above, guarantees nothing leaks to the real
Binance. ccxt derives the websocket URLs from `ws.linear` ending in `/ws`: user data on
`<origin>/private/ws?listenKey=<key>`, mark prices and tickers on `<origin>/market/ws/<n>`
with a JSON SUBSCRIBE (pro/binance.py get_ws_url, get_private_ws_url).

Caution for adapters: ccxt picks Binance's per-market error table by URL prefix
(binance.get_exceptions_by_url matches `https://fapi.binance.com/`...), so behind an override
only the generic table applies: -1021 InvalidNonce, -1022/-2014/-2015 AuthenticationError,
-2011/-2013 OrderNotFound, -4061 OperationRejected survive, but -2019, -2021, -2022 and -4164
arrive as plain `ExchangeError`. Map by the `code` in the body (`exchange.exceptions["linear"]`
holds Binance's linear table) rather than by the exception class alone.

Python API for tests: `FakeBinance` / `VenueConfig` (venue.py: start/stop, URLs, actions),
fault injection (faults.py), the account and matching rules (engine.py, algo.py, book.py,
risk.py), a ready ccxt client (`client.ccxt_client`, the only module that imports ccxt), and
`/_fake/...` HTTP control calls for a venue in another process (control.py). Standalone, from
the repository root: `python -m tests.fakebinance --port 8765 --api-key K --api-secret S`
(see __main__.py). Requires aiohttp (a ccxt dependency, already in requirements.lock).
"""

from .engine import EngineConfig
from .errors import BinanceError
from .markets import Instrument, default_instruments
from .venue import DEFAULT_KEY, DEFAULT_SECRET, FakeBinance, VenueConfig

__all__ = ["DEFAULT_KEY", "DEFAULT_SECRET", "BinanceError", "EngineConfig", "FakeBinance",
           "Instrument", "VenueConfig", "default_instruments"]
