"""Subscriptions as async iterators that survive reconnects: the snapshot stream and the
event stream.

Each stream remembers the last `seq` it received. The client (kernel/client/client.py)
subscribes it again on every new connection from that seq (`subscribe_snapshots`
`from_seq`, `subscribe_events` `since`), so the daemon's log fills in whatever the
outage hid; a push at or before that seq is a repeat and is dropped here, whatever the
server sends. Nothing is missed, nothing is seen twice.

Memory stays bounded however slowly the strategy reads:

* snapshots are conflated, latest wins: the stream holds one undecoded snapshot, and
  `skipped` says which seqs the reader did not see (computed from the seqs themselves,
  so it also covers what an outage or the server's own conflation skipped);
* events are never conflated: past `max_buffer` events waiting, the stream stops
  buffering, and once the reader has drained what it holds it subscribes again from its
  last event. The log, not the client's memory, is the buffer.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import msgspec

from events.codec import Event, decode_logged
from kernel.client.errors import ClientError
from kernel.client.results import Subscribed
from kernel.public import PublicSnapshot
from kernel.public import decode as decode_snapshot

Op = Literal["subscribe_snapshots", "subscribe_events"]
#: What a stream asks of its client: subscribe it again (after an overflow), or forget it.
Resubscribe = Callable[["Stream"], Awaitable[None]]
Forget = Callable[["Stream"], Awaitable[None]]


class Stream:
    """What the client needs of a subscription: the request that (re)starts it, and
    where the pushes, the reply, an error or the end go."""

    op: Op

    def __init__(self, resubscribe: Resubscribe, forget: Forget) -> None:
        self._resubscribe = resubscribe
        self._forget = forget
        self._wake = asyncio.Event()
        self._error: BaseException | None = None
        self._ended = False
        #: The server's id for this subscription on the current connection.
        self.server_sub: str | None = None

    def request(self) -> dict[str, Any]:
        """The subscribe request's fields (without id and op), from where to resume."""
        raise NotImplementedError

    def subscribed(self, result: Subscribed) -> None:
        self.server_sub = result.sub

    def push(self, seq: int, skipped: tuple[int, int] | None, payload: msgspec.Raw) -> None:
        raise NotImplementedError

    def fail(self, error: BaseException) -> None:
        """The subscription cannot go on: the reader gets `error` once it has read what
        was delivered before it."""
        if self._error is None and not self._ended:
            self._error = error
            self._wake.set()

    def end(self) -> None:
        """The client was closed: the reader's loop ends after what it holds."""
        self._ended = True
        self._wake.set()

    async def aclose(self) -> None:
        """Stop this subscription (unsubscribe on the server); the iterator ends."""
        self.end()
        await self._forget(self)

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        if self._ended:
            raise StopAsyncIteration
        self._wake.clear()
        await self._wake.wait()


class SnapshotStream(Stream):
    """`async for snap in client.snapshots(from_seq)`: PublicSnapshots in increasing seq,
    latest wins. After each, `skipped` is the (first, last) seq range between it and the
    previous one (or `from_seq`) that this reader did not see, or None."""

    op: Op = "subscribe_snapshots"

    def __init__(self, from_seq: int | None, resubscribe: Resubscribe, forget: Forget,
                 book: bool = True) -> None:
        super().__init__(resubscribe, forget)
        self._from = from_seq
        self._book = book
        self._received: int | None = from_seq
        self._yielded: int | None = from_seq
        self._latest: tuple[int, msgspec.Raw] | None = None
        self.skipped: tuple[int, int] | None = None

    @property
    def last_seq(self) -> int | None:
        """The seq of the last snapshot received (yielded or waiting)."""
        return self._received

    def request(self) -> dict[str, Any]:
        return {"from_seq": self._received, "book": self._book}

    def push(self, seq: int, skipped: tuple[int, int] | None, payload: msgspec.Raw) -> None:
        if self._received is not None and seq <= self._received:
            return  # a repeat (a resumed subscription's overlap): seen already
        self._received = seq
        self._latest = (seq, payload)
        self._wake.set()

    def __aiter__(self) -> SnapshotStream:
        return self

    async def __anext__(self) -> PublicSnapshot:
        while self._latest is None:
            await self._wait()
        seq, payload = self._latest
        self._latest = None
        before = self._yielded
        self.skipped = (before + 1, seq - 1) if before is not None and seq > before + 1 else None
        self._yielded = seq
        try:
            return decode_snapshot(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            # The public form is versioned: a snapshot this client cannot read is a newer
            # daemon's version.
            raise ClientError(f"snapshot at seq {seq} could not be read: {e}") from None


class EventStream(Stream):
    """`async for seq, event in client.events(kinds, since)`: every logged event after
    `since` (of `kinds`, if any), typed, in log order, each once."""

    op: Op = "subscribe_events"

    def __init__(self, kinds: Sequence[str], since: int | None, resubscribe: Resubscribe,
                 forget: Forget, max_buffer: int) -> None:
        super().__init__(resubscribe, forget)
        if max_buffer < 1:
            raise ValueError(f"max_buffer must be >= 1, was {max_buffer}")
        self.kinds = tuple(kinds)
        self._last: int | None = since
        self._buffer: collections.deque[tuple[int, msgspec.Raw]] = collections.deque()
        self._max = max_buffer
        self._overflow = False
        #: How often the reader fell `max_buffer` behind and the stream re-read the log.
        self.overflows = 0

    @property
    def last_seq(self) -> int | None:
        """The seq of the last event received (buffered or read)."""
        return self._last

    def request(self) -> dict[str, Any]:
        return {"since": self._last, "kinds": list(self.kinds)}

    def subscribed(self, result: Subscribed) -> None:
        super().subscribed(result)
        if self._last is None:
            self._last = result.seq  # "from now": a reconnect resumes from here

    def push(self, seq: int, skipped: tuple[int, int] | None, payload: msgspec.Raw) -> None:
        if self._last is not None and seq <= self._last:
            return  # a repeat: seen already
        if self._overflow:
            return  # re-read from the log once the reader has caught up
        if len(self._buffer) >= self._max:
            self._overflow = True
            self.overflows += 1
            self._wake.set()
            return
        self._buffer.append((seq, payload))
        self._last = seq
        self._wake.set()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> tuple[int, Event]:
        while not self._buffer:
            if self._overflow and not self._ended:
                # Cleared first: the new subscription's pushes may arrive during the send.
                self._overflow = False
                try:
                    await self._resubscribe(self)
                except BaseException:
                    self._overflow = True  # canceled: the next read subscribes again
                    raise
                continue
            await self._wait()
        seq, payload = self._buffer.popleft()
        try:
            return seq, decode_logged(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            # The log only holds events the kernel encoded: this is a newer daemon's kind.
            raise ClientError(f"event at seq {seq} could not be read: {e}") from None
