"""A deterministic, venue-like event stream for benchmarks: one instrument set, then
marks, fills (opening, scaling, reducing, flipping), order updates, funding, and
balance/position reports in the proportions a busy perpetual-futures account sees."""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal

from events.codec import Event
from events.facts import (
    AssetBalance,
    BalanceReported,
    FundingSettled,
    InstrumentDefined,
    MarginReport,
    MarkPriceObserved,
    OrderFilled,
    OrderStatusReported,
    PositionsReported,
    ReportedPosition,
    TransferCompleted,
)

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT")
T0 = 1_700_000_000_000_000_000
STEP = 1_000_000  # 1 ms between events


def events(n: int, seed: int = 7) -> Iterator[Event]:
    """`n` events (the first few define instruments and fund the account)."""
    rng = random.Random(seed)
    ts = T0
    prices = {s: Decimal(p) for s, p in zip(SYMBOLS, ("30000", "2000", "100", "0.5"), strict=True)}
    qty = {s: Decimal(0) for s in SYMBOLS}
    head: list[Event] = [
        InstrumentDefined(venue_ts=ts, recv_ts=ts, symbol=s, instrument_kind="linear", base=s[:-4],
                          quote="USDT", settle="USDT", tick_size=Decimal("0.01"),
                          lot_size=Decimal("0.001"), min_notional=Decimal(5))
        for s in SYMBOLS
    ]
    head.append(TransferCompleted(venue_ts=ts, recv_ts=ts, transfer_id="seed", asset="USDT",
                                  direction="deposit", amount=Decimal(1_000_000)))
    yield from head[:n]
    trade = 0
    for i in range(n - len(head)):
        ts += STEP
        s = SYMBOLS[i % len(SYMBOLS)]
        r = rng.random()
        if r < 0.45:
            move = Decimal(rng.randint(-50, 50)) / 10000 * prices[s]
            prices[s] = max(prices[s] + move.quantize(Decimal("0.01")), Decimal("0.01"))
            yield MarkPriceObserved(venue_ts=ts, recv_ts=ts, symbol=s, price=prices[s])
        elif r < 0.75:
            trade += 1
            side = "buy" if rng.random() < 0.5 else "sell"
            q = Decimal(rng.randint(1, 500)) / 1000
            qty[s] += q if side == "buy" else -q
            fee = (q * prices[s] * Decimal("0.0004")).quantize(Decimal("0.00000001"))
            yield OrderFilled(venue_ts=ts, recv_ts=ts, symbol=s, trade_id=str(trade),
                              order_id=f"o{trade}", side=side, qty=q, price=prices[s],
                              fee=fee, fee_currency="USDT", liquidity="taker")
        elif r < 0.95:
            yield OrderStatusReported(venue_ts=ts, recv_ts=ts, symbol=s, order_id=f"o{trade}",
                                      status="filled", side="buy", order_type="market",
                                      qty=Decimal("0.5"), filled_qty=Decimal("0.5"))
        elif r < 0.97:
            yield FundingSettled(venue_ts=ts, recv_ts=ts, symbol=s, asset="USDT",
                                 amount=Decimal(rng.randint(-100, 100)) / 100)
        elif r < 0.985:
            yield BalanceReported(venue_ts=ts, recv_ts=ts,
                                  balances=(AssetBalance(asset="USDT", wallet=Decimal(1_000_000)),),
                                  margin=MarginReport(asset="USDT", used=Decimal(1000)))
        else:
            yield PositionsReported(venue_ts=ts, recv_ts=ts, positions=tuple(
                ReportedPosition(symbol=x, qty=qty[x], mark_price=prices[x])
                for x in SYMBOLS if qty[x]))
