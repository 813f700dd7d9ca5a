"""kernel/locks.py: what working intents lock, and what an intent would do
(`simulate`), with hand-checked numbers; the public snapshot shows the figures."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from events.facts import InstrumentDefined, LeverageSet, MarkPriceObserved, TransferCompleted
from events.orders import CommandAcknowledged, IntentCanceled, IntentPlaced
from kernel.diff import DiffConfig, command_event, diff
from kernel.locks import LockConfig, locked, simulate
from kernel.public import book_out, public
from kernel.reconcile import ReconcileConfig
from kernel.snapshot import project
from kernel.state import GENESIS, AccountState, fold

CFG = LockConfig(fee_rate=D("0.0005"))


def folded(*events: Any) -> AccountState:
    s = GENESIS
    for e in events:
        s = fold(s, e, s.seq + 1)
    return s


def base(*more: Any) -> AccountState:
    return folded(
        InstrumentDefined(venue_ts=1, recv_ts=1, symbol="BTCUSDT", instrument_kind="linear",
                          base="BTC", quote="USDT", settle="USDT", tick_size=D("0.1"),
                          lot_size=D("0.001"), min_notional=D("5")),
        TransferCompleted(venue_ts=1, recv_ts=1, transfer_id="d", asset="USDT",
                          direction="deposit", amount=D("1000")),
        LeverageSet(venue_ts=1, recv_ts=1, symbol="BTCUSDT", leverage=D("10")),
        MarkPriceObserved(venue_ts=1, recv_ts=1, symbol="BTCUSDT", price=D("60000")),
        *more)


def intent(intent_id: str, **kw: Any) -> IntentPlaced:
    fields: dict[str, Any] = {"venue_ts": 2, "recv_ts": 2, "intent_id": intent_id,
                              "symbol": "BTCUSDT", "side": "buy", "order_type": "limit",
                              "qty": D("0.010"), "price": D("59000.0")}
    fields.update(kw)
    return IntentPlaced(**fields)


def test_a_working_limit_locks_its_margin_and_fee() -> None:
    # 0.010 · 59000 = 590 notional; / 10 = 59 margin; · 0.0005 = 0.295 fee
    s = base(intent("a"))
    assert locked(s, CFG) == {"USDT": D("59.295")}


def test_market_intents_lock_at_the_mark_and_reduce_only_locks_nothing() -> None:
    s = base(intent("m", order_type="market", price=None),
             intent("r", side="sell", reduce_only=True))
    assert locked(s, CFG) == {"USDT": D("60.3")}  # 600 / 10 + 600 · 0.0005


def test_a_cancel_releases_the_lock_once_the_order_is_gone() -> None:
    s = base(intent("a"))
    [place] = diff(s, DiffConfig())
    s = folded_on(s, command_event(s, place, 3),
                  CommandAcknowledged(venue_ts=4, recv_ts=4, command_id=place.command_id),
                  IntentCanceled(venue_ts=5, recv_ts=5, intent_id="a"))
    assert locked(s, CFG) == {"USDT": D("59.295")}  # canceled, not gone yet: still locked
    [cancel] = diff(s, DiffConfig())
    s = folded_on(s, command_event(s, cancel, 6),
                  CommandAcknowledged(venue_ts=7, recv_ts=7, command_id=cancel.command_id))
    assert locked(s, CFG) == {}


def folded_on(s: AccountState, *events: Any) -> AccountState:
    for e in events:
        s = fold(s, e, s.seq + 1)
    return s


def test_simulate_says_what_an_intent_would_lock_and_leave() -> None:
    s = base(intent("a"))
    sim = simulate(s, CFG, "BTCUSDT", D("0.100"), D("60000.0"), None, False)
    assert sim is not None
    # 0.1 · 60000 = 6000; lock 600 + 3; available before: 1000 − 59.295 = 940.705
    assert (sim.notional, sim.lock, sim.opening_cash_flow) == (D("6000.0"), D("603.0"),
                                                               D("-3.0"))
    assert (sim.available_before, sim.available_after, sim.fundable) == (
        D("940.705"), D("337.705"), True)
    too_big = simulate(s, CFG, "BTCUSDT", D("1.000"), D("60000.0"), None, False)
    assert too_big is not None and not too_big.fundable


def test_the_public_snapshot_shows_locks_and_the_available_after_them() -> None:
    s = base(intent("a"))
    intents, orders = book_out(s.book)
    snap = public(project(s, ReconcileConfig()), intents, orders, s.book)
    usdt = snap.k.assets["USDT"]
    assert (usdt.locked, usdt.available_after_locks) == (D("59.295"), D("940.705"))
    assert snap.instruments["BTCUSDT"].tick_size == D("0.1")


def test_the_api_encoder_reuses_a_book_across_marks_and_gives_the_same_bytes() -> None:
    from kernel.daemon.hub import PublicEncoder, encode_public

    enc = PublicEncoder()
    s = base(intent("a"), intent("m", order_type="market", price=None),
             intent("t", order_type="stop", price=None, trigger_price=D("61000.0")))
    bodies = []
    steps: list[Any] = [
        MarkPriceObserved(venue_ts=3, recv_ts=3, symbol="BTCUSDT", price=D("60100")),
        MarkPriceObserved(venue_ts=4, recv_ts=4, symbol="BTCUSDT", price=D("59900")),
        LeverageSet(venue_ts=5, recv_ts=5, symbol="BTCUSDT", leverage=D("5")),
        intent("b", venue_ts=6, recv_ts=6, price=D("58000.0")),
        MarkPriceObserved(venue_ts=7, recv_ts=7, symbol="BTCUSDT", price=D("60200")),
        IntentCanceled(venue_ts=8, recv_ts=8, intent_id="m"),
    ]
    for step in [None, *steps]:
        if step is not None:
            s = folded_on(s, step)
        snap = project(s, ReconcileConfig())
        body = enc(snap, s.book)
        assert body == encode_public(snap, s.book)  # what every snapshot costs otherwise
        bodies.append(body)
    assert len(set(bodies)) == len(bodies)  # the market intent's lock moved with each mark
