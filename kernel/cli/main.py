"""`exkernel`: the operator's command line.

Exit status: 0 success; 1 `verify` found a fault, or `status` found no running daemon;
2 usage error, or `ingest`'s input cannot be read; 3 the log could not be read or
written; 4 the daemon refused the request (`intents`, `halt`, `resume`: invalid,
rejected, conflict, not_found, halted, rate_limited); 5 the API token was refused or
lacks the scope; 6 no running daemon's API answers; 7 no reply in time, or the outcome
is unknown; 75 another process is the log's writer (`run`, `ingest`); 77 the venue
rejected the credentials; 78 a configuration error (or no API token). systemd restarts
on none of 75, 77 and 78.

Readers (`snapshot`, `tail`, `verify`, `replay`, `status`) open the log read-only and
take no lock: they work while the daemon runs. `status` and `tail -f` ask the running
daemon through its API when they can (kernel/cli/status.py, tail.py); `intents`, `halt`
and `resume` go only through it (kernel/cli/intents.py, control.py). Warnings and the
source a command used go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import structlog

from events.log import EventLog
from events.log.lock import WriterLock
from kernel import money
from kernel.cli import control, ingest, intents, status, tail
from kernel.cli.render import snapshot_summary
from kernel.cli.tail import silence_stdout
from kernel.daemon import logs
from kernel.daemon.config import (
    EXIT_CONFIG,
    EXIT_CREDENTIALS,
    EXIT_LOCKED,
    load_config,
    load_secrets,
    resolve_state_dir,
)
from kernel.daemon.replay import load_state
from kernel.daemon.verify import verify
from kernel.errors import ConfigError, CredentialsRejected, LogError, LogLocked
from kernel.public import book_out, public
from kernel.public import encode as public_encode
from kernel.snapshot import project

EXIT_FAULT = 1
EXIT_LOG = 3
def default_db() -> Path:
    """`$EXKERNEL_DB`, else `events.db` in `$STATE_DIRECTORY` (systemd), else in ./var."""
    if env := os.environ.get("EXKERNEL_DB"):
        return Path(env)
    state_dir = os.environ.get("STATE_DIRECTORY", "").split(":")[0] or "var"
    return Path(state_dir) / "events.db"


async def cmd_snapshot(args: argparse.Namespace) -> int:
    reconcile = load_config(args.config).reconcile  # the daemon's bands, not the defaults
    log = await EventLog.open(args.db, readonly=True)
    try:
        if args.at is not None and not 0 <= args.at <= log.last_seq:
            print(f"exkernel: --at {args.at} is outside the log (0..{log.last_seq})",
                  file=sys.stderr)
            return 2
        state = await load_state(log, args.at)
    finally:
        await log.close()
    snap = project(state, reconcile)
    if args.json:
        # The public wire form (docs/snapshot.md), the same the API sends.
        intents, orders = book_out(state.book)
        sys.stdout.write(public_encode(public(snap, intents, orders, state.book)).decode()
                         + "\n")
    else:
        sys.stdout.write(snapshot_summary(snap))
    return 0


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
    reconcile = load_config(args.config).reconcile
    log = await EventLog.open(args.db, readonly=True)
    try:
        started = time.perf_counter()
        state = await load_state(log, use_checkpoints=False)
        elapsed = time.perf_counter() - started
    finally:
        await log.close()
    snap = project(state, reconcile)
    rate = state.seq / elapsed if elapsed > 0 else float("inf")
    print(f"replayed {state.seq} events in {elapsed:.3f} s ({rate:,.0f} events/s);"
          f" verdict {snap.reconcile.verdict.value}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from adapters.factory import make_venue
    from kernel.daemon.metrics import Metrics
    from kernel.daemon.service import Daemon

    try:
        cfg = load_config(args.config)
        secrets = load_secrets(cfg)
        logs.configure(args.log_level or cfg.kernel.log_level)
        venue = make_venue(cfg, secrets)
    except ConfigError as e:
        print(f"exkernel: {e}", file=sys.stderr)
        return EXIT_CONFIG
    state_dir = args.state_dir or resolve_state_dir(cfg)
    log = structlog.get_logger("exkernel")
    db = state_dir / "events.db"  # the daemon's log (kernel/daemon/service.py)
    if state_dir.is_dir():
        # Refuse before binding ports a running writer holds: the operator should read
        # "another writer", not "port in use". The Daemon's own open is the real guard.
        try:
            WriterLock.check(db)
        except LogLocked as e:
            return _locked(e)
    metrics = Metrics()
    if cfg.metrics.enabled:
        try:
            port = metrics.serve(cfg.metrics.host, cfg.metrics.port)
        except OSError as e:
            print(f"exkernel: metrics.port {cfg.metrics.port} on {cfg.metrics.host} is not"
                  f" available ({e.strerror}); set another port or metrics.enabled = false",
                  file=sys.stderr)
            return EXIT_CONFIG
        log.info("metrics", url=f"http://{cfg.metrics.host}:{port}/metrics")
    log.info("starting", config=str(args.config or "(built-in sim defaults)"),
             state_dir=str(state_dir), venue=cfg.venue.kind)
    try:
        return asyncio.run(Daemon(cfg, venue, state_dir, metrics=metrics).run())
    except CredentialsRejected as e:
        log.error("credentials rejected", error=str(e))
        return EXIT_CREDENTIALS
    except LogLocked as e:
        return _locked(e)
    except ConfigError as e:  # found at startup: an API socket that cannot be bound
        print(f"exkernel: {e}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        metrics.close()


def _locked(e: LogLocked) -> int:
    structlog.get_logger("exkernel").error("event log locked", db=e.path, holder_pid=e.pid)
    print(f"exkernel: {e}", file=sys.stderr)
    return EXIT_LOCKED


def cmd_config_check(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.path)
    except ConfigError as e:
        print(f"exkernel: {e}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"OK: {args.path or '(built-in defaults)'}: venue {cfg.venue.kind},"
          f" state dir {resolve_state_dir(cfg)}")
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
    p.set_defaults(run=ingest.cmd_ingest)

    def add_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, help="the daemon's TOML config, for its"
                                                    " [reconcile] bounds (default: built-in)")

    p = add("snapshot", "Print the account snapshot (K, E, R1–R7) after the last or a given event.")
    p.add_argument("--at", type=int, metavar="SEQ", help="the snapshot after event SEQ")
    p.add_argument("--json", action="store_true",
                   help="the public snapshot as JSON (docs/snapshot.md), as the API sends it")
    add_config(p)
    p.set_defaults(run=cmd_snapshot)

    tail.add_parser(sub, default_db())

    p = add("verify", "Check sequence continuity, the hash chain, every payload, and that"
                      " replay agrees with every checkpoint. Exit 1 and name the first bad row.")
    p.set_defaults(run=cmd_verify)

    p = add("replay", "Re-fold the whole log from genesis and print events/s.")
    add_config(p)
    p.set_defaults(run=cmd_replay)

    p = sub.add_parser("run", help="Run the kernel daemon (the embedded sim venue by default).",
                       description="Run the kernel daemon: replay the log, connect the venue,"
                                   " log its facts and reconcile, until SIGTERM or SIGINT.")
    p.add_argument("--config", type=Path, help="a TOML config (default: config/sim.toml's"
                                                " built-in defaults)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                   help="override the config's kernel.log_level")
    p.add_argument("--state-dir", type=Path, help="override the config's kernel.state_dir")
    p.set_defaults(run=cmd_run)

    status.add_parser(sub)
    intents.add_parser(sub)
    control.add_parsers(sub)

    p = sub.add_parser("config", help="Configuration tools.", description="Configuration tools.")
    config_sub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    c = config_sub.add_parser("check", help="Load a config and report the first error.",
                              description="Load a config file and report the first error,"
                                          " naming the file, the key and what was expected.")
    c.add_argument("path", type=Path, nargs="?", help="the TOML file (default: built-in)")
    c.set_defaults(run=cmd_config_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    money.install()
    if args.run is not cmd_run:
        # Stdout is the command's output (JSON for scripts): warnings go to stderr.
        logs.configure("warning", stream=sys.stderr)
    try:
        result = args.run(args)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        return int(result)
    except LogLocked as e:
        print(f"exkernel: {e}", file=sys.stderr)
        return EXIT_LOCKED
    except LogError as e:
        print(f"exkernel: {e}", file=sys.stderr)
        return EXIT_LOG
    except ConfigError as e:
        print(f"exkernel: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        silence_stdout()
        return 0


if __name__ == "__main__":
    sys.exit(main())
