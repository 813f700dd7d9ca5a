"""The disk's floor under the daemon's latency: what SQLite alone, on the same disk and
in the same durability mode, makes an event wait between its arrival and its commit.

`floor(path, synchronous, rate, warmup, seconds)` writes a stream of mark rows (the
sim flood's kind, encoded and hash-chained as the log holds them) into a fresh file
with the log's columns, arriving at `rate` a second, with stdlib `sqlite3` on this
thread and nothing else: whenever rows have arrived, all of them go in one transaction
(group commit, as the writer does); when none has, it sleeps until the next one. Each
row's latency is the end of the commit that held it less its arrival time.

That is a lower bound for any writer that commits before it publishes: no decode, no
fold, no event loop, no second thread, no WAL checkpoint (`wal_autocheckpoint=0`, a
window writes a few MB). Measured beside each daemon run of `bench.daemon_flood`'s
latency section, it tells a run the disk made slow (the floor's own p99 over the
target) from one the kernel did.
"""

from __future__ import annotations

import sqlite3
import time
from decimal import Decimal
from pathlib import Path

from bench.stores import RAW_INSERT, RAW_SCHEMA, RawRow
from events.codec import encode
from events.facts import MarkPriceObserved
from events.log import GENESIS_HASH, chain

T0 = 1_700_000_000_000_000_000


def rows(n: int) -> list[RawRow]:
    """`n` mark rows as the log stores them (payload, dedup key, chain hash)."""
    out: list[RawRow] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        ts = T0 + seq * 1_000_000
        ev = MarkPriceObserved(venue_ts=ts, recv_ts=ts, symbol="BTCUSDT",
                               price=Decimal(30_000) + Decimal(seq % 1000) / 100)
        payload = encode(ev)
        prev = chain(prev, seq, payload)
        out.append((seq, "mark_price_observed", ev.dedup_key, ts, ts, payload, prev))
    return out


def floor(path: Path, synchronous: str, rate: int, warmup: float, seconds: float) -> list[int]:
    """Latencies (ns, arrival → committed) of the rows arriving in the window that
    follows `warmup` seconds, `rate` rows a second, committed as described above."""
    period = 1e9 / rate
    data = rows(int(rate * (warmup + seconds)) + 1)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute(RAW_SCHEMA)
        t0 = time.perf_counter_ns()
        start, end = t0 + int(warmup * 1e9), t0 + int((warmup + seconds) * 1e9)
        done, out = 0, []
        while done < len(data):
            arrived = min(int((time.perf_counter_ns() - t0) / period) + 1, len(data))
            if arrived == done:  # nothing to commit until the next arrival
                time.sleep(max(0.0, (t0 + done * period - time.perf_counter_ns()) / 1e9))
                continue
            db.execute("BEGIN IMMEDIATE")
            db.executemany(RAW_INSERT, data[done:arrived])
            db.execute("COMMIT")
            committed = time.perf_counter_ns()
            for i in range(done, arrived):
                at = t0 + int(i * period)
                if start <= at < end:
                    out.append(committed - at)
            done = arrived
    finally:
        db.close()
    return out
