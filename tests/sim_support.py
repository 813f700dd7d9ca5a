"""Shared helpers for the sim tests: configs, and folding events the way the writer does."""

from __future__ import annotations

import random
from collections.abc import Iterable
from decimal import Decimal

import msgspec

from adapters.sim.config import SimConfig, SimInstrument, SimTrader
from adapters.sim.engine import SimEngine
from adapters.sim.parse import parse
from adapters.sim.wire import Msg
from events.codec import Event
from kernel.admit import admit
from kernel.state import GENESIS, AccountState, fold

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
D = Decimal

BTC = SimInstrument(symbol="BTCUSDT", base="BTC", quote="USDT", settle="USDT",
                    tick_size=D("0.1"), lot_size=D("0.001"), start_price=D(60000),
                    volatility=D(0))
ETH_SPOT = SimInstrument(symbol="ETHSPOT", kind="spot", base="ETH", quote="USDT",
                         settle="USDT", tick_size=D("0.01"), lot_size=D("0.01"),
                         start_price=D(3000), volatility=D("0.001"))
BTC_INVERSE = SimInstrument(symbol="BTCUSD", kind="inverse", base="BTC", quote="USD",
                            settle="BTC", tick_size=D("0.5"), lot_size=D(1),
                            contract_size=D(100), start_price=D(60000),
                            volatility=D("0.001"), leverage=D(20))


def quiet(*instruments: SimInstrument, **kw: object) -> SimConfig:
    """No trader, no funding unless asked: only what the test does happens."""
    fields: dict[str, object] = {"instruments": instruments or (BTC,),
                                 "trader": SimTrader(enabled=False),
                                 "funding_interval_s": 3600.0}
    fields.update(kw)
    return SimConfig(**fields)  # type: ignore[arg-type]


def busy(seed: int, **kw: object) -> SimConfig:
    """Three kinds of instrument, a fast trader and frequent funding."""
    inst = (msgspec.structs.replace(BTC, volatility=D("0.0005")),
            SimInstrument(symbol="ETHUSDT", base="ETH", quote="USDT", settle="USDT",
                          tick_size=D("0.01"), lot_size=D("0.001"), start_price=D(3000),
                          leverage=D(5)),
            ETH_SPOT, BTC_INVERSE)
    fields: dict[str, object] = {
        "seed": seed, "instruments": inst, "trader": SimTrader(every_s=0.5),
        "funding_interval_s": 5.0, "deposits": {"USDT": D(20000), "BTC": D(1)},
    }
    fields.update(kw)
    return SimConfig(**fields)  # type: ignore[arg-type]


def engine(cfg: SimConfig, paths: dict[str, list[tuple[int, Decimal]]] | None = None
           ) -> SimEngine:
    return SimEngine(cfg, random.Random(cfg.seed), paths)


def run(eng: SimEngine, seconds: float, step_ms: int = 250, start: int = T0) -> list[Msg]:
    msgs: list[Msg] = []
    for i in range(int(seconds * 1000 / step_ms) + 1):
        msgs += eng.advance(start + i * step_ms * MS)
    return msgs


def events(raws: Iterable[bytes]) -> list[Event]:
    return [e for raw in raws for e in parse(raw, T0)]


def encode(msgs: Iterable[Msg]) -> list[bytes]:
    return [msgspec.json.encode(m) for m in msgs]


def fold_all(
    evs: Iterable[Event], state: AccountState = GENESIS, *, strict: bool = True
) -> AccountState:
    """Fold as the writer would: stamp recv_ts, skip a dedup key seen before (asserting
    it is a true duplicate), and (`strict`) insist every event is admitted; otherwise an
    inadmissible event is left out as the writer's quarantine would, its key unseen."""
    seen: dict[str, Event] = {}
    for ev in evs:
        ev = msgspec.structs.replace(ev, recv_ts=max(ev.venue_ts, state.now))
        first = seen.get(ev.dedup_key)
        if first is not None:
            assert msgspec.structs.replace(first, recv_ts=0) == msgspec.structs.replace(
                ev, recv_ts=0), f"conflict on {ev.dedup_key}"
            continue
        reason = admit(state, ev)
        assert reason is None or not strict, reason
        if reason is not None:
            continue
        seen[ev.dedup_key] = ev
        state = fold(state, ev, state.seq + 1)
    return state
