"""SimVenue: the venue contract, fault injection at the configured rates, disconnects."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from sim_support import MS, T0, D, busy, engine, quiet
from venue_contract import ContractMarket, VenueContract, first, place, round_trips

from adapters.sim.config import SimConfig, SimFaults, SimInstrument, SimTrader
from adapters.sim.faults import FaultInjector
from adapters.sim.venue import SimVenue
from events.codec import Event
from events.control import InputQuarantined
from events.facts import MarkPriceObserved, OrderFilled
from events.orders import CommandAcknowledged
from kernel.errors import VenueUnavailable


class FakeClock:
    """Simulated time: every reading moves it on by `step_ms`."""

    def __init__(self, step_ms: int = 10) -> None:
        self.now = T0
        self.step = step_ms * MS

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def fast(cfg: SimConfig) -> SimVenue:
    return SimVenue(cfg, clock=FakeClock(), pace_s=0)


@pytest.fixture
async def venue() -> AsyncIterator[SimVenue]:
    v = fast(quiet())
    await v.connect()
    yield v
    await v.close()


@pytest.fixture
async def hedge_venue() -> AsyncIterator[SimVenue]:
    v = fast(quiet(hedge_mode=True))
    await v.connect()
    yield v
    await v.close()


@pytest.fixture
def market() -> ContractMarket:
    return ContractMarket(symbol="BTCUSDT", qty=D("0.002"), resting_buy_price=D(30000),
                          off_lot_qty=D("0.0015"))


class TestSimVenueContract(VenueContract):
    pass


async def collect(v: SimVenue, n: int) -> list[Event]:
    out: list[Event] = []
    facts = v.facts()
    while len(out) < n:
        out.append(await asyncio.wait_for(anext(facts), 10))
    return out


def within(count: int, n: int, p: float) -> bool:
    """`count` is a plausible Binomial(n, p) draw (5 standard deviations)."""
    return abs(count - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1


def test_faults_happen_at_the_configured_rates() -> None:
    faults = SimFaults(duplicate=0.1, reorder=0.05, drop=0.2, malformed=0.15, stale_reports=0.5)
    eng = engine(busy(11))
    inj = FaultInjector(faults, random.Random(11), 200)
    n = reports = 0
    for i in range(1200):
        msgs = eng.advance(T0 + i * 250 * MS)
        n += len(msgs)
        reports += sum(m["e"] == "ACCOUNT_UPDATE" and m["a"]["m"] == "ORDER" for m in msgs)
        inj.push(msgs, T0 + i * 250 * MS)
    s = inj.stats
    kept = n - s["drop"]
    assert n > 5000
    assert within(s["drop"], n, 0.2)
    assert within(s["malformed"], kept, 0.15)
    assert s["stale"] > 0 and s["stale"] <= reports
    assert within(s["duplicate"], kept - s["stale"], 0.1)
    assert 0 < s["reorder"] < (kept - s["stale"]) * 0.05 * 1.5


def test_the_same_seed_injects_the_same_faults() -> None:
    def delivered(seed: int) -> list[bytes]:
        eng = engine(busy(seed))
        inj = FaultInjector(SimFaults(duplicate=0.2, reorder=0.2, drop=0.2, malformed=0.2),
                            random.Random(seed), 200)
        return [raw for i in range(200) for raw in inj.push(eng.advance(T0 + i * 250 * MS),
                                                           T0 + i * 250 * MS)]

    assert delivered(1) == delivered(1)
    assert delivered(1) != delivered(2)


async def test_malformed_pushes_arrive_as_quarantines() -> None:
    v = fast(quiet(faults=SimFaults(malformed=0.3)))
    await v.connect()
    got = await collect(v, 300)
    await v.close()
    quarantined = [e for e in got if isinstance(e, InputQuarantined)]
    assert quarantined and all(q.source == "sim" and q.reason for q in quarantined)
    marks = [e for e in got if isinstance(e, MarkPriceObserved)]
    assert within(len(quarantined), len(quarantined) + len(marks), 0.3)


async def test_duplicates_and_drops_reach_the_stream() -> None:
    v = fast(quiet(faults=SimFaults(duplicate=0.3, drop=0.3)))
    await v.connect()
    got = await collect(v, 300)
    await v.close()
    keys = Counter(e.dedup_key for e in got)
    assert any(c > 1 for c in keys.values())  # duplicated
    ticks = sorted({e.venue_ts for e in got if isinstance(e, MarkPriceObserved)})
    assert any(b - a > 250 * MS for a, b in itertools.pairwise(ticks))  # a tick went missing


async def test_a_disconnect_ends_the_facts_and_connect_resumes_the_account() -> None:
    cfg = quiet(faults=SimFaults(disconnect_every_s=2.0))
    v = fast(cfg)
    await v.connect()
    cmd = place(ContractMarket("BTCUSDT", D("0.002"), D(30000), D("0.0015")))
    assert isinstance(await v.place(cmd), CommandAcknowledged)
    with pytest.raises(VenueUnavailable):
        async for _ in v.facts():
            pass
    with pytest.raises(VenueUnavailable):
        await v.balances()
    await v.connect()
    fills = await v.fills_since(0)
    assert [f.client_order_id for f in fills] == [cmd.client_order_id] * len(fills)
    assert sum(f.qty for f in fills) == D("0.002")
    positions = await v.positions()
    assert [(p.symbol, p.qty) for p in positions.positions] == [("BTCUSDT", D("0.002"))]
    facts = v.facts()
    assert round_trips(await asyncio.wait_for(anext(facts), 10))
    await v.close()


async def test_the_scripted_trader_makes_fills_without_strategies() -> None:
    v = fast(quiet(trader=SimTrader(every_s=0.5)))
    await v.connect()
    fill = await first(v.facts(), OrderFilled)
    await v.close()
    assert isinstance(fill, OrderFilled)
    assert (fill.client_order_id or "").startswith("sim-trader-")


async def test_flood_mode_pushes_extra_marks_on_distinct_times() -> None:
    inst = SimInstrument(symbol="BTCUSDT", base="BTC", quote="USDT", settle="USDT",
                         tick_size=D("0.1"), lot_size=D("0.001"), start_price=D(60000))
    plain, flood = (fast(quiet(inst, flood_per_s=n)) for n in (0, 500))
    counts = []
    for v in (plain, flood):
        await v.connect()
        got = await collect(v, 400)
        await v.close()
        marks = [e for e in got if isinstance(e, MarkPriceObserved)]
        assert len({m.dedup_key for m in marks}) == len(marks)
        counts.append(max(m.venue_ts for m in marks) - min(m.venue_ts for m in marks))
    assert counts[1] < counts[0] / 2  # the same number of marks in much less venue time


async def test_commands_while_disconnected_raise_unavailable() -> None:
    v = fast(quiet())
    with pytest.raises(VenueUnavailable):
        await v.place(place(ContractMarket("BTCUSDT", D("0.002"), D(30000), D("0.0015"))))


async def test_a_consumer_that_falls_behind_is_dropped_not_buffered_without_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import adapters.sim.venue as sim_venue

    monkeypatch.setattr(sim_venue, "MAX_BACKLOG", 50)
    v = fast(quiet(flood_per_s=100_000))
    await v.connect()
    try:
        for _ in range(200):  # nobody reads `facts()` while the venue keeps pushing
            if not v._connected:
                break
            await asyncio.sleep(0)
        assert not v._connected, "the venue dropped the slow consumer"
        backlog = v._queue.qsize()
        assert backlog <= 50 + 100, backlog  # bounded: one step's pushes past the limit
        with pytest.raises(VenueUnavailable, match="slow consumer"):
            async for _ in v.facts():
                pass
        await v.connect()  # and the account is there for the next connection
        assert v._connected
    finally:
        await v.close()
