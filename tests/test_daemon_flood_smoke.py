"""`python -m bench.daemon_flood --quick` runs the daemon under a flood and prints its table.

A smoke test of the benchmark script, not of speed: it asserts nothing about rates.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = "| step | sync | instr | pace ms | flood/s asked | offered/s | committed/s |"


def test_quick_flood_prints_the_table(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.daemon_flood", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert HEADER in done.stdout, done.stdout
    assert "| ramp 1k | FULL |" in done.stdout
    assert "p99 yield→publish at 1k/s" in done.stdout
    # Each latency run is followed by the disk's floor, and the summary shows it.
    assert "disk floor p99 ms by run" in done.stdout
    summary = [line for line in done.stdout.splitlines() if line.startswith("| plain | FULL | 1 |")]
    assert len(summary) == 1 and " of 1 (" in summary[0], done.stdout
