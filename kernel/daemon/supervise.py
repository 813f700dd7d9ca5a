"""Every task has a parent: retry a repeated step, escalate when it keeps failing.

`Retry` is the bookkeeping a supervised loop needs, without the loop: after each failure
it says how long to back off (`kernel.backoff`), and after `max_failures` in a row it
raises `ResyncFailing`, a `VenueUnavailable`, so the venue loop's ordinary reconnect path
takes over. A fatal error (`is_fatal`) is never retried: it propagates at once, and the
daemon dies loudly (systemd restarts it; replay recovers; the exit status stops a restart
that cannot help).

`first_error` turns an `asyncio.TaskGroup`'s exception group back into the one error a
caller acts on, preferring a fatal one.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from kernel.backoff import backoff
from kernel.errors import (
    ConfigError,
    CredentialsRejected,
    InvariantViolation,
    LogError,
    VenueUnavailable,
)

#: Errors no retry can fix: rejected keys, a bad config, a failed log, a broken invariant.
FATAL = (CredentialsRejected, ConfigError, LogError, InvariantViolation)


def is_fatal(e: BaseException) -> bool:
    """True for the errors a supervised step must not retry; a cancellation or an
    interpreter exit is not an `Exception` and is never retried either."""
    return isinstance(e, FATAL) or not isinstance(e, Exception)


class ResyncFailing(VenueUnavailable):
    """The periodic resync failed `max_failures` times in a row: reconnect."""


class Retry:
    """Consecutive failures of one repeated step (the periodic resync).

    Call `failed(e, step)` after each failure: it re-raises `e` if fatal, raises
    `ResyncFailing` once failures reach `max_failures` in a row, and otherwise returns the
    seconds to wait before trying again. `succeeded()` resets the count and the backoff.
    """

    def __init__(self, max_failures: int, max_delay: float,
                 rng: random.Random | None = None) -> None:
        if max_failures < 1:
            raise ValueError(f"max_failures must be >= 1, was {max_failures}")
        self.max_failures = max_failures
        self.max_delay = max_delay
        self.failures = 0
        self._rng = rng or random.Random()
        self._delays = self._fresh()

    def _fresh(self) -> Iterator[float]:
        return backoff(initial=min(0.5, self.max_delay), max_delay=self.max_delay,
                       rng=self._rng)

    def failed(self, e: BaseException, step: str | None) -> float:
        if is_fatal(e):
            raise e
        self.failures += 1
        if self.failures >= self.max_failures:
            raise ResyncFailing(
                f"resync failed {self.failures} times in a row, last at step"
                f" {step or '?'}: {type(e).__name__}: {e}") from e
        return next(self._delays)

    def succeeded(self) -> None:
        self.failures = 0
        self._delays = self._fresh()


def first_error(e: BaseException) -> BaseException:
    """The error to act on in `e`: itself, or for an exception group its first fatal
    leaf, else its first leaf."""
    if not isinstance(e, BaseExceptionGroup):
        return e
    leaves = list(_leaves(e))
    return next((x for x in leaves if is_fatal(x)), leaves[0])


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for e in group.exceptions:
        if isinstance(e, BaseExceptionGroup):
            yield from _leaves(e)
        else:
            yield e
