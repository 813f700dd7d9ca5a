"""Strategies that use kernel/client: the README's demo (`python -m examples.grid`)."""
