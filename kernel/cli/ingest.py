"""`exkernel ingest FILE`: append a JSON-lines file of events (docs/events.md) to the log.

Each line is decoded strictly (`events.codec.decode`); a line that holds no valid event
is quarantined with the reason, never dropped. Lines go to the writer in batches of
`BATCH`, each one transaction: a batch is in the log whole or not at all. A batch is
decoded and folded while SQLite commits the one before it (`Writer.ingest_all`).

A line the input cannot give (a read error) stops the command after the lines read
before it are committed, and it says after which line to resume.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import msgspec

from events.codec import Event, decode
from events.control import quarantine
from events.log import EventLog
from kernel.daemon.clock import EventClock
from kernel.daemon.writer import BatchResult, Writer

BATCH = 1000
EXIT_INPUT = 2


class InputUnreadable(Exception):
    """Reading the input failed after `lines` lines, every one of them handed to the
    writer."""

    def __init__(self, name: str, lines: int, error: OSError) -> None:
        super().__init__(f"reading {name} failed after line {lines}: {error.strerror or error}")
        self.lines = lines


def wall_ns() -> int:
    return time.time_ns()


def decode_line(line: bytes, lineno: int) -> Event | str:
    """The event on one input line, or why the line holds none, in the kernel's words
    where the fault is the line's bytes (the schema's own checks name the field)."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"line {lineno} is not valid UTF-8 at byte {e.start + 1}"
    try:
        return decode(line)
    except msgspec.DecodeError as e:
        return f"line {lineno} is not valid JSON ({e})"
    except msgspec.ValidationError as e:
        return str(e)


def lines_of(stream: Iterable[bytes], name: str) -> Iterator[tuple[int, bytes]]:
    """`stream`'s lines, numbered from 1. Raises `InputUnreadable` if reading fails."""
    lineno = 0
    it = iter(stream)
    while True:
        try:
            line = next(it, None)
        except OSError as e:
            raise InputUnreadable(name, lineno, e) from e
        if line is None:
            return
        lineno += 1
        yield lineno, line


async def ingest(writer: Writer, stream: Iterable[bytes], name: str) -> BatchResult:
    """Append the events on `stream`'s lines through `writer`, `BATCH` at a time (a
    quarantine for each line that holds none; each batch decoded while the one before
    it commits, `Writer.ingest_all`). If reading fails, commits the lines read and
    raises `InputUnreadable`; the writer's `LogError` propagates."""
    return await writer.ingest_all(batches(stream, name))


def batches(stream: Iterable[bytes], name: str) -> Iterator[list[Event]]:
    """The events on `stream`'s lines, `BATCH` at a time. If reading fails, the lines
    read before it come as a last batch, and then `InputUnreadable`."""
    batch: list[Event] = []
    try:
        for lineno, line in lines_of(stream, name):
            if not line.strip():
                continue
            found = decode_line(line, lineno)
            if isinstance(found, str):
                batch.append(quarantine(line.rstrip(b"\r\n"), source=f"ingest:{name}:{lineno}",
                                        reason=found, venue_ts=wall_ns()))
            else:
                batch.append(found)
            if len(batch) >= BATCH:
                yield batch
                batch = []
    except InputUnreadable:
        if batch:  # what was read is logged: the error names where to resume
            yield batch
        raise
    if batch:
        yield batch


async def cmd_ingest(args: argparse.Namespace) -> int:
    file: str = args.file
    try:
        stream: BinaryIO = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as e:
        print(f"exkernel: cannot read {file}: {e.strerror or e}", file=sys.stderr)
        return EXIT_INPUT
    with stream:
        # A writer: refused with LogLocked (exit 75) while a daemon holds this log.
        log = await EventLog.open(args.db, synchronous=args.synchronous)
        try:
            writer = await Writer.open(log, clock=EventClock(),
                                       checkpoint_every=args.checkpoint_every)
            started = time.perf_counter()
            try:
                total = await ingest(writer, stream, file)
            except InputUnreadable as e:
                print(f"exkernel: {e}; every line before it is in the log (last seq"
                      f" {writer.state.seq})", file=sys.stderr)
                return EXIT_INPUT
            elapsed = time.perf_counter() - started
        finally:
            await log.close()
    print(
        f"appended {total.appended}  duplicate {total.duplicates}  conflict {total.conflicts}"
        f"  quarantined {total.quarantined}  last seq {total.last_seq}"
        f"  in {elapsed:.3f} s ({total.received / max(elapsed, 1e-9):,.0f} lines/s)"
    )
    return 0
