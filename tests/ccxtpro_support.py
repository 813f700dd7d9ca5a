"""Shared by the ccxt.pro adapter's tests: the fake Binance USD-M venue (tests/fakebinance)
and the adapter pointed at it by URL overrides only, as a user would configure it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal as D
from typing import Any

import msgspec
from fakebinance import DEFAULT_KEY, DEFAULT_SECRET, EngineConfig, FakeBinance, VenueConfig

from adapters.ccxtpro.config import CcxtProSettings
from adapters.ccxtpro.venue import CcxtProVenue
from events.codec import Event
from events.orders import AmendOrder, CancelOrder, PlaceOrder
from kernel.daemon.config import CcxtProConfig, Config, load_config

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
SYMBOLS = (BTC, ETH)
#: ccxt's pacing scaled down for a loopback venue (Binance's real figure is 50 ms/weight).
FAST = CcxtProSettings(rate_limit_ms=1.0, report_refresh_s=0.05, request_timeout_s=5.0)
_ids = itertools.count(1)


def fake(*, hedge: bool = False, wallet: dict[str, D] | None = None, **kw: Any) -> FakeBinance:
    """A venue whose account starts empty (`wallet` = {}): the opening money arrives as a
    deposit the kernel can see in the income history."""
    return FakeBinance(VenueConfig(engine=EngineConfig(wallet=wallet or {}, hedge_mode=hedge),
                                   mark_interval_s=kw.pop("mark_interval_s", 0.5), **kw))


def ccxtpro_config(fb: FakeBinance, settings: CcxtProSettings = FAST,
                   symbols: tuple[str, ...] = SYMBOLS) -> CcxtProConfig:
    return CcxtProConfig(exchange="binanceusdm", symbols=symbols, rest_url=fb.rest_url,
                         ws_url=f"ws://{fb.config.host}:{fb.port}", adapter=settings)


def adapter(fb: FakeBinance, settings: CcxtProSettings = FAST, *, key: str = DEFAULT_KEY,
            secret: str = DEFAULT_SECRET) -> CcxtProVenue:
    return CcxtProVenue(ccxtpro_config(fb, settings), api_key=key, secret=secret)


@asynccontextmanager
async def connected(fb: FakeBinance, settings: CcxtProSettings = FAST
                    ) -> AsyncIterator[CcxtProVenue]:
    v = adapter(fb, settings)
    await v.connect()
    try:
        yield v
    finally:
        await v.close()


def daemon_config(fb: FakeBinance, settings: CcxtProSettings = FAST, **kernel: Any) -> Config:
    base = load_config(None)
    return msgspec.structs.replace(
        base,
        kernel=msgspec.structs.replace(base.kernel, **{
            "resync_every_s": 1.0, "resync_silence_s": 1.0, "status_every_s": 1.0, **kernel}),
        venue=msgspec.structs.replace(base.venue, kind="ccxtpro",
                                      ccxtpro=ccxtpro_config(fb, settings)),
        metrics=msgspec.structs.replace(base.metrics, enabled=False))


def place(side: str = "buy", qty: str = "0.002", order_type: str = "market",
          symbol: str = BTC, cid: str | None = None, **kw: Any) -> PlaceOrder:
    n = next(_ids)
    return PlaceOrder(venue_ts=0, command_id=f"cmd-{n}", intent_id=f"intent-{n}",
                      client_order_id=cid or f"t-{n}", symbol=symbol, side=side,  # type: ignore[arg-type]
                      order_type=order_type, qty=D(qty), **kw)  # type: ignore[arg-type]


def cancel(cid: str, symbol: str = BTC) -> CancelOrder:
    n = next(_ids)
    return CancelOrder(venue_ts=0, command_id=f"cmd-{n}", intent_id="intent", symbol=symbol,
                       client_order_id=cid)


def amend(cid: str, symbol: str = BTC, **kw: Any) -> AmendOrder:
    n = next(_ids)
    return AmendOrder(venue_ts=0, command_id=f"cmd-{n}", intent_id="intent", symbol=symbol,
                      client_order_id=cid, **kw)


async def collect(facts: AsyncIterator[Event], until: Callable[[list[Event]], bool],
                  timeout: float = 10.0) -> list[Event]:
    """Facts until `until(seen)` holds."""
    seen: list[Event] = []

    async def run() -> list[Event]:
        async for ev in facts:
            seen.append(ev)
            if until(seen):
                return seen
        raise AssertionError(f"facts ended after {seen}")

    return await asyncio.wait_for(run(), timeout)
