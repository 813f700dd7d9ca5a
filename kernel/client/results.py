"""Typed results of the API's requests (docs/api.md, "Ops"), as the client decodes them.

Unlike requests, these tolerate fields they do not know: a newer daemon may add to a
result (the protocol's rule: fields are added, never changed), and an older client must
still read it. The snapshot inside a result is `kernel.public.PublicSnapshot`, whose
form is versioned on its own.
"""

from __future__ import annotations

import msgspec

from kernel.public import IntentOut, OrderOut, PublicSnapshot


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """The `hello` result: what the daemon agreed to."""

    version: int
    server: str
    #: The token's name in the daemon's config, and what it may do.
    name: str
    scopes: tuple[str, ...]
    #: The daemon's last logged seq and halt state when the session began.
    seq: int
    halted: bool


class Logged(msgspec.Struct, frozen=True, kw_only=True):
    """A change the kernel has logged (committed): its event's `seq`. `duplicate` is
    True when the same request was logged before; `seq` is then the first one's."""

    seq: int
    duplicate: bool = False


class Subscribed(msgspec.Struct, frozen=True, kw_only=True):
    sub: str
    seq: int


class SnapshotResult(msgspec.Struct, frozen=True, kw_only=True):
    snapshot: PublicSnapshot


class IntentList(msgspec.Struct, frozen=True, kw_only=True):
    """The `list_intents` result: intents and the venue orders working them, after `seq`."""

    seq: int
    intents: list[IntentOut] = []
    orders: list[OrderOut] = []


class DaemonStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The `status` result."""

    pid: int
    venue: str
    connected: bool
    ready: bool
    seq: int
    verdict: str
    halted: bool
    queue: int = 0
    subscribers: int = 0
    started_at: int = 0
