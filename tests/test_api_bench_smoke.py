"""`python -m bench.api_subscribers --quick` runs and prints its tables.

A smoke test of the benchmark script, not of speed: it asserts nothing about rates.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_api_bench_prints_its_tables(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.api_subscribers", "--quick", "--subscribers", "5",
         "--stall-s", "1", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "| step | flood/s asked | subscribers | committed/s |" in done.stdout, done.stdout
    assert "| 1k/s, 5 snapshot subs | 1,000 | 5 |" in done.stdout
    assert "p99 commit → snapshot subscriber at 1k/s" in done.stdout
    assert "A subscriber stalled for 1 s at 1k/s" in done.stdout
    assert "100 round trips" in done.stdout
