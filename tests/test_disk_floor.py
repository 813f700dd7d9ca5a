"""`bench.disk_floor`: the disk's floor beside the flood's latency runs.

Not a timing test: it checks that every row arriving in the window is committed and
timed once, after it arrived, and that the rows are the log's own (chained) rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench import disk_floor
from events.log import GENESIS_HASH, chain


def test_floor_times_each_row_of_the_window_once_and_commits_every_row(tmp_path: Path) -> None:
    path = tmp_path / "floor.db"
    latencies = disk_floor.floor(path, "NORMAL", rate=500, warmup=0.1, seconds=0.4)
    # Arrivals at 0, 2, 4, ... ms: those in [100 ms, 500 ms) are the window's 200.
    assert len(latencies) == 200
    assert all(lat > 0 for lat in latencies)
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT seq, payload, hash FROM events ORDER BY seq").fetchall()
    finally:
        db.close()
    assert [r[0] for r in rows] == list(range(1, 252))
    prev = GENESIS_HASH
    for seq, payload, digest in rows:
        prev = chain(prev, seq, payload)
        assert digest == prev


def test_rows_hold_distinct_dedup_keys() -> None:
    rows = disk_floor.rows(2_000)
    assert len({r[2] for r in rows}) == 2_000
