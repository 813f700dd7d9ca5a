"""`exkernel tail`: the event log, one line per event; `-f` follows new appends.

`tail -f` follows a running daemon through its API (`subscribe_events`: pushed as each
commit lands, resumed across a daemon restart with no gap and no repeat) when it can: a
token (`$EXKERNEL_API_TOKEN` or `--token-file`) and the daemon's socket answering. It
polls the log file otherwise. stderr names the source, and for the file, why not the
API. Without `-f` it reads the file: a reader, no lock, the same lines.

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
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TextIO

from events.codec import KINDS, Event, decode_logged, encode
from events.log import EventLog
from kernel.cli import api
from kernel.cli.render import event_line
from kernel.client import ApiError, Client, Unreachable
from kernel.errors import ConfigError


async def cmd_tail(args: argparse.Namespace) -> int:
    unknown = [k for k in args.kind if k not in KINDS]
    if unknown:
        print(f"exkernel: unknown kind {', '.join(unknown)}; kinds: {', '.join(sorted(KINDS))}",
              file=sys.stderr)
        return 2
    db = _db(args)
    try:
        if args.follow:
            client, why = await _api(args, db)
            if client is not None:
                print(f"exkernel: source: the daemon's API at {client.address}",
                      file=sys.stderr)
                try:
                    return await _until_reader_gone(_follow_api(client, args), args.interval)
                finally:
                    await client.close()
            print(f"exkernel: source: the log file {db} ({why})", file=sys.stderr)
        log = await EventLog.open(db, readonly=True)
        try:
            return await _tail(log, args)
        finally:
            await log.close()
    except BrokenPipeError:
        # `exkernel tail -f | head`: the reader is done, and so are we. Quietly.
        silence_stdout()
        return 0


def _db(args: argparse.Namespace) -> Path:
    """--db when given; else the log in --state-dir (or the one --config names)."""
    if args.db is not None:
        return Path(args.db)
    if args.state_dir is not None or args.config is not None:
        return api.target(args).state_dir / "events.db"
    return Path(args.default_db)


async def _api(args: argparse.Namespace, db: Path) -> tuple[Client | None, str]:
    """A session with the daemon whose log `db` is, or None and why not."""
    try:
        secret = api.token(args)
    except ConfigError as e:
        return None, str(e)
    target = api.Target(state_dir=db.parent, url=args.url)
    if target.url is None and not target.socket.exists():
        return None, f"no API socket {target.socket}"
    try:
        # It keeps reconnecting: a daemon restart is a pause in the stream, not its end.
        return await api.connect(target, secret, timeout=10.0, reconnect=True), ""
    except Unreachable as e:
        return None, str(e)
    except ApiError as e:
        return None, f"the API refused the session: {e}"


async def _follow_api(client: Client, args: argparse.Namespace) -> int:
    assert client.session is not None
    since = args.since if args.since is not None else max(0, client.session.seq - args.lines)
    async for seq, event in client.events(kinds=args.kind, since=since):
        _write(seq, event, args.json)
        sys.stdout.flush()
    return 0


async def _until_reader_gone(follow: Coroutine[Any, Any, int], interval: float) -> int:
    """Run `follow` until it ends, or until stdout's reader has gone (then, as GNU tail
    -f does, stop even though nothing new came to write)."""
    task = asyncio.get_running_loop().create_task(follow)
    try:
        while not task.done():
            await asyncio.wait([task], timeout=interval)
            if not task.done() and reader_gone(sys.stdout):
                raise BrokenPipeError
        return int(task.result())
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, BrokenPipeError):
            await task


def _write(seq: int, event: Event, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(f'{{"seq":{seq},{encode(event).decode()[1:]}\n')
    else:
        sys.stdout.write(event_line(seq, event) + "\n")


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


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               default_db: Path) -> None:
    p = sub.add_parser("tail", help="Print the event log, one line per event; -f follows new"
                                    " appends (through a running daemon's API when it can).",
                       description="Print the event log, one line per event. With -f, follow"
                                   " a running daemon through its API (token:"
                                   f" ${api.TOKEN_ENV} or --token-file), else poll the"
                                   " file; stderr names the source.")
    p.add_argument("--db", type=Path, help="the event log (default: events.db in --state-dir,"
                                            " else $EXKERNEL_DB, else events.db in"
                                            " $STATE_DIRECTORY, else ./var/events.db)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    p.add_argument("-n", "--lines", type=int, default=10, metavar="N",
                   help="start with the last N events (default 10)")
    p.add_argument("--since", type=int, metavar="SEQ", help="start after event SEQ instead")
    p.add_argument("--kind", action="append", default=[], metavar="K",
                   help="only events of kind K (repeatable)")
    p.add_argument("--json", action="store_true", help="each event as JSON with its seq")
    p.add_argument("--state-dir", type=Path, help="the daemon's state directory")
    p.add_argument("--config", type=Path, help="the daemon's config, to find its state dir")
    p.add_argument("--url", help="-f through the daemon's TCP listener, ws://127.0.0.1:PORT/")
    p.add_argument("--token-file", type=Path,
                   help=f"a file holding the API token (default: ${api.TOKEN_ENV})")
    p.add_argument("--interval", type=float, default=0.2, help=argparse.SUPPRESS)
    p.set_defaults(run=cmd_tail, default_db=default_db)


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
