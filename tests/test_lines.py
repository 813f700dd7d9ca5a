"""What the daemon's log lines say: a fact's content, figures at the venue's precision.

Table tests of the pure formatting (kernel/daemon/lines.py), then the real daemon's lines
captured with structlog's `capture_logs()`."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from faulty_venue import eventually, logged, running
from sim_support import BTC, T0, fold_all, quiet
from structlog.testing import capture_logs
from venue_contract import ContractMarket, place

from adapters.sim.venue import SimVenue
from events.codec import Event
from events.control import VenueDisconnected, quarantine
from events.facts import (
    AssetBalance,
    AssetDefined,
    BalanceReported,
    FundingSettled,
    InstrumentDefined,
    MarginReport,
    MarkPriceObserved,
    OrderFilled,
    PositionsReported,
    ReportedPosition,
    TransferCompleted,
)
from events.orders import CommandAcknowledged
from kernel.daemon.config import load_config
from kernel.daemon.lines import Precision, fact_line, fixed, places, status_fields
from kernel.daemon.service import Daemon
from kernel.reconcile import ReconcileConfig
from kernel.snapshot import project

D = Decimal
BTCUSDT = InstrumentDefined(venue_ts=T0, symbol="BTCUSDT", instrument_kind="linear",
                            base="BTC", quote="USDT", settle="USDT", tick_size=D("0.1"),
                            lot_size=D("0.001"), min_notional=D(5))
USDT2 = AssetDefined(venue_ts=T0, asset="USDT", precision=2, rounding="down")
P = Precision({"BTCUSDT": BTCUSDT}, {})


@pytest.mark.parametrize(("step", "n"), [
    ("0.1", 1), ("0.50", 1), ("0.001", 3), ("5", 0), ("1E+1", 0), ("0.00000001", 8)])
def test_places_of_a_tick_or_lot(step: str, n: int) -> None:
    assert places(D(step)) == n


@pytest.mark.parametrize(("value", "n", "shown"), [
    ("10000.385559848838709677", 8, "10000.38555985"),
    ("60000.79032258064516129", 1, "60000.8"),
    ("-0.000000001", 8, "0.00000000"),  # never -0
    ("1E+3", 2, "1000.00"),
    ("999999999999999999.999999999999999999", 18, "999999999999999999.999999999999999999"),
])
def test_fixed_shows_exactly_n_places(value: str, n: int, shown: str) -> None:
    assert fixed(D(value), n) == shown


def test_money_is_at_the_assets_precision_rounded_its_way_else_eight_places() -> None:
    p = Precision({}, {"USDT": USDT2})
    assert p.money(D("1.239"), "USDT") == "1.23"  # "down"
    assert p.money(D("1.239"), "BTC") == "1.23900000"
    assert p.price(D("60000.123456789"), "XYZ") == "60000.12345679"
    assert P.price(D("60000.85"), "BTCUSDT") == "60000.8"  # half-even at the tick
    assert P.qty(D("0.01"), "BTCUSDT") == "0.010"


def fill(**kw: object) -> OrderFilled:
    fields: dict[str, object] = dict(venue_ts=T0, symbol="BTCUSDT", trade_id="7",
                                     order_id="3", side="buy", qty=D("0.01"),
                                     price=D("60000.1"), fee=D("0.240000400"),
                                     fee_currency="USDT")
    fields.update(kw)
    return OrderFilled(**fields)  # type: ignore[arg-type]


FACTS: list[tuple[Event, str, dict[str, object]]] = [
    (fill(), "BTCUSDT buy 0.010 @ 60000.1 fee 0.24000040 USDT",
     {"symbol": "BTCUSDT", "side": "buy", "qty": "0.01", "price": "60000.1",
      "fee": "0.240000400", "fee_currency": "USDT", "trade_id": "7"}),
    (fill(side="sell", position_side="short", venue_realized_pnl=D("-1.5")),
     "BTCUSDT|short sell 0.010 @ 60000.1 fee 0.24000040 USDT realized -1.50000000 USDT",
     {"position_side": "short", "venue_realized_pnl": "-1.5"}),
    (FundingSettled(venue_ts=T0, symbol="BTCUSDT", asset="USDT", amount=D("-0.6"),
                    rate=D("0.0001")),
     "BTCUSDT paid 0.60000000 USDT at rate 0.0001",
     {"symbol": "BTCUSDT", "position_side": "both", "amount": "-0.6", "asset": "USDT"}),
    (FundingSettled(venue_ts=T0, symbol="BTCUSDT", asset="USDT", amount=D("0.6"),
                    position_side="long", funding_id="991"),
     "BTCUSDT|long received 0.60000000 USDT", {"funding_id": "991"}),
    (TransferCompleted(venue_ts=T0, transfer_id="d1", asset="USDT", direction="deposit",
                       amount=D(10000)),
     "deposit 10000.00000000 USDT", {"amount": "10000", "direction": "deposit"}),
    (BalanceReported(venue_ts=T0, balances=(
        AssetBalance(asset="USDT", wallet=D("9999.76"), available=D("9000")),
        AssetBalance(asset="BTC", wallet=D("0.5"))),
        margin=MarginReport(asset="USDT", used=D("60"))),
     "USDT wallet 9999.76000000 available 9000.00000000; BTC wallet 0.50000000;"
     " margin used 60.00000000 USDT", {"wallet": {"USDT": "9999.76", "BTC": "0.5"}}),
    (PositionsReported(venue_ts=T0, positions=(
        ReportedPosition(symbol="BTCUSDT", qty=D("0.01"), entry_price=D("60000.15")),
        ReportedPosition(symbol="BTCUSDT", position_side="short", qty=D("-0.002")))),
     "BTCUSDT 0.010 @ 60000.2, BTCUSDT|short -0.002",
     {"qty": {"BTCUSDT": "0.01", "BTCUSDT|short": "-0.002"}}),
    (PositionsReported(venue_ts=T0, positions=()), "no open positions", {"qty": {}}),
    (quarantine(b'{"qty": NaN}', source="sim", reason="qty must be finite, was NaN",
                venue_ts=T0),
     "sim: qty must be finite, was NaN",
     {"source": "sim", "reason": "qty must be finite, was NaN"}),
    (VenueDisconnected(venue_ts=T0, venue="sim", reason="stream ended"), "stream ended", {}),
]


@pytest.mark.parametrize(("event", "summary", "fields"), FACTS,
                         ids=[f"{type(f[0]).__name__}-{i}" for i, f in enumerate(FACTS)])
def test_a_facts_line_carries_its_content(event: Event, summary: str,
                                          fields: dict[str, object]) -> None:
    line = fact_line(event, P)
    assert line is not None
    assert line[0] == summary
    assert line[1].items() >= fields.items()


def test_a_mark_needs_no_content_line() -> None:
    assert fact_line(MarkPriceObserved(venue_ts=T0, symbol="BTCUSDT", price=D(1)), P) is None


def test_the_status_figures_show_no_division_tails() -> None:
    usdt8 = AssetDefined(venue_ts=T0, asset="USDT", precision=8)
    state = fold_all([
        BTCUSDT, usdt8,
        TransferCompleted(venue_ts=T0, transfer_id="d1", asset="USDT", direction="deposit",
                          amount=D(10000)),
        fill(trade_id="1", qty=D("0.001"), price=D("60000.1"), fee=D(0)),
        fill(trade_id="2", qty=D("0.002"), price=D("60001.2"), fee=D(0)),
        fill(trade_id="3", side="sell", qty=D("0.001"), price=D("60000.1"), fee=D(0)),
    ])
    snap = project(state, ReconcileConfig())
    # Hand-checked: avg (60.0001 + 120.0024) / 0.003 = 60000.8333…; selling 0.001 at
    # 60000.1 realizes -0.000733333333333333, so capital is 9999.999266666666666667.
    assert snap.k.wallets["USDT"] == D("9999.999266666666666667")
    shown = status_fields(snap)
    assert shown["capital"] == {"USDT": "9999.99926667"}
    assert shown["positions"] == {"BTCUSDT": "0.002 @ 60000.8"}


async def test_the_daemons_lines_carry_fills_reports_and_figures_at_precision(
    tmp_path: Path,
) -> None:
    base = load_config(None)
    cfg = msgspec.structs.replace(base, kernel=msgspec.structs.replace(
        base.kernel, resync_every_s=0.5, status_every_s=0.2))
    sim = SimVenue(quiet(BTC, tick_s=0.05))
    daemon = Daemon(cfg, sim, tmp_path)
    with capture_logs() as logs:
        async with running(daemon):
            await eventually(daemon.ready.is_set, what="ready")
            cmd = place(ContractMarket(symbol="BTCUSDT", qty=D("0.002"),
                                       resting_buy_price=D(30000), off_lot_qty=D("0.0015")))
            assert isinstance(await sim.place(cmd), CommandAcknowledged)
            await eventually(lambda: [e for e in logs if e.get("kind") == "order_filled"]
                             and [e for e in logs if e.get("kind") == "positions_reported"
                                  and e["qty"]]
                             and [e for e in logs if e["event"] == "status"
                                  and e["positions"]],
                             what="the fill, the venue's report of it, a status line")
    [(_, booked)] = await logged(tmp_path / "events.db", "order_filled")
    assert isinstance(booked, OrderFilled)
    assert daemon._writer is not None
    snap = daemon._writer.snapshot
    want = snap.assets["USDT"].precision if "USDT" in snap.assets else 8
    [line] = [e for e in logs if e.get("kind") == "order_filled"]
    assert line["log_level"] == "info"
    realized = ("" if booked.venue_realized_pnl is None
                else f" realized {fixed(booked.venue_realized_pnl, want)} USDT")
    assert line["summary"] == (f"BTCUSDT buy 0.002 @ {fixed(booked.price, 1)}"
                               f" fee {fixed(booked.fee, want)} USDT{realized}")
    assert (line["symbol"], line["side"], line["qty"], line["price"], line["fee"],
            line["fee_currency"]) == ("BTCUSDT", "buy", "0.002", str(booked.price),
                                      str(booked.fee), "USDT")
    balance = next(e for e in logs if e.get("kind") == "balance_reported")
    assert set(balance["wallet"]) == {"USDT"} and "USDT wallet " in balance["summary"]
    positions = [e for e in logs if e.get("kind") == "positions_reported"]
    assert any(e["qty"] == {"BTCUSDT": "0.002"} for e in positions), positions
    status = [e for e in logs if e["event"] == "status" and e["positions"]][-1]
    for figure in (status["capital"]["USDT"], status["equity"]["USDT"]):
        assert len(figure.split(".")[1]) == want, status
    assert status["positions"]["BTCUSDT"].startswith("0.002 @ ")
