"""Funding settlement on the simulated venue's perpetual positions. Pure: the engine
calls `settle` at each funding time and pushes what it returns.

Every open position pays (or receives) `qty * cs * mark * rate` (`qty * cs / mark *
rate` for an inverse contract; longs pay when the rate is positive), rounded to the
settlement asset's precision before it is booked, like every amount on the venue. It
is settled per position key: in hedge mode `BTCUSDT|long` and `BTCUSDT|short` are two
payments at the same time, as on Binance, each with its own id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from adapters.sim import wire
from adapters.sim.account import Account
from adapters.sim.config import SimInstrument
from adapters.sim.wire import Msg
from kernel.money import q18


@dataclass(frozen=True)
class Funding:
    symbol: str
    asset: str
    amount: Decimal  # at the asset's precision, as booked and reported
    ts_ns: int
    position_side: str = "both"
    funding_id: str = ""


def settle(
    account: Account, instruments: Mapping[str, SimInstrument], marks: Mapping[str, Decimal],
    t: int,
) -> list[tuple[Funding, Msg]]:
    """Book the funding of every open position at time `t`; each payment and its push.

    A payment's id (Binance's income `tranId`) is its funding time in ms and its place
    in that round (two per instrument at most, far below 1000): unique per payment, and
    across restarts of an embedded sim too, where a counter would start again at 1."""
    out: list[tuple[Funding, Msg]] = []
    for _, pos in sorted(account.positions.items()):
        inst, mark = instruments[pos.symbol], marks[pos.symbol]
        rate = inst.funding_rate
        if inst.kind == "inverse":
            exact = -q18(pos.qty * inst.contract_size / mark * rate)
        else:
            exact = -q18(pos.qty * inst.contract_size * mark * rate)
        amount = account.round(inst.settle, exact)
        if not amount:
            continue
        account.credit(inst.settle, amount)
        funding_id = str(wire.ms(t) * 1000 + len(out) + 1)
        paid = Funding(pos.symbol, inst.settle, amount, t, pos.side, funding_id)
        out.append((paid, wire.funding(t, pos.symbol, inst.settle, amount, rate,
                                       account.wallets[inst.settle], pos.qty, pos.side,
                                       funding_id)))
    return out
