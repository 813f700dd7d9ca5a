"""Every test runs in the kernel's decimal context, installed afresh for each one: a
library may change the current context (ccxt sets its rounding to ROUND_HALF_UP), and a
test that folds directly must not inherit what an earlier one's library did."""

from collections.abc import Iterator

import pytest

from kernel import money

money.install()


@pytest.fixture(autouse=True)
def _kernel_decimal_context() -> Iterator[None]:
    money.install()
    yield


# A bound NOTIFY_SOCKET, for the tests that run the daemon as a subprocess.
from tests.campaign_support import notify  # noqa: E402, F401
