"""RemoteSimVenue: the venue contract over a real websocket on loopback to the sim server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D

import pytest
from test_sim_venue import fast, quiet
from venue_contract import ContractMarket, VenueContract
from websockets.asyncio.server import serve

from adapters.sim.config import SimConfig
from adapters.sim.remote import RemoteSimVenue
from adapters.sim.server import SimServer
from kernel.errors import VenueUnavailable


async def served(cfg: SimConfig) -> AsyncIterator[RemoteSimVenue]:
    server = SimServer(fast(cfg))
    async with serve(server.handle, "127.0.0.1", 0) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        v = RemoteSimVenue(f"ws://127.0.0.1:{port}")
        await v.connect()
        yield v
        await v.close()


@pytest.fixture
async def venue() -> AsyncIterator[RemoteSimVenue]:
    async for v in served(quiet()):
        yield v


@pytest.fixture
async def hedge_venue() -> AsyncIterator[RemoteSimVenue]:
    async for v in served(quiet(hedge_mode=True)):
        yield v


@pytest.fixture
def market() -> ContractMarket:
    return ContractMarket(symbol="BTCUSDT", qty=D("0.002"), resting_buy_price=D(30000),
                          off_lot_qty=D("0.0015"))


class TestRemoteSimVenueContract(VenueContract):
    pass


async def test_no_server_is_venue_unavailable() -> None:
    v = RemoteSimVenue("ws://127.0.0.1:9")  # the discard port: nothing listens there
    with pytest.raises(VenueUnavailable, match="cannot reach"):
        await v.connect()
