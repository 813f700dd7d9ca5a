"""One `diff` pass over many working intents (issue 8's target: 1,000 intents with 1,000
orders under 5 ms), against the same state's plain dict walk as a same-run baseline.

    .venv/bin/python -m bench.diff [--intents 1000] [--rounds 50]

The state: `--intents` limit intents on one symbol, every one placed and acknowledged
(ACTIVE, converged), so the pass must look at all of them and find nothing to do, the
common case; then the same with a tenth of them amended (100 amends to emit).
"""

from __future__ import annotations

import argparse
import statistics
import time
from decimal import Decimal as D

from events.facts import InstrumentDefined
from events.orders import CommandAcknowledged, IntentAmended, IntentPlaced
from kernel import money
from kernel.diff import DiffConfig, command_event, diff
from kernel.state import GENESIS, AccountState, fold

CFG = DiffConfig()


def converged(n: int) -> AccountState:
    s = fold(GENESIS, InstrumentDefined(
        venue_ts=1, recv_ts=1, symbol="BTCUSDT", instrument_kind="linear", base="BTC",
        quote="USDT", settle="USDT", tick_size=D("0.1"), lot_size=D("0.001"),
        min_notional=D("0")), 1)
    for i in range(n):
        s = fold(s, IntentPlaced(venue_ts=2, recv_ts=2, intent_id=f"i{i}", symbol="BTCUSDT",
                                 side="buy", order_type="limit", qty=D("0.001"),
                                 price=D("50000.0") + i), s.seq + 1)
    for a in diff(s, CFG):
        s = fold(s, command_event(s, a, 3), s.seq + 1)  # type: ignore[arg-type]
        s = fold(s, CommandAcknowledged(venue_ts=4, recv_ts=4,
                                        command_id=a.command_id), s.seq + 1)
    assert diff(s, CFG) == []
    return s


def time_pass(s: AccountState, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        diff(s, CFG)
        out.append((time.perf_counter() - t) * 1e3)
    return out


def time_walk(s: AccountState, rounds: int) -> list[float]:
    """The floor: visiting every order state and its intent, deciding nothing."""
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        n = 0
        for intent_id in sorted(s.book.orders):
            o = s.book.orders[intent_id]
            n += o.status == "ACTIVE" and s.book.intents[intent_id].revision >= 0
        out.append((time.perf_counter() - t) * 1e3)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--intents", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=50)
    args = p.parse_args()
    money.install()
    s = converged(args.intents)
    amended = s
    for i in range(0, args.intents, 10):
        amended = fold(amended, IntentAmended(venue_ts=5, recv_ts=5, intent_id=f"i{i}",
                                              revision=1, price=D("40000.0")), amended.seq + 1)
    assert len(diff(amended, CFG)) == args.intents // 10
    rows = [("plain walk of the book (floor)", time_walk(s, args.rounds)),
            (f"diff, {args.intents} converged intents", time_pass(s, args.rounds)),
            (f"diff, {args.intents // 10} of them amended", time_pass(amended, args.rounds))]
    print(f"{args.intents} intents with {args.intents} orders, {args.rounds} rounds (ms)")
    print("| pass | min | median | max |\n|---|---:|---:|---:|")
    for name, ms in rows:
        print(f"| {name} | {min(ms):.3f} | {statistics.median(ms):.3f} | {max(ms):.3f} |")
    floor = statistics.median(rows[0][1])
    print(f"diff ÷ floor (medians): {statistics.median(rows[1][1]) / floor:.1f}×")


if __name__ == "__main__":
    main()
