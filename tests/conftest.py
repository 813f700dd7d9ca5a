"""Every test runs in the kernel's decimal context."""
from kernel import money

money.install()
