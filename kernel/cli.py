"""`exkernel`: the operator's command line.

Exit status: 0 success; 1 `verify` found a fault; 2 usage error; 3 the log could not
be read or written.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec

from events.codec import KINDS, Event, decode
from events.control import quarantine
from events.log import EventLog
from kernel import money
from kernel.errors import LogError
from kernel.reconcile import ReconcileConfig
from kernel.render import event_line, snapshot_summary
from kernel.replay import load_state
from kernel.snapshot import project
from kernel.verify import verify
from kernel.writer import BatchResult, Writer

EXIT_FAULT = 1
EXIT_LOG = 3
INGEST_BATCH = 1000


def default_db() -> Path:
    """`$EXKERNEL_DB`, else `events.db` in `$STATE_DIRECTORY` (systemd), else in ./var."""
    if env := os.environ.get("EXKERNEL_DB"):
        return Path(env)
    state_dir = os.environ.get("STATE_DIRECTORY", "").split(":")[0] or "var"
    return Path(state_dir) / "events.db"


def wall_ns() -> int:
    return time.time_ns()


async def cmd_ingest(args: argparse.Namespace) -> int:
    log = await EventLog.open(args.db, synchronous=args.synchronous)
    try:
        writer = await Writer.open(log, clock=wall_ns, checkpoint_every=args.checkpoint_every)
        total = BatchResult(last_seq=log.last_seq)
        batch: list[Event] = []
        stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
        with stream:
            for lineno, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                try:
                    batch.append(decode(line))
                except (msgspec.DecodeError, msgspec.ValidationError) as e:
                    source = f"ingest:{args.file}:{lineno}"
                    batch.append(quarantine(line.rstrip(b"\r\n"), source=source, reason=str(e),
                                            venue_ts=wall_ns()))
                if len(batch) >= INGEST_BATCH:
                    total.add(await writer.ingest(batch))
                    batch = []
            if batch:
                total.add(await writer.ingest(batch))
    finally:
        await log.close()
    print(
        f"appended {total.appended}  duplicate {total.duplicates}  conflict {total.conflicts}"
        f"  quarantined {total.quarantined}  last seq {total.last_seq}"
    )
    return 0


async def cmd_snapshot(args: argparse.Namespace) -> int:
    log = await EventLog.open(args.db, readonly=True)
    try:
        if args.at is not None and not 0 <= args.at <= log.last_seq:
            print(f"exkernel: --at {args.at} is outside the log (0..{log.last_seq})",
                  file=sys.stderr)
            return 2
        state = await load_state(log, args.at)
    finally:
        await log.close()
    snap = project(state, ReconcileConfig())
    if args.json:
        sys.stdout.write(msgspec.json.encode(snap).decode() + "\n")
    else:
        sys.stdout.write(snapshot_summary(snap))
    return 0


async def cmd_tail(args: argparse.Namespace) -> int:
    unknown = [k for k in args.kind if k not in KINDS]
    if unknown:
        print(f"exkernel: unknown kind {', '.join(unknown)}; kinds: {', '.join(sorted(KINDS))}",
              file=sys.stderr)
        return 2
    log = await EventLog.open(args.db, readonly=True)
    try:
        since = args.since if args.since is not None else max(0, log.last_seq - args.lines)
        while True:
            async for row in log.rows(since=since, kinds=args.kind):
                if args.json:
                    sys.stdout.write(f'{{"seq":{row.seq},{row.payload.decode()[1:]}\n')
                else:
                    sys.stdout.write(event_line(row.seq, decode(row.payload)) + "\n")
                since = row.seq
            sys.stdout.flush()
            if not args.follow:
                return 0
            await asyncio.sleep(args.interval)
    finally:
        await log.close()


async def cmd_verify(args: argparse.Namespace) -> int:
    log = await EventLog.open(args.db, readonly=True)
    try:
        report = await verify(log)
    finally:
        await log.close()
    if report.fault is not None:
        print(f"FAULT at seq {report.fault.seq}: {report.fault.message}")
        print(f"verified {report.events} events and {report.checkpoints} checkpoints before it")
        return EXIT_FAULT
    print(f"OK: {report.events} events, hash chain intact, {report.checkpoints} checkpoints agree")
    return 0


async def cmd_replay(args: argparse.Namespace) -> int:
    log = await EventLog.open(args.db, readonly=True)
    try:
        started = time.perf_counter()
        state = await load_state(log, use_checkpoints=False)
        elapsed = time.perf_counter() - started
    finally:
        await log.close()
    snap = project(state, ReconcileConfig())
    rate = state.seq / elapsed if elapsed > 0 else float("inf")
    print(f"replayed {state.seq} events in {elapsed:.3f} s ({rate:,.0f} events/s);"
          f" verdict {snap.reconcile.verdict.value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exkernel",
        description="The exchange kernel: an event-sourced ledger of one trading account.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--db", type=Path, default=default_db(),
                       help="the event log (default: $EXKERNEL_DB, else events.db in"
                            " $STATE_DIRECTORY, else ./var/events.db)")
        return p

    p = add("ingest", "Append events from a JSON-lines file (docs/events.md); invalid lines are"
                      " quarantined with the reason, never dropped.")
    p.add_argument("file", help="a .jsonl file, or - for standard input")
    p.add_argument("--synchronous", choices=["NORMAL", "FULL"], default="FULL",
                   help="SQLite durability (default FULL: committed survives power loss)")
    p.add_argument("--checkpoint-every", type=int, default=10_000, metavar="N",
                   help="checkpoint the fold state every N events (default 10000)")
    p.set_defaults(run=cmd_ingest)

    p = add("snapshot", "Print the account snapshot (K, E, R1–R6) after the last or a given event.")
    p.add_argument("--at", type=int, metavar="SEQ", help="the snapshot after event SEQ")
    p.add_argument("--json", action="store_true", help="the whole AccountSnapshotV2 as JSON")
    p.set_defaults(run=cmd_snapshot)

    p = add("tail", "Print the event log, one line per event; -f follows new appends.")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    p.add_argument("-n", "--lines", type=int, default=10, metavar="N",
                   help="start with the last N events (default 10)")
    p.add_argument("--since", type=int, metavar="SEQ", help="start after event SEQ instead")
    p.add_argument("--kind", action="append", default=[], metavar="K",
                   help="only events of kind K (repeatable)")
    p.add_argument("--json", action="store_true", help="each event as JSON with its seq")
    p.add_argument("--interval", type=float, default=0.2, help=argparse.SUPPRESS)
    p.set_defaults(run=cmd_tail)

    p = add("verify", "Check sequence continuity, the hash chain, every payload, and that"
                      " replay agrees with every checkpoint. Exit 1 and name the first bad row.")
    p.set_defaults(run=cmd_verify)

    p = add("replay", "Re-fold the whole log from genesis and print events/s.")
    p.set_defaults(run=cmd_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    money.install()
    try:
        return int(asyncio.run(args.run(args)))
    except LogError as e:
        print(f"exkernel: {e}", file=sys.stderr)
        return EXIT_LOG
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
