"""The contract every `Venue` implementation must pass.

Subclass `VenueContract` in a test module (named `Test...`) and provide the `venue`
fixture (a connected venue, closed after the test), the `hedge_venue` fixture (the same
in hedge mode: a long and a short position per symbol) and the `market` fixture (a
`ContractMarket` saying what to trade on it: a symbol, a quantity that fills, a limit
price far enough from the market to rest, and a quantity off the lot grid).

In hedge mode `PlaceOrder` names no position side, so an adapter derives it: a
reduce-only order closes (a SELL the long, a BUY the short), any other opens (a BUY the
long, a SELL the short).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

from adapters.base import Venue
from events.codec import Event, decode, encode
from events.facts import (
    AssetDefined,
    BalanceReported,
    FundingSettled,
    InstrumentDefined,
    LeverageSet,
    MarkPriceObserved,
    OrderFilled,
    PositionsReported,
    TransferCompleted,
)
from events.orders import (
    AmendOrder,
    CancelOrder,
    CommandAcknowledged,
    CommandRejected,
    PlaceOrder,
)

TIMEOUT_S = 10.0
_ids = itertools.count(1)


@dataclass(frozen=True)
class ContractMarket:
    symbol: str
    qty: Decimal
    resting_buy_price: Decimal
    off_lot_qty: Decimal


def place(m: ContractMarket, order_type: str = "market", *, qty: Decimal | None = None,
          price: Decimal | None = None, cid: str | None = None, side: str = "buy",
          reduce_only: bool = False) -> PlaceOrder:
    n = next(_ids)
    return PlaceOrder(venue_ts=0, command_id=f"cmd-{n}", intent_id=f"intent-{n}",
                      client_order_id=cid or f"contract-{n}", symbol=m.symbol, side=side,  # type: ignore[arg-type]
                      order_type=order_type, qty=qty or m.qty, price=price,  # type: ignore[arg-type]
                      reduce_only=reduce_only)


def cancel(m: ContractMarket, cid: str) -> CancelOrder:
    n = next(_ids)
    return CancelOrder(venue_ts=0, command_id=f"cmd-{n}", intent_id="intent", symbol=m.symbol,
                       client_order_id=cid)


def amend(m: ContractMarket, cid: str, price: Decimal) -> AmendOrder:
    n = next(_ids)
    return AmendOrder(venue_ts=0, command_id=f"cmd-{n}", intent_id="intent", symbol=m.symbol,
                      client_order_id=cid, price=price)


async def first(facts: AsyncIterator[Event], pred: type[Event], cid: str | None = None) -> Event:
    async def scan() -> Event:
        async for ev in facts:
            if isinstance(ev, pred) and (cid is None or getattr(ev, "client_order_id") == cid):  # noqa: B009
                return ev
        raise AssertionError("facts ended")

    return await asyncio.wait_for(scan(), TIMEOUT_S)


def round_trips(ev: Event) -> bool:
    return decode(encode(ev)) == ev


class VenueContract:
    async def test_close_ends_the_facts(self, venue: Venue) -> None:
        facts = venue.facts()
        await venue.close()

        async def drain() -> None:
            async for _ in facts:
                pass

        await asyncio.wait_for(drain(), TIMEOUT_S)

    async def test_facts_arrive_and_decode(self, venue: Venue) -> None:
        facts = venue.facts()
        got = [await asyncio.wait_for(anext(facts), TIMEOUT_S) for _ in range(5)]
        assert all(round_trips(e) for e in got)

    async def test_a_market_order_is_acknowledged_and_fills(
        self, venue: Venue, market: ContractMarket
    ) -> None:
        facts = venue.facts()
        cmd = place(market)
        out = await venue.place(cmd)
        assert isinstance(out, CommandAcknowledged) and out.command_id == cmd.command_id
        fill = await first(facts, OrderFilled, cmd.client_order_id)
        assert isinstance(fill, OrderFilled) and fill.symbol == market.symbol
        assert round_trips(fill)
        backfill = await venue.fills_since(0)
        assert any(f.dedup_key == fill.dedup_key and f == fill for f in backfill)
        assert await venue.fills_since(2**62) == []

    async def test_a_resting_limit_is_open_until_canceled(
        self, venue: Venue, market: ContractMarket
    ) -> None:
        cmd = place(market, "limit", price=market.resting_buy_price)
        assert isinstance(await venue.place(cmd), CommandAcknowledged)
        cid = cmd.client_order_id
        assert cid in {o.client_order_id for o in await venue.open_orders()}
        status = await venue.order(market.symbol, cid)
        assert status is not None and status.status == "new" and status.price == cmd.price
        assert isinstance(await venue.cancel(cancel(market, cid)), CommandAcknowledged)
        assert cid not in {o.client_order_id for o in await venue.open_orders()}
        status = await venue.order(market.symbol, cid)
        assert status is not None and status.status == "canceled"

    async def test_a_resting_limit_is_amended_under_its_client_order_id(
        self, venue: Venue, market: ContractMarket
    ) -> None:
        cmd = place(market, "limit", price=market.resting_buy_price)
        assert isinstance(await venue.place(cmd), CommandAcknowledged)
        moved = market.resting_buy_price + market.resting_buy_price / 100
        out = await venue.amend(amend(market, cmd.client_order_id, moved))
        assert isinstance(out, CommandAcknowledged)
        status = await venue.order(market.symbol, cmd.client_order_id)
        assert status is not None and status.status == "new" and status.price == moved
        gone = await venue.amend(amend(market, "never-placed", moved))
        assert isinstance(gone, CommandRejected) and gone.reason.strip()

    async def test_an_unknown_order_is_none(self, venue: Venue, market: ContractMarket) -> None:
        assert await venue.order(market.symbol, "never-placed") is None

    async def test_rejections_say_why(self, venue: Venue, market: ContractMarket) -> None:
        bad = [
            place(market, qty=market.off_lot_qty),
            place(market, cid="dup"),
        ]
        assert isinstance(await venue.place(bad[1]), CommandAcknowledged)
        for cmd in [bad[0], place(market, cid="dup")]:
            out = await venue.place(cmd)
            assert isinstance(out, CommandRejected) and out.command_id == cmd.command_id, out
            assert out.reason.strip()
        out = await venue.cancel(cancel(market, "never-placed"))
        assert isinstance(out, CommandRejected) and out.reason.strip()

    async def test_resync_answers_are_well_formed(
        self, venue: Venue, market: ContractMarket
    ) -> None:
        instruments = await venue.instruments()
        assert market.symbol in {i.symbol for i in instruments}
        assert all(isinstance(i, InstrumentDefined) and round_trips(i) for i in instruments)
        balances, positions = await venue.balances(), await venue.positions()
        assert isinstance(balances, BalanceReported) and round_trips(balances)
        assert isinstance(positions, PositionsReported) and round_trips(positions)
        funding = await venue.funding_since(0)
        assert all(isinstance(f, FundingSettled) and round_trips(f) for f in funding)
        leverage = await venue.leverage_settings()
        assert all(isinstance(x, LeverageSet) and round_trips(x) for x in leverage)
        marks = await venue.marks()
        assert market.symbol in {m.symbol for m in marks}
        assert all(isinstance(m, MarkPriceObserved) and round_trips(m) for m in marks)
        transfers = await venue.transfers_since(0)
        assert all(isinstance(t, TransferCompleted) and round_trips(t) for t in transfers)
        assert await venue.transfers_since(2**62) == []
        assert all(round_trips(o) for o in await venue.open_orders())

    async def test_assets_define_the_precision_of_what_the_account_holds(
        self, venue: Venue, market: ContractMarket
    ) -> None:
        assets = await venue.assets()
        assert all(isinstance(a, AssetDefined) and round_trips(a) for a in assets)
        assert len({a.asset for a in assets}) == len(assets)
        settle = {i.settle for i in await venue.instruments() if i.symbol == market.symbol}
        balances = {b.asset for b in (await venue.balances()).balances}
        assert settle | balances <= {a.asset for a in assets}
        assert await venue.assets() == assets  # the same facts again: the same dedup keys

    async def test_a_hedge_mode_account_holds_a_long_and_a_short_at_once(
        self, hedge_venue: Venue, market: ContractMarket
    ) -> None:
        v = hedge_venue
        facts = v.facts()
        opens = [place(market), place(market, side="sell")]
        for cmd in opens:
            assert isinstance(await v.place(cmd), CommandAcknowledged)
        long_fill = await first(facts, OrderFilled, opens[0].client_order_id)
        short_fill = await first(facts, OrderFilled, opens[1].client_order_id)
        assert isinstance(long_fill, OrderFilled) and long_fill.position_side == "long"
        assert isinstance(short_fill, OrderFilled) and short_fill.position_side == "short"
        long_key, short_key = f"{market.symbol}|long", f"{market.symbol}|short"
        held = {p.key: p.qty for p in (await v.positions()).positions}
        assert held == {long_key: market.qty, short_key: -market.qty}
        close = place(market, side="sell", reduce_only=True)
        assert isinstance(await v.place(close), CommandAcknowledged)
        closed = await first(facts, OrderFilled, close.client_order_id)
        assert isinstance(closed, OrderFilled) and closed.position_side == "long"
        report = await v.positions()
        assert round_trips(report)
        assert {p.key: p.qty for p in report.positions} == {short_key: -market.qty}
        fills = await v.fills_since(0)
        assert {f.position_side for f in fills} == {"long", "short"}
