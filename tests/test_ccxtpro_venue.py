"""The ccxt.pro adapter against the fake Binance USD-M venue (tests/fakebinance): ccxt's
real, unmodified code over real HTTP and websockets on loopback, configured by URL
overrides only. The venue contract first, then what only a real venue does: listenKey
renewal and expiry, malformed and duplicate pushes, a stop that triggers, history paged
past one week, rate-limit headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D

import msgspec
import pytest
from ccxtpro_support import (
    BTC,
    FAST,
    adapter,
    amend,
    cancel,
    collect,
    connected,
    fake,
    place,
)
from fakebinance import FakeBinance
from venue_contract import ContractMarket, VenueContract

from adapters.ccxtpro.venue import CcxtProVenue
from events.codec import decode, encode
from events.control import InputQuarantined
from events.facts import (
    FundingSettled,
    MarkPriceObserved,
    OrderFilled,
    OrderStatusReported,
    TransferCompleted,
)
from events.orders import CommandAcknowledged, CommandRejected
from kernel.errors import VenueUnavailable


@pytest.fixture
async def fb() -> AsyncIterator[FakeBinance]:
    async with fake(wallet={"USDT": D(10000)}) as venue:
        yield venue


@pytest.fixture
async def venue(fb: FakeBinance) -> AsyncIterator[CcxtProVenue]:
    async with connected(fb) as v:
        yield v


@pytest.fixture
async def hedge_venue() -> AsyncIterator[CcxtProVenue]:
    async with fake(hedge=True, wallet={"USDT": D(10000)}) as fb, connected(fb) as v:
        yield v


@pytest.fixture
def market() -> ContractMarket:
    return ContractMarket(symbol=BTC, qty=D("0.002"), resting_buy_price=D(59000),
                          off_lot_qty=D("0.0015"))


class TestCcxtProVenueContract(VenueContract):
    pass


# -- the user-data stream ---------------------------------------------------------------


async def test_a_pushed_fill_is_the_fill_rest_backfills(fb: FakeBinance,
                                                         venue: CcxtProVenue) -> None:
    facts = venue.facts()
    cmd = place(qty="0.003")
    await venue.place(cmd)
    seen = await collect(facts, lambda s: any(isinstance(e, OrderFilled) for e in s))
    pushed = next(e for e in seen if isinstance(e, OrderFilled))
    assert (pushed.client_order_id, pushed.fee_currency, pushed.venue_realized_pnl) == (
        cmd.client_order_id, "USDT", D(0))
    fresh = adapter(fb)  # a restarted kernel: it has never seen the order's client id
    await fresh.connect()
    try:
        assert [f for f in await fresh.fills_since(0) if f.trade_id == pushed.trade_id] == [pushed]
    finally:
        await fresh.close()


async def test_a_duplicate_push_is_the_same_event_and_a_malformed_one_is_quarantined(
        fb: FakeBinance, venue: CcxtProVenue) -> None:
    facts = venue.facts()
    fb.faults.duplicate_next_push(2)
    await venue.place(place())
    fills = await collect(facts, lambda s: sum(isinstance(e, OrderFilled) for e in s) >= 2)
    a, b = [e for e in fills if isinstance(e, OrderFilled)]
    assert a == b and a.dedup_key == b.dedup_key
    # The next push after a market order is its NEW update: corrupt what it carries.
    for how, field in (("truncate", None), ("nan", "q"), ("negative", "q"), ("missing", "X")):
        fb.faults.corrupt_next_push(how, field)
        await venue.place(place())
        seen = await collect(facts, lambda s: any(isinstance(e, InputQuarantined) for e in s))
        q = next(e for e in seen if isinstance(e, InputQuarantined))
        assert q.source == "ccxtpro:binanceusdm" and q.raw
    # The stream is still alive after three bad frames: the next fill arrives.
    cmd = place()
    await venue.place(cmd)
    seen = await collect(facts, lambda s: any(isinstance(e, OrderFilled)
                                              and e.client_order_id == cmd.client_order_id
                                              for e in s))
    assert seen


async def test_marks_are_streamed(venue: CcxtProVenue, fb: FakeBinance) -> None:
    facts = venue.facts()
    await fb.set_mark("BTCUSDT", "60123.40")
    seen = await collect(facts, lambda s: any(isinstance(e, MarkPriceObserved)
                                              and e.price == D("60123.40") for e in s))
    assert seen[-1].symbol == BTC  # type: ignore[attr-defined]


async def test_funding_and_a_deposit_are_pushed_from_the_income_history(
        fb: FakeBinance, venue: CcxtProVenue) -> None:
    facts = venue.facts()
    await venue.place(place(qty="0.010"))
    await fb.fund("BTCUSDT", rate="0.0001")
    await fb.deposit("USDT", "250")
    seen = await collect(facts, lambda s: any(isinstance(e, FundingSettled) for e in s)
                         and any(isinstance(e, TransferCompleted) for e in s))
    funding = next(e for e in seen if isinstance(e, FundingSettled))
    assert funding.funding_id is not None and funding.amount == D("-0.06")
    assert next(e for e in seen if isinstance(e, TransferCompleted)).amount == D(250)


# -- listenKey -----------------------------------------------------------------------------


async def test_the_adapter_renews_the_listen_key_itself() -> None:
    settings = msgspec.structs.replace(FAST, listen_key_keepalive_s=0.2)
    async with fake(listen_key_ttl_s=0.6, wallet={"USDT": D(1000)}) as fb, \
            connected(fb, settings) as v:
        await asyncio.sleep(1.5)  # ccxt alone would have let the key lapse twice over
        facts = v.facts()
        cmd = place()
        await v.place(cmd)
        seen = await collect(facts, lambda s: any(isinstance(e, OrderFilled) for e in s))
        assert any(e.client_order_id == cmd.client_order_id  # type: ignore[union-attr]
                   for e in seen if isinstance(e, OrderFilled))
        assert ("PUT", "/fapi/v1/listenKey") in fb.requests


async def test_an_expired_listen_key_ends_the_facts_and_a_reconnect_streams_again(
        fb: FakeBinance) -> None:
    v = adapter(fb)
    await v.connect()
    try:
        facts = v.facts()
        await fb.expire_listen_key()
        with pytest.raises(VenueUnavailable, match="listenKey"):
            await collect(facts, lambda s: False, timeout=5)
        await v.close()
        await v.connect()  # a new session: a new listenKey
        facts = v.facts()
        cmd = place()
        await v.place(cmd)
        await collect(facts, lambda s: any(isinstance(e, OrderFilled) for e in s))
    finally:
        await v.close()


async def test_a_keep_alive_answered_minus_1125_ends_the_session() -> None:
    settings = msgspec.structs.replace(FAST, listen_key_keepalive_s=0.3)
    async with fake() as fb, connected(fb, settings) as v:
        facts = v.facts()
        fb.hub.close_listen_key()  # the venue forgets the key without telling the socket
        with pytest.raises(VenueUnavailable, match=r"-1125|listenKey"):
            await collect(facts, lambda s: False, timeout=5)


async def test_a_dropped_socket_ends_the_facts(fb: FakeBinance, venue: CcxtProVenue) -> None:
    facts = venue.facts()
    await fb.drop_sockets()
    with pytest.raises(VenueUnavailable):
        await collect(facts, lambda s: False, timeout=5)


# -- orders ----------------------------------------------------------------------------------


async def test_a_triggered_stop_is_followed_to_the_order_that_carries_its_fills(
        fb: FakeBinance, venue: CcxtProVenue) -> None:
    facts = venue.facts()
    stop = place(side="buy", order_type="stop", trigger_price=D("60500"))
    out = await venue.place(stop)
    assert isinstance(out, CommandAcknowledged)
    before = await venue.order(BTC, stop.client_order_id)
    assert before is not None and (before.order_id, before.order_type, before.status) == (
        out.order_id, "stop", "new")
    await fb.set_mark("BTCUSDT", "60600")
    seen = await collect(facts, lambda s: any(isinstance(e, OrderFilled) for e in s))
    fill = next(e for e in seen if isinstance(e, OrderFilled))
    assert fill.client_order_id == stop.client_order_id and fill.order_id != out.order_id
    after = await venue.order(BTC, stop.client_order_id)
    assert after is not None and after.order_id == fill.order_id and after.status == "filled"
    assert stop.client_order_id not in {o.client_order_id for o in await venue.open_orders()}


async def test_a_resting_stop_is_open_and_cancels_by_its_client_id(venue: CcxtProVenue) -> None:
    stop = place(side="sell", order_type="stop_limit", price=D("57500"),
                 trigger_price=D("57600"))
    assert isinstance(await venue.place(stop), CommandAcknowledged)
    opened = {o.client_order_id: o for o in await venue.open_orders()}
    assert opened[stop.client_order_id].order_type == "stop_limit"
    assert isinstance(await venue.cancel(cancel(stop.client_order_id)), CommandAcknowledged)
    status = await venue.order(BTC, stop.client_order_id)
    assert status is not None and status.status == "canceled"


async def test_a_resting_limit_is_amended_in_place(venue: CcxtProVenue) -> None:
    limit = place(order_type="limit", price=D(58000))
    await venue.place(limit)
    out = await venue.amend(amend(limit.client_order_id, price=D("58100.0"), qty=D("0.004")))
    assert isinstance(out, CommandAcknowledged)
    status = await venue.order(BTC, limit.client_order_id)
    assert status is not None and (status.price, status.qty) == (D(58100), D("0.004"))
    stop = place(side="sell", order_type="stop", trigger_price=D(50000))
    await venue.place(stop)
    refused = await venue.amend(amend(stop.client_order_id, trigger_price=D(50100)))
    assert isinstance(refused, CommandRejected) and refused.code is None


async def test_post_only_reduce_only_and_time_in_force_reach_the_venue(
        fb: FakeBinance, venue: CcxtProVenue) -> None:
    limit = place(order_type="limit", price=D(58000), post_only=True)
    await venue.place(limit)
    assert fb.order(limit.client_order_id).time_in_force == "GTX"
    ioc = place(order_type="limit", price=D(58000), time_in_force="IOC")
    await venue.place(ioc)
    assert fb.order(ioc.client_order_id).time_in_force == "IOC"
    await venue.place(place(qty="0.002"))
    close = place(side="sell", qty="0.002", reduce_only=True)
    assert isinstance(await venue.place(close), CommandAcknowledged)
    assert fb.order(close.client_order_id).reduce_only


async def test_a_client_order_id_the_venue_would_refuse_is_refused_before_sending(
        fb: FakeBinance, venue: CcxtProVenue) -> None:
    sent = len(fb.requests)
    out = await venue.place(place(cid="has a space"))
    assert isinstance(out, CommandRejected) and "client order id" in out.reason
    out = await venue.place(place(price=D("60000.05"), order_type="limit"))
    assert isinstance(out, CommandRejected) and "tick size" in out.reason
    assert len(fb.requests) == sent


# -- history, rate limits -------------------------------------------------------------------


async def test_the_venues_rate_limit_headers_are_reported(venue: CcxtProVenue) -> None:
    await venue.place(place())
    usage = {u.name: u for u in venue.rate_usage()}
    assert usage["x-mbx-used-weight-1m"].used > 0
    assert usage["x-mbx-used-weight-1m"].limit == 2400
    assert usage["x-mbx-order-count-10s"].limit == 300


async def test_an_order_status_round_trips(venue: CcxtProVenue) -> None:
    limit = place(order_type="limit", price=D(58000))
    await venue.place(limit)
    (status,) = [o for o in await venue.open_orders()
                 if o.client_order_id == limit.client_order_id]
    assert isinstance(status, OrderStatusReported) and decode(encode(status)) == status
