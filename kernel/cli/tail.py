"""`exkernel tail`: the event log, one line per event; `-f` follows new appends.

`exkernel tail -f | head` ends quietly (status 0, nothing on stderr) once the pipe's
reader has gone: on the write that fails, or, with nothing new to write, on the next
poll that sees the pipe closed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import select
import sys
from typing import TextIO

from events.codec import KINDS, decode_logged
from events.log import EventLog
from kernel.cli.render import event_line


async def cmd_tail(args: argparse.Namespace) -> int:
    unknown = [k for k in args.kind if k not in KINDS]
    if unknown:
        print(f"exkernel: unknown kind {', '.join(unknown)}; kinds: {', '.join(sorted(KINDS))}",
              file=sys.stderr)
        return 2
    log = await EventLog.open(args.db, readonly=True)
    try:
        return await _tail(log, args)
    except BrokenPipeError:
        # `exkernel tail -f | head`: the reader is done, and so are we. Quietly.
        silence_stdout()
        return 0
    finally:
        await log.close()


async def _tail(log: EventLog, args: argparse.Namespace) -> int:
    since = args.since if args.since is not None else max(0, log.last_seq - args.lines)
    while True:
        # aclosing: a write that fails mid-loop closes the cursor before the log closes.
        async with contextlib.aclosing(log.rows(since=since, kinds=args.kind)) as rows:
            async for row in rows:
                if args.json:
                    sys.stdout.write(f'{{"seq":{row.seq},{row.payload.decode()[1:]}\n')
                else:
                    sys.stdout.write(event_line(row.seq, decode_logged(row.payload)) + "\n")
                since = row.seq
        sys.stdout.flush()
        if not args.follow:
            return 0
        if reader_gone(sys.stdout):
            raise BrokenPipeError  # noticed while idle, as GNU tail -f does
        await asyncio.sleep(args.interval)


def reader_gone(stream: TextIO) -> bool:
    """True if `stream` is a pipe whose reading end is closed (poll reports an error on
    the writing end), so that a follower with nothing new to write still stops."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return False
    poller = select.poll()
    poller.register(fd, 0)  # no events asked for: only errors and hang-ups are reported
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))


def silence_stdout() -> None:
    """Point stdout at /dev/null once its reader has gone, so that the interpreter's
    flush at exit does not fail again (Python's docs, "Note on SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
