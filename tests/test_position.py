"""kernel.position: fills are booked in the venue's order, whatever order they arrive in."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from events.codec import Event
from events.facts import InstrumentDefined, OrderFilled, TransferCompleted
from kernel.position import WINDOW
from kernel.state import GENESIS, AccountState, fold

T0 = 1_700_000_000_000_000_000
PERP = InstrumentDefined(venue_ts=T0, recv_ts=T0, symbol="BTCUSDT", instrument_kind="linear",
                         base="BTC", quote="USDT", settle="USDT", tick_size=D("0.1"),
                         lot_size=D("0.001"), min_notional=D(0), contract_size=D(1))
SPOT = InstrumentDefined(venue_ts=T0, recv_ts=T0, symbol="ETHUSDT", instrument_kind="spot",
                         base="ETH", quote="USDT", settle="USDT", tick_size=D("0.01"),
                         lot_size=D("0.001"), min_notional=D(0))
FUND = TransferCompleted(venue_ts=T0, recv_ts=T0, transfer_id="t", asset="USDT",
                         direction="deposit", amount=D(10**9))


def fill(i: int, symbol: str, side: str, qty: str, price: str, fee_ccy: str = "USDT"
         ) -> OrderFilled:
    return OrderFilled(venue_ts=T0 + i * 1000, recv_ts=T0 + i * 1000, symbol=symbol,
                       trade_id=str(i), order_id=f"o{i}", side=side,  # type: ignore[arg-type]
                       qty=D(qty), price=D(price), fee=D("0.01"), fee_currency=fee_ccy)


def replay(events: list[Event]) -> AccountState:
    s = GENESIS
    for seq, e in enumerate([PERP, SPOT, FUND, *events], 1):
        s = fold(s, e, seq)
    return s


def books(s: AccountState) -> tuple[object, ...]:
    k = s.k
    return (k.wallets, k.realized_pnl, k.fees,
            {key: (p.qty, p.avg_open, p.realized_pnl) for key, p in k.positions.items()},
            {key: (p.qty, p.avg_open, p.realized_pnl) for key, p in k.holdings.items()})


fills = st.lists(
    st.tuples(st.sampled_from(["BTCUSDT", "ETHUSDT"]), st.sampled_from(["buy", "sell"]),
              st.integers(1, 500), st.integers(900, 1100), st.booleans()),
    min_size=1, max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(fills, st.randoms(use_true_random=False))
def test_any_arrival_order_books_the_same_account(spec: list[tuple[str, str, int, int, bool]],
                                                  rnd: object) -> None:
    ordered: list[Event] = []
    for i, (symbol, side, lots, px, base_fee) in enumerate(spec, 1):
        fee_ccy = "ETH" if symbol == "ETHUSDT" and base_fee and side == "buy" else "USDT"
        ordered.append(fill(i, symbol, side, str(D(lots) / 1000), str(D(px) * 10 ** (
            1 if symbol == "BTCUSDT" else 0)), fee_ccy))
    shuffled = list(ordered)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert books(replay(shuffled)) == books(replay(ordered))


def test_a_late_fill_reprices_the_fills_after_it() -> None:
    # Venue order: buy 1 @ 100, buy 1 @ 200, sell 1 @ 300.
    # avg after both buys 150; the sell realizes (300 − 150)·1 = 150.
    a, b, c = (fill(1, "BTCUSDT", "buy", "1", "100"), fill(2, "BTCUSDT", "buy", "1", "200"),
               fill(3, "BTCUSDT", "sell", "1", "300"))
    late = replay([a, c, b])  # b arrives last: first booked as avg 100, realized 200 ...
    assert late.k.realized_pnl == {"USDT": D(150)}  # ... then re-priced in venue order
    assert late.k.positions["BTCUSDT"].avg_open == D(150)
    assert late.k.wallets["USDT"] == D(10**9) + D(150) - D("0.03")
    assert late.last_fill is not None and late.last_fill.kernel == D(0)  # b itself opens


def test_a_fill_older_than_the_window_is_applied_last() -> None:
    buys = [fill(i, "BTCUSDT", "buy", "1", "100") for i in range(2, WINDOW + 3)]
    s = replay([*buys, fill(1, "BTCUSDT", "sell", "1", "400")])
    # Nothing to re-price against: the sell closes 1 of 129 at the current avg 100.
    assert s.k.realized_pnl == {"USDT": D(300)}
    assert len(s.k.journals["BTCUSDT"]) == WINDOW
