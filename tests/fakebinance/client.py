"""A real ccxt.pro binanceusdm client pointed at a `FakeBinance`, for tests.

    async with FakeBinance() as venue, ccxt_client(venue) as exchange:
        await exchange.load_markets()

Nothing is patched: the client is ccxt's own, configured by the URL overrides of
`FakeBinance.apply_to` and the venue's test keys (or the `api_key` / `secret` given).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import ccxt.pro  # type: ignore[import-untyped]

from .venue import FakeBinance


@asynccontextmanager
async def ccxt_client(venue: FakeBinance, *, api_key: str | None = None,
                      secret: str | None = None, options: dict[str, Any] | None = None,
                      throttle: bool = True) -> AsyncIterator[Any]:
    """`throttle=False` turns off ccxt's client-side rate limiter (`enableRateLimit`), which
    only delays requests (a weight-30 call such as /fapi/v1/income waits 1.5 s); the wire
    traffic is the same."""
    exchange = ccxt.pro.binanceusdm({
        "apiKey": venue.config.api_key if api_key is None else api_key,
        "secret": venue.config.api_secret if secret is None else secret,
        "options": options or {},
        "enableRateLimit": throttle,
    })
    venue.apply_to(exchange)
    try:
        yield exchange
    finally:
        await exchange.close()
