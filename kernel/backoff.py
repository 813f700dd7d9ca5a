"""When to reconnect, and whether to: two small pure functions, after websockets'.

`backoff()` yields the delays between attempts: exponential from `initial`, multiplied by
`factor` each time, capped at `max_delay`, each spread by ±`jitter` (a fraction) so that
many kernels cut off together do not reconnect in lockstep. A delay never exceeds
`max_delay`. Start a fresh generator after a connection succeeds.

`classify()` says whether an error from connecting or streaming is worth retrying.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, Protocol

from kernel.errors import ConfigError, CredentialsRejected, VenueUnavailable

Decision = Literal["retry", "fatal"]


class Rng(Protocol):
    """What `backoff` needs of a random source (`random.Random` has it)."""

    def uniform(self, a: float, b: float, /) -> float: ...


def backoff(
    initial: float = 0.5,
    factor: float = 2.0,
    max_delay: float = 30.0,
    jitter: float = 0.2,
    *,
    rng: Rng,
) -> Iterator[float]:
    """Endless delays in seconds. `rng` is the only source of randomness (seed it in
    tests). Raises ValueError at once for a meaningless schedule."""
    if not 0 < initial <= max_delay:
        raise ValueError(f"need 0 < initial <= max_delay, was {initial} and {max_delay}")
    if factor < 1:
        raise ValueError(f"factor must be >= 1, was {factor}")
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), was {jitter}")
    return _delays(initial, factor, max_delay, jitter, rng)


def _delays(initial: float, factor: float, max_delay: float, jitter: float,
            rng: Rng) -> Iterator[float]:
    delay = initial
    while True:
        yield min(max_delay, delay * (1 + rng.uniform(-jitter, jitter)))
        delay = min(max_delay, delay * factor)


def classify(exc: BaseException) -> Decision:
    """"retry" for a venue outage, a network error or a timeout; "fatal" for rejected
    credentials, a config error, and anything unforeseen (let it crash: systemd
    restarts the daemon and replay recovers, or the exit status stops the restarts)."""
    if isinstance(exc, CredentialsRejected | ConfigError):
        return "fatal"
    if isinstance(exc, VenueUnavailable | OSError | TimeoutError):
        return "retry"
    return "fatal"
