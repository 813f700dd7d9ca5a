"""What the writer has committed, held for the API's subscribers; it never blocks the writer.

The writer loop calls `committed(snapshot, book, events)` once per committed batch, in
the writer's task: a plain call that stores references and tells the listeners (the
API's fan-out, `kernel/daemon/subscribers.py`), which do the sending in their own task.
Nothing here awaits, encodes eagerly, or grows with the number of subscribers:

* the latest snapshot, with the intent book it was folded with, and its public JSON
  (`kernel.public`), encoded lazily, at most once per seq, and shared by every
  subscriber and every `get_snapshot` (`snapshot_body`);
* while anyone holds it (`retain_events`), a ring of the last `backlog` committed
  events, each encoded to JSON at most once (the log's own bytes: same encoder); an
  event subscriber further behind than that has lost its place (`event` is None).

A batch's snapshots are conflated to its last: the writer publishes them all within one
call, so no subscriber could have been sent the ones before it anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from events.codec import TAGS, Event, encode
from kernel import public
from kernel.intents import IntentBook
from kernel.locks import BookLocks, LockConfig
from kernel.snapshot import AccountSnapshotV2

Listener = Callable[[], None]


class Encoder(Protocol):
    """What makes a snapshot's public JSON (`PublicEncoder`, or a wrapper of it)."""

    def __call__(self, snap: AccountSnapshotV2, book: IntentBook, *, with_book: bool = True
                 ) -> bytes: ...


def encode_public(snap: AccountSnapshotV2, book: IntentBook) -> bytes:
    """The public snapshot's JSON (docs/snapshot.md), with the book's intents and orders."""
    intents, orders = public.book_out(book)
    return public.encode(public.public(snap, intents, orders, book))


class PublicEncoder:
    """`encode_public`, for one snapshot after another: the book's public intents and
    orders, and the locks of its priced intents, are made once per book (marks, most of
    what moves a snapshot, change neither), not once per snapshot. Same bytes."""

    def __init__(self, cfg: LockConfig | None = None) -> None:
        self.cfg = cfg or LockConfig()
        self._book: IntentBook | None = None
        self._out: tuple[list[public.IntentOut], list[public.OrderOut]] = ([], [])
        self._locks: BookLocks | None = None

    def __call__(self, snap: AccountSnapshotV2, book: IntentBook, *, with_book: bool = True
                 ) -> bytes:
        """The public JSON; without the book's intents and orders if not `with_book`
        (its locks are in `k` either way)."""
        if book is not self._book:
            self._book, self._out = book, public.book_out(book)
        locks = self._locks
        if locks is None or not locks.valid_for(book, snap.instruments, snap.k, self.cfg):
            locks = self._locks = BookLocks(book, snap.instruments, snap.k, self.cfg)
        intents, orders = self._out if with_book else ([], [])
        return public.encode(public.public(
            snap, intents, orders, book,
            locked=locks.locked(book, snap.instruments, snap.k, self.cfg)))


class Logged:
    """One committed event in the ring: its seq and kind, its JSON made on first use."""

    __slots__ = ("_body", "event", "kind", "seq")

    def __init__(self, seq: int, event: Event) -> None:
        self.seq = seq
        self.kind = TAGS[type(event)]
        self.event = event
        self._body: bytes | None = None

    def body(self) -> bytes:
        if self._body is None:
            self._body = encode(self.event)
        return self._body


class Hub:
    def __init__(self, backlog: int = 10_000,
                 encoder: Encoder | None = None
                 ) -> None:
        self.backlog = backlog
        self.seq = 0
        self.latest: AccountSnapshotV2 | None = None
        self.book = IntentBook()
        self.closed = False
        self._encoder: Encoder = encoder or PublicEncoder()
        #: The latest snapshot's public JSON, by whether it carries the book: (seq, body).
        self._bodies: dict[bool, tuple[int, bytes]] = {}
        self._listeners: list[Listener] = []
        self._holders = 0
        self._ring: list[Logged | None] = []
        self._ring_from = 1  # the oldest seq the ring has held since it was retained

    # -- the writer's side -----------------------------------------------------------

    def start(self, snap: AccountSnapshotV2, book: IntentBook) -> None:
        """The state replay ended with, before anything new is committed."""
        self.latest, self.book, self.seq = snap, book, snap.seq
        self._bodies.clear()
        self._ring_from = self.seq + 1

    def committed(self, snap: AccountSnapshotV2, book: IntentBook,
                  events: Sequence[Event]) -> None:
        """One committed batch: its last snapshot (whose seq is the batch's last), the
        book after it, and the events appended, in log order."""
        self.latest, self.book, self.seq = snap, book, snap.seq
        if self._holders:
            ring, size = self._ring, self.backlog
            first = snap.seq - len(events) + 1
            for i, event in enumerate(events):
                ring[(first + i) % size] = Logged(first + i, event)
        for listener in self._listeners:
            listener()

    def close(self) -> None:
        self.closed = True
        for listener in self._listeners:
            listener()

    # -- the readers' side -----------------------------------------------------------

    def listen(self, listener: Listener) -> None:
        """Call `listener()` after each commit and on close (in the writer's task: it
        must only note that there is news, e.g. set an `asyncio.Event`)."""
        self._listeners.append(listener)

    def snapshot_body(self, *, book: bool = True) -> tuple[int, bytes] | None:
        """(seq, public JSON) of the latest snapshot, encoded on first use per seq (and
        `book=False`: without the intents and orders, for subscriptions that asked so)."""
        snap = self.latest
        if snap is None:
            return None
        found = self._bodies.get(book)
        if found is None or found[0] != snap.seq:
            found = self._bodies[book] = (
                snap.seq, self._encoder(snap, self.book, with_book=book))
        return found

    def retain_events(self) -> None:
        """Keep committed events from now on (for event subscribers), until released."""
        if self._holders == 0:
            self._ring = [None] * self.backlog
            self._ring_from = self.seq + 1
        self._holders += 1

    def release_events(self) -> None:
        self._holders -= 1
        if self._holders == 0:
            self._ring = []

    @property
    def oldest_event(self) -> int:
        """The oldest seq the ring still holds (`seq + 1` when it holds none yet)."""
        return max(self._ring_from, self.seq - self.backlog + 1)

    def event(self, seq: int) -> Logged | None:
        """The committed event at `seq`, if the ring still holds it."""
        if not self._holders or not self.oldest_event <= seq <= self.seq:
            return None
        return self._ring[seq % self.backlog]
