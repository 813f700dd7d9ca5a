"""Properties of the fold over random event sequences (hypothesis).

(a) replay determinism, (b) checkpoint + tail equals full replay, (c) the cash and PnL
identities of linear perps, (d) the fold is a function of the de-duplicated sequence,
(e) K plus its venue-rounding residual is what a venue rounding each fill books.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from decimal import Decimal as D

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.codec import Event
from events.control import (
    ManualAdjustment,
    TradingHalted,
    TradingResumed,
    VenueConnected,
    quarantine,
)
from events.facts import (
    AssetBalance,
    AssetDefined,
    BalanceReported,
    FundingSettled,
    InstrumentDefined,
    LeverageSet,
    MarginReport,
    MarkPriceObserved,
    OrderFilled,
    PositionsReported,
    ReportedPosition,
    TransferCompleted,
    position_key,
)
from kernel.errors import InvariantViolation
from kernel.money import round_to
from kernel.position import Position, trade
from kernel.reconcile import ReconcileConfig
from kernel.snapshot import project
from kernel.state import GENESIS, AccountState, Draft, fold, settled

S = 1_000_000_000
CFG = ReconcileConfig()
ENCODE = msgspec.json.Encoder(decimal_format="string").encode
SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _inst(symbol: str, kind: str, base: str, quote: str, settle: str, cs: str
          ) -> InstrumentDefined:
    return InstrumentDefined(
        venue_ts=0, symbol=symbol, instrument_kind=kind, base=base, quote=quote,  # type: ignore[arg-type]
        settle=settle, tick_size=D("0.1"), lot_size=D("0.001"), min_notional=D("0"),
        contract_size=D(cs),
    )


LINEAR = {
    "BTCUSDT": _inst("BTCUSDT", "linear", "BTC", "USDT", "USDT", "1"),
    "ETHUSDT": _inst("ETHUSDT", "linear", "ETH", "USDT", "USDT", "0.1"),
}
ALL = {
    **LINEAR,
    "BTCUSD": _inst("BTCUSD", "inverse", "BTC", "USD", "BTC", "100"),
    "SOLUSDT": _inst("SOLUSDT", "spot", "SOL", "USDT", "USDT", "1"),
}

qtys = st.integers(1, 5000).map(lambda n: D(n).scaleb(-3))  # 0.001 … 5
prices = st.integers(1000, 100000).map(lambda n: D(n).scaleb(-1))  # 100.0 … 10000.0
fees = st.integers(-100, 1000).map(lambda n: D(n).scaleb(-4))  # −0.01 … 0.1 (rebates too)
cash = st.integers(1, 10**7).map(lambda n: D(n).scaleb(-2))  # 0.01 … 100000


# --- a general random sequence (every kind of fact the ledger or E reads) ---------------


@st.composite
def event_specs(draw: st.DrawFn, n_max: int = 30) -> list[Callable[[int, int], Event]]:
    """Builders `make(i, venue_ts) -> Event`; ids come from `i`, so keys are unique."""
    specs: list[Callable[[int, int], Event]] = []
    for _ in range(draw(st.integers(0, n_max))):
        kind = draw(st.sampled_from(
            ["fill", "fill", "fill", "mark", "funding", "transfer", "adjust", "leverage",
             "balances", "positions", "tick", "asset", "redefine", "halt", "quarantine"]))
        specs.append(draw(_SPEC[kind]))
    return specs


@st.composite
def _fill_spec(draw: st.DrawFn) -> Callable[[int, int], Event]:
    symbol = draw(st.sampled_from(sorted(ALL)))
    inst = ALL[symbol]
    side, qty, px, fee = draw(st.sampled_from(["buy", "sell"])), draw(qtys), draw(prices), \
        draw(fees)
    fee_ccy = draw(st.sampled_from(sorted({inst.settle, inst.base, "BNB"})))
    ps = draw(st.sampled_from(["both", "long", "short"])) if symbol == "ETHUSDT" else "both"
    return lambda i, ts: OrderFilled(
        venue_ts=ts, symbol=symbol, trade_id=f"t{i}", order_id=f"o{i}", side=side,
        qty=qty, price=px, fee=fee, fee_currency=fee_ccy, position_side=ps,
        venue_realized_pnl=D(0) if i % 3 else None,
    )


_SPEC: dict[str, st.SearchStrategy[Callable[[int, int], Event]]] = {
    "fill": _fill_spec(),
    "mark": st.builds(
        lambda sym, px: lambda i, ts: MarkPriceObserved(venue_ts=ts, symbol=sym, price=px),
        st.sampled_from(sorted(ALL)), prices),
    "funding": st.builds(
        lambda sym, amt, neg: lambda i, ts: FundingSettled(
            venue_ts=ts, symbol=sym, asset=ALL[sym].settle, amount=-amt if neg else amt),
        st.sampled_from([*sorted(LINEAR), "BTCUSD"]), cash, st.booleans()),
    "transfer": st.builds(
        lambda asset, amt, d: lambda i, ts: TransferCompleted(
            venue_ts=ts, transfer_id=f"x{i}", asset=asset, direction=d, amount=amt),
        st.sampled_from(["USDT", "BTC", "BNB"]), cash, st.sampled_from(["deposit", "withdrawal"])),
    "adjust": st.builds(
        lambda asset, amt: lambda i, ts: ManualAdjustment(
            venue_ts=ts, adjustment_id=f"a{i}", asset=asset, amount=amt, reason="test"),
        st.sampled_from(["USDT", "BNB"]), cash),
    "leverage": st.builds(
        lambda sym, lev: lambda i, ts: LeverageSet(venue_ts=ts, symbol=sym, leverage=D(lev)),
        st.sampled_from(["BTCUSDT", "ETHUSDT", "BTCUSD"]), st.integers(1, 125)),
    "balances": st.builds(
        lambda w, used: lambda i, ts: BalanceReported(
            venue_ts=ts, balances=(AssetBalance(asset="USDT", wallet=w),),
            margin=MarginReport(asset="USDT", used=used)),
        cash, st.none() | cash),
    "positions": st.builds(
        lambda q, mark: lambda i, ts: PositionsReported(
            venue_ts=ts, positions=(ReportedPosition(symbol="BTCUSDT", qty=q, mark_price=mark),)),
        qtys, st.none() | prices),
    "tick": st.just(lambda i, ts: VenueConnected(venue_ts=ts, venue="sim", session=f"s{i}")),
    "asset": st.builds(
        lambda asset, places, mode: lambda i, ts: AssetDefined(
            venue_ts=ts, asset=asset, precision=places, rounding=mode),
        st.sampled_from(["USDT", "BTC"]), st.integers(0, 8),
        st.sampled_from(["half_even", "half_up", "down"])),
    # The same rules on a new tick size: admitted with a position open.
    "redefine": st.builds(
        lambda sym, tick: lambda i, ts: msgspec.structs.replace(
            ALL[sym], venue_ts=ts, tick_size=D(tick).scaleb(-2)),
        st.sampled_from(sorted(ALL)), st.integers(1, 100)),
    "halt": st.sampled_from([
        lambda i, ts: TradingHalted(venue_ts=ts, reason=f"test {i}"),
        lambda i, ts: TradingResumed(venue_ts=ts, reason=f"test {i}")]),
    "quarantine": st.just(lambda i, ts: quarantine(
        f"raw {i}".encode(), source="test", reason="unreadable", venue_ts=ts)),
}


def materialize(specs: list[Callable[[int, int], Event]], jitters: list[int]) -> list[Event]:
    """Instruments first, then the specs. Receive times rise by 10 s per event; a venue
    time may lag its receive time by up to 9 s (a late report), keeping every key unique."""
    events: list[Event] = list(ALL.values())
    for i, make in enumerate(specs):
        recv = (i + 1) * 10 * S
        venue_ts = recv - jitters[i % len(jitters)] * S
        events.append(msgspec.structs.replace(make(i, venue_ts), recv_ts=recv))
    return events


sequences = st.builds(materialize, event_specs(), st.lists(st.integers(0, 9), min_size=1))


def replay(events: list[Event], start: AccountState = GENESIS) -> list[AccountState]:
    out, s = [], start
    for e in events:
        s = fold(s, e, s.seq + 1)
        out.append(s)
    return out


# --- (a) replay determinism -------------------------------------------------------------


@SETTINGS
@given(sequences)
def test_replaying_the_same_events_gives_identical_snapshots(events: list[Event]) -> None:
    first, second = replay(events), replay(events)
    assert first == second
    prev = None
    for a, b in zip(first, second, strict=True):
        snap = project(a, CFG, prev)
        assert ENCODE(snap) == ENCODE(project(b, CFG))
        prev = snap


# --- (b) checkpoint + tail equals full replay --------------------------------------------


@SETTINGS
@given(sequences, st.data())
def test_checkpoint_then_tail_equals_full_replay(events: list[Event], data: st.DataObject) -> None:
    full = replay(events)
    cut = data.draw(st.integers(0, len(events)), label="cut")
    at_cut = full[cut - 1] if cut else GENESIS
    checkpoint = msgspec.json.decode(ENCODE(at_cut), type=AccountState)
    assert checkpoint == at_cut
    tail = replay(events[cut:], start=checkpoint)
    assert len(tail) == len(events) - cut
    for resumed, original in zip(tail, full[cut:], strict=True):
        assert ENCODE(resumed) == ENCODE(original)
        assert ENCODE(project(resumed, CFG)) == ENCODE(project(original, CFG))


@SETTINGS
@given(sequences, st.lists(st.integers(1, 12), min_size=1))
def test_settling_once_per_batch_equals_settling_every_event(
        events: list[Event], sizes: list[int]) -> None:
    """What the writer and the replay do (K's valuations settled once per batch) gives,
    at each batch's end, the very state and snapshot of the eager fold, byte for byte."""
    eager = replay(events)
    s, i, batch = GENESIS, 0, 0
    while i < len(events):
        size = sizes[batch % len(sizes)]
        for e in events[i:i + size]:
            s = fold(s, e, s.seq + 1, settle=False)
        i, batch = min(i + size, len(events)), batch + 1
        s = settled(s)
        assert s.k.stale_symbols == frozenset() and not s.k.stale_assets
        assert ENCODE(s) == ENCODE(eager[i - 1])
        assert ENCODE(project(s, CFG)) == ENCODE(project(eager[i - 1], CFG))


ONE_FILL = OrderFilled(venue_ts=S, symbol="BTCUSDT", trade_id="t1", order_id="o1", side="buy",
                       qty=D(1), price=D(100), fee=D(0), fee_currency="USDT")


@SETTINGS
@given(sequences, st.lists(st.integers(1, 12), min_size=1), st.lists(st.booleans(), min_size=1))
def test_a_draft_folds_each_batch_to_the_state_of_folding_event_by_event(
        events: list[Event], sizes: list[int], afresh: list[bool]) -> None:
    """What the writer, the replay and `snapshot --at` do (a `Draft` folds the batch)
    gives, at each batch's end, the very state of folding event by event, byte for
    byte; a draft goes on from the state it gave (the replay) as well as a new draft
    from it (the writer); and no state it started from or gave changes afterwards."""
    eager = replay(events)
    draft, i, batch = Draft(GENESIS), 0, 0
    given_states: list[tuple[AccountState, bytes]] = [(GENESIS, ENCODE(GENESIS))]
    while i < len(events):
        size = sizes[batch % len(sizes)]
        for e in events[i:i + size]:
            draft.fold(e, draft.seq + 1)
        i, batch = min(i + size, len(events)), batch + 1
        s = draft.state()
        given_states.append((s, ENCODE(s)))
        assert ENCODE(settled(s)) == ENCODE(eager[i - 1])
        if afresh[batch % len(afresh)]:
            draft = Draft(settled(s))
            given_states.append((draft.state(), ENCODE(settled(s))))
    for state, encoded in given_states:
        assert ENCODE(state) == encoded, "a state changed after the draft gave it"


def test_a_fold_that_raises_in_a_draft_leaves_the_state_it_started_from_unchanged() -> None:
    fill = ONE_FILL
    start = replay([*ALL.values(), fill])[-1]
    before = ENCODE(start)
    draft = Draft(start)
    draft.fold(msgspec.structs.replace(fill, trade_id="t2", venue_ts=2 * S), start.seq + 1)
    unknown = msgspec.structs.replace(fill, trade_id="t3", venue_ts=3 * S, symbol="DOGEUSDT")
    with pytest.raises(InvariantViolation, match="undefined instrument DOGEUSDT"):
        draft.fold(unknown, start.seq + 2)
    assert ENCODE(start) == before
    # The draft is dropped; a new one from the same state goes on as if nothing happened.
    again = Draft(start)
    again.fold(msgspec.structs.replace(fill, trade_id="t2", venue_ts=2 * S), start.seq + 1)
    assert again.state().k.positions["BTCUSDT"].qty == 2
    assert ENCODE(start) == before


def test_a_draft_without_events_gives_its_own_state() -> None:
    fill = ONE_FILL
    s = replay([*ALL.values(), fill])[-1]
    assert Draft(s).state() is s


# --- (c) cash and PnL identities of linear perps ------------------------------------------


@st.composite
def linear_sequences(
    draw: st.DrawFn, *, scale_in: bool, with_cash: bool
) -> tuple[list[Event], dict[str, D], D]:
    """Linear fills (fees in USDT) and, if `with_cash`, marks, funding, transfers and
    adjustments; then a final mark for every symbol. Without `scale_in`, a fill that
    would add to an open position is turned around, so every average is a fill price.

    Returns the events, the final position per key (the test's own running sum) and the
    fills' signed cash flow Σ −q·px·cs."""
    events: list[Event] = list(LINEAR.values())
    held: dict[str, D] = {}
    flow = D(0)
    for i in range(draw(st.integers(1, 25))):
        ts = (i + 1) * S
        kind = draw(st.sampled_from(
            ["fill", "fill", "fill", "mark", "funding", "transfer", "adjust"]
            if with_cash else ["fill"]))
        symbol = draw(st.sampled_from(sorted(LINEAR)))
        if kind == "fill":
            ps = draw(st.sampled_from(["both", "long", "short"])) if symbol == "ETHUSDT" \
                else "both"
            key = position_key(symbol, ps)
            qty, px = draw(qtys), draw(prices)
            q = qty if draw(st.booleans()) else -qty
            now = held.get(key, D(0))
            if not scale_in and now and (now > 0) == (q > 0):
                q = -q
            held[key] = now + q
            with decimal.localcontext(prec=200):
                flow -= q * px * LINEAR[symbol].contract_size
            events.append(OrderFilled(
                venue_ts=ts, recv_ts=ts, symbol=symbol, trade_id=f"t{i}", order_id=f"o{i}",
                side="buy" if q > 0 else "sell", qty=qty, price=px, fee=draw(fees),
                fee_currency="USDT", position_side=ps))  # type: ignore[arg-type]
        elif kind == "mark":
            events.append(MarkPriceObserved(venue_ts=ts, recv_ts=ts, symbol=symbol,
                                            price=draw(prices)))
        elif kind == "funding":
            amount = draw(cash) * draw(st.sampled_from([1, -1]))
            events.append(FundingSettled(venue_ts=ts, recv_ts=ts, symbol=symbol, asset="USDT",
                                         amount=amount))
        elif kind == "transfer":
            events.append(TransferCompleted(
                venue_ts=ts, recv_ts=ts, transfer_id=f"x{i}", asset="USDT",
                direction=draw(st.sampled_from(["deposit", "withdrawal"])), amount=draw(cash)))
        else:
            events.append(ManualAdjustment(venue_ts=ts, recv_ts=ts, adjustment_id=f"a{i}",
                                           asset="USDT", amount=draw(cash), reason="test"))
    marks = {sym: draw(prices) for sym in sorted(LINEAR)}
    for j, (sym, px) in enumerate(marks.items()):
        ts = (10**6 + j) * S
        events.append(MarkPriceObserved(venue_ts=ts, recv_ts=ts, symbol=sym, price=px))
    with decimal.localcontext(prec=200):
        for key, q in held.items():
            sym = key.split("|")[0]
            flow += q * marks[sym] * LINEAR[sym].contract_size
    return events, held, flow


def _get(m: dict[str, D], a: str = "USDT") -> D:
    return m.get(a, D(0))


def _capital(s: AccountState) -> D:
    k = s.k
    with decimal.localcontext(prec=200):  # exact: this sum must not round
        return (_get(k.transfers) + _get(k.adjustments) + _get(k.realized_pnl) - _get(k.fees)
                + _get(k.funding))


def _check_positions(s: AccountState, held: dict[str, D]) -> None:
    assert {key: p.qty for key, p in s.k.positions.items()} == {
        key: q for key, q in held.items() if q}


@SETTINGS
@given(linear_sequences(scale_in=True, with_cash=True))
def test_cash_identity_is_exact(case: tuple[list[Event], dict[str, D], D]) -> None:
    # Averages are rounded to 18 places, so every later sum and product stays exact.
    events, held, _ = case
    for s in replay(events):
        assert _get(s.k.wallets) == _capital(s)
        with decimal.localcontext(prec=200):
            assert _get(s.k.equity) == _get(s.k.wallets) + _get(s.k.unrealized_pnl)
    _check_positions(s, held)


@SETTINGS
@given(linear_sequences(scale_in=False, with_cash=False))
def test_realized_plus_unrealized_equals_the_fills_cash_flows_exactly(
    case: tuple[list[Event], dict[str, D], D],
) -> None:
    events, held, flow = case
    s = replay(events)[-1]
    _check_positions(s, held)
    with decimal.localcontext(prec=200):
        assert _get(s.k.realized_pnl) + _get(s.k.unrealized_pnl) == flow


@SETTINGS
@given(linear_sequences(scale_in=True, with_cash=False))
def test_realized_plus_unrealized_equals_the_fills_cash_flows_with_scale_ins(
    case: tuple[list[Event], dict[str, D], D],
) -> None:
    events, held, flow = case
    s = replay(events)[-1]
    _check_positions(s, held)
    # Each scale-in rounds avg_open by at most 0.5e-18; at most 25 fills of at most 5
    # contracts: |error| ≤ 25·125·0.5e-18 < 1e-14.
    with decimal.localcontext(prec=200):
        assert abs(_get(s.k.realized_pnl) + _get(s.k.unrealized_pnl) - flow) < D("1e-14")


# --- (d) the fold is a function of the de-duplicated sequence ----------------------------


def dedup(events: list[Event]) -> list[Event]:
    seen: set[str] = set()
    out = []
    for e in events:
        if e.dedup_key not in seen:
            seen.add(e.dedup_key)
            out.append(e)
    return out


@SETTINGS
@given(sequences, st.data())
def test_folding_the_deduplicated_redeliveries_equals_folding_each_fact_once(
    events: list[Event], data: st.DataObject
) -> None:
    assert len({e.dedup_key for e in events}) == len(events)  # the generator's promise
    noisy: list[Event] = []
    duplicated_fill = False
    for i, e in enumerate(events):
        noisy.append(e)
        # redeliver some earlier fact, as a reconnect or a REST backfill would
        for j in data.draw(st.lists(st.integers(0, i), max_size=2), label=f"redeliver@{i}"):
            again = msgspec.structs.replace(events[j], recv_ts=e.recv_ts)
            noisy.append(again)
            duplicated_fill = duplicated_fill or isinstance(again, OrderFilled)
    assert dedup(noisy) == events
    once = replay(events)[-1] if events else GENESIS
    deduped = replay(dedup(noisy))[-1] if events else GENESIS
    assert ENCODE(deduped) == ENCODE(once)
    if duplicated_fill:
        # without the dedup a redelivered fill would be counted twice
        assert ENCODE(replay(noisy)[-1].k) != ENCODE(once.k)


# --- (e) the venue's per-fill rounding, through late fills --------------------------------


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["buy", "sell"]), qtys, prices), min_size=1,
                max_size=25), st.randoms(use_true_random=False))
def test_k_plus_venue_rounding_is_what_a_venue_rounding_each_fill_books(
    trades: list[tuple[str, D, D]], rnd: object
) -> None:
    """A venue that books each fill's realized PnL rounded to 8 places, in its own order,
    holds K's exact wallet plus `venue_rounding`, whatever order the fills arrive in."""
    inst = LINEAR["BTCUSDT"]
    fills = [OrderFilled(venue_ts=(i + 1) * S, recv_ts=(i + 1) * S, symbol="BTCUSDT",
                         trade_id=f"{i + 1}", order_id=f"o{i}", side=side, qty=q,  # type: ignore[arg-type]
                         price=px, fee=D(0), fee_currency="USDT")
             for i, (side, q, px) in enumerate(trades)]
    # the venue: its own order, each realized figure rounded before it is booked
    pos, booked = Position(symbol="BTCUSDT"), D(0)
    for f in fills:
        if pos.qty == 0:
            pos = Position(symbol="BTCUSDT")
        pos, realized = trade(pos, f.qty if f.side == "buy" else -f.qty, f.price, inst)
        booked += round_to(realized, 8, "half_even")
    arrival = list(fills)
    rnd.shuffle(arrival)  # type: ignore[attr-defined]
    s = GENESIS
    head: list[Event] = [inst, AssetDefined(venue_ts=0, asset="USDT", precision=8)]
    for seq, e in enumerate([*head, *arrival], 1):
        s = fold(s, e, seq)
    assert s.k.wallets.get("USDT", D(0)) + s.k.venue_rounding["USDT"] == booked
