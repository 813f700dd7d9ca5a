"""`python -m bench.run --quick` runs every benchmark and prints each one's row.

A smoke test of the benchmark scripts, not of speed: it asserts nothing about rates.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest

ROOT = Path(__file__).resolve().parent.parent

ROWS = (
    "| a | fold: decode + fold + project |",
    "| a | fold: decode + fold, project per 1,000 (published) |",
    "| a | decode alone |",
    "| a | fold alone |",
    "| a | fold alone, settled per 1,000 |",
    "| a | project alone |",
    "| b | raw sqlite3 executemany, NORMAL |",
    "| c | eventsourcing SQLiteApplicationRecorder, library default |",
    "| c | eventsourcing SQLiteApplicationRecorder, NORMAL |",
    "| c | eventsourcing Application + Aggregate, library default |",
    "| d | kernel Writer.ingest, NORMAL |",
    "| d | kernel Writer.ingest, FULL |",
    "| g | `exkernel ingest FILE`, NORMAL |",
    "| e | replay: load_state(use_checkpoints=False) |",
    "| e | `exkernel replay --db PATH` |",
    "| f | memory: Writer.ingest in a fresh process, NORMAL |",
)


def quick(module: str, out: Path) -> str:
    """`python -m MODULE --quick --out OUT`'s stdout, once it exited 0."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_quick_run_prints_every_benchmark_row(tmp_path: Path) -> None:
    stdout = quick("bench.run", tmp_path)
    missing = [row for row in ROWS if row not in stdout]
    assert not missing, f"rows missing from the output:\n{stdout}"
    assert "| (f) RSS growth" in stdout


def test_quick_restart_prints_every_row(tmp_path: Path) -> None:
    """`python -m bench.restart --quick`: the build, the floors, every daemon run."""
    stdout = quick("bench.restart", tmp_path)
    rows = (
        "| Writer.ingest, NORMAL, batches of 1,000, fresh process | 200,000 |",
        "| events ingested | builder VmRSS MB |",
        "| spawn → exit: interpreter + `exkernel run`'s imports | 3 |",
        "| load_state(log): checkpoint + tail | 3 |",
        "| load_state(log, N-1): checkpoint + worst tail | 3 |",
        "| 1 | 0 |",
        "| 3 | 0 |",
        "| 4: worst tail | 9,999 |",
        "| restart to READY=1, tail 9,999 |",
    )
    missing = [row for row in rows if row not in stdout]
    assert not missing, f"rows missing from the output:\n{stdout}"
    assert not list(tmp_path.glob("restart-*")), "the scratch state dir is left behind"


def test_the_peer_bench_splits_a_fill_that_crosses_zero_as_nautilus_engine_does() -> None:
    from decimal import Decimal as D

    from bench import peer
    from bench.workload import T0
    from events.facts import OrderFilled

    def fill(trade: str, side: Literal["buy", "sell"], qty: str) -> OrderFilled:
        return OrderFilled(venue_ts=T0, symbol="BTCUSDT", trade_id=trade, order_id=trade,
                           side=side, qty=D(qty), price=D(100), fee=D("0.4"),
                           fee_currency="USDT")

    parts = peer.split_flips([fill("1", "buy", "1"), fill("2", "sell", "3"), fill("3", "buy", "2")])
    assert [(f.trade_id, q, fee, t) for f, q, fee, t in parts] == [
        ("1", D(1), D("0.4"), "1"),
        # 1 of the 3 closes the long, 2 open a short: the commission pro rata.
        ("2", D(1), D("0.4") / 3, "2-close"), ("2", D(2), D("0.4") - D("0.4") / 3, "2-open"),
        ("3", D(2), D("0.4"), "3"),  # closes the short exactly: no split
    ]


def test_the_peer_bench_says_what_it_needs_without_nautilus() -> None:
    from bench import peer

    if peer.NAUTILUS_VERSION is not None:
        pytest.skip("NautilusTrader is installed here")
    done = subprocess.run([sys.executable, "-m", "bench.peer"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert "bench.peer needs NautilusTrader" in done.stderr
