"""kernel/backoff.py: delays and decisions as tables, no sockets, no clocks."""

from __future__ import annotations

import ast
import itertools
import random
from pathlib import Path

import pytest

from kernel.backoff import backoff, classify
from kernel.errors import (
    ConfigError,
    CorruptLogError,
    CredentialsRejected,
    EventValidationError,
    InvariantViolation,
    LogError,
    VenueError,
    VenueUnavailable,
)


def take(n: int, **kw: float) -> list[float]:
    return list(itertools.islice(backoff(rng=random.Random(7), **kw), n))


def test_without_jitter_delays_double_up_to_the_cap() -> None:
    assert take(9, jitter=0) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert take(4, initial=1, factor=3, max_delay=10, jitter=0) == [1, 3, 9, 10]
    assert take(3, initial=2, factor=1, jitter=0) == [2, 2, 2]


def test_jitter_spreads_each_delay_within_its_band_and_never_past_the_cap() -> None:
    delays = take(40, jitter=0.2)
    bases = take(40, jitter=0)
    for d, base in zip(delays, bases, strict=True):
        assert base * 0.8 <= d <= min(30.0, base * 1.2)
    assert len(set(delays[:6])) == 6
    assert delays[:6] != bases[:6]
    assert max(delays) <= 30.0
    assert min(delays[10:]) >= 24.0  # at the cap the band is [cap * 0.8, cap]


def test_the_same_seed_gives_the_same_delays() -> None:
    a = list(itertools.islice(backoff(rng=random.Random(1)), 10))
    b = list(itertools.islice(backoff(rng=random.Random(1)), 10))
    c = list(itertools.islice(backoff(rng=random.Random(2)), 10))
    assert a == b != c


@pytest.mark.parametrize(
    "kw",
    [{"initial": 0}, {"initial": -1}, {"initial": 60}, {"factor": 0.5},
     {"jitter": -0.1}, {"jitter": 1.0}, {"max_delay": 0.1}],
)
def test_a_meaningless_schedule_fails_at_once(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        backoff(rng=random.Random(), **kw)  # not on the first next()


class _RejectedOverTheNetwork(CredentialsRejected, OSError):
    pass


@pytest.mark.parametrize(
    ("exc", "decision"),
    [
        (VenueUnavailable("ws closed"), "retry"),
        (OSError("network unreachable"), "retry"),
        (ConnectionResetError(), "retry"),
        (ConnectionRefusedError(), "retry"),
        (TimeoutError(), "retry"),
        (CredentialsRejected("invalid api key"), "fatal"),
        (_RejectedOverTheNetwork("401"), "fatal"),  # fatal wins over retryable
        (ConfigError("bad"), "fatal"),
        (VenueError("unmapped venue error"), "fatal"),
        (LogError("disk full"), "fatal"),
        (CorruptLogError("hash chain broken"), "fatal"),
        (InvariantViolation("negative qty"), "fatal"),
        (EventValidationError("NaN"), "fatal"),
        (ValueError("bug"), "fatal"),
        (KeyError("bug"), "fatal"),
        (RuntimeError("bug"), "fatal"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v,
)
def test_classify(exc: BaseException, decision: str) -> None:
    assert classify(exc) == decision


def test_backoff_reads_no_clock_and_opens_no_socket() -> None:
    source = (Path(__file__).parent.parent / "kernel" / "backoff.py").read_text()
    imported = {a.name.split(".")[0] for n in ast.walk(ast.parse(source))
                if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(ast.parse(source))
                 if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"asyncio", "time", "socket", "os", "datetime", "structlog"}
