"""`exkernel ingest` when its input fails: a missing file, a read error part-way."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from events.codec import encode
from events.facts import MarkPriceObserved
from events.log import EventLog
from kernel.cli.ingest import BATCH, InputUnreadable, ingest
from kernel.daemon.writer import Writer

ROOT = Path(__file__).resolve().parent.parent
T = 1_700_000_000_000_000_000


def mark(i: int) -> bytes:
    return encode(MarkPriceObserved(venue_ts=T + i, recv_ts=T + i, symbol="BTCUSDT",
                                    price=Decimal(60000 + i))) + b"\n"


def test_a_missing_file_is_named_and_no_log_is_made(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    out = subprocess.run(
        [sys.executable, "-m", "kernel.cli.main", "ingest", "--db", str(db),
         str(tmp_path / "absent.jsonl")], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 2
    assert out.stderr.startswith(f"exkernel: cannot read {tmp_path / 'absent.jsonl'}: ")
    assert "Traceback" not in out.stderr
    assert not db.exists()


async def test_a_read_error_commits_every_line_read_before_it(tmp_path: Path) -> None:
    read = BATCH + 500

    def failing() -> Iterator[bytes]:
        for i in range(read):
            yield mark(i)
        raise OSError(5, "Input/output error")

    log = await EventLog.open(tmp_path / "events.db")
    try:
        writer = await Writer.open(log, clock=lambda: T)
        try:
            await ingest(writer, failing(), "feed.jsonl")
        except InputUnreadable as e:
            assert e.lines == read
            assert str(e) == f"reading feed.jsonl failed after line {read}: Input/output error"
        else:
            raise AssertionError("the read error was not raised")
        assert log.last_seq == read and writer.state.seq == read
    finally:
        await log.close()
