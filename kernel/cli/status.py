"""`exkernel status`: is the daemon running, since when, its last seq, venue connection,
halt state and worst checks.

It asks the running daemon through its API when it can (a token, and the daemon's
socket answering), and reads the status file the daemon rewrites every few seconds
otherwise; stderr says which source it used and, for the file, why not the API.
Exit 0 if the daemon runs, 1 if not.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from kernel.cli import api
from kernel.client import ApiError, Client, ClientError, Unreachable
from kernel.daemon.config import EXIT_CONFIG
from kernel.daemon.status import read_status
from kernel.errors import ConfigError

EXIT_NOT_RUNNING = 1


class Report(msgspec.Struct, kw_only=True):
    """What `status --json` prints, the same shape from either source (a figure the
    source does not have is null)."""

    source: str  # "api" or "file"
    running: bool
    pid: int
    started_at: int
    venue: str
    connected: bool
    ready: bool
    seq: int
    verdict: str
    halted: bool | None
    worst: list[str]
    #: The file's age in seconds (null from the API, which is live).
    age_s: float | None = None


async def cmd_status(args: argparse.Namespace) -> int:
    try:
        t = api.target(args)
    except ConfigError as e:
        print(f"exkernel: {e}", file=sys.stderr)
        return EXIT_CONFIG
    report, why = await _from_api(args, t)
    if report is not None:
        print(f"exkernel: source: the daemon's API at {t}", file=sys.stderr)
    else:
        print(f"exkernel: source: the status file in {t.state_dir} ({why})", file=sys.stderr)
        status, alive = read_status(t.state_dir)
        if status is None:
            if args.json:
                api.out({"source": "file", "running": False, "error": f"no status in"
                         f" {t.state_dir}"})
            else:
                print(f"not running: no status in {t.state_dir}")
            return EXIT_NOT_RUNNING
        report = Report(source="file", running=alive and not status.stopping, pid=status.pid,
                        started_at=status.started_at, venue=status.venue,
                        connected=status.connected, ready=status.ready, seq=status.last_seq,
                        verdict=status.verdict, halted=None, worst=status.worst,
                        age_s=round(max(0.0, (time.time_ns() - status.updated_at) / 1e9), 1))
    if args.json:
        api.out(report)
    else:
        _print(report)
    return 0 if report.running else EXIT_NOT_RUNNING


async def _from_api(args: argparse.Namespace, t: api.Target) -> tuple[Report | None, str]:
    """The live report, or None and why the API could not give it."""
    try:
        secret = api.token(args)
    except ConfigError as e:
        return None, str(e)
    if t.url is None and not t.socket.exists():
        return None, f"no API socket {t.socket}"
    try:
        client = await api.connect(t, secret, timeout=args.timeout)
    except Unreachable as e:
        return None, str(e)
    except ApiError as e:
        return None, f"the API refused the session: {e}"
    try:
        return await _report(client), ""
    except ClientError as e:
        return None, f"the API did not answer: {e}"
    finally:
        await client.close()


async def _report(client: Client) -> Report:
    s = await client.status()
    snap = await client.get_snapshot()
    worst = [f"{c.rule} {c.subject} {c.verdict} {c.reason}"
             for c in snap.reconcile.checks if c.verdict != "OK"]
    return Report(source="api", running=True, pid=s.pid, started_at=s.started_at,
                  venue=s.venue, connected=s.connected, ready=s.ready, seq=s.seq,
                  verdict=s.verdict, halted=s.halted, worst=worst[:20])


def _print(r: Report) -> None:
    since = datetime.fromtimestamp(r.started_at / 1e9, UTC).isoformat(timespec="seconds")
    state = "running" if r.running else "stopped"
    fresh = f"; status written {r.age_s:.1f} s ago" if r.age_s is not None else ""
    print(f"{state} (pid {r.pid}) since {since}{fresh}")
    print(f"venue {r.venue}: {'connected' if r.connected else 'disconnected'}"
          f"{'' if r.ready else ' (not ready yet)'}")
    halted = "" if r.halted is None else f"; trading {'HALTED' if r.halted else 'on'}"
    print(f"last seq {r.seq}; verdict {r.verdict}{halted}")
    for line in r.worst:
        print(f"  {line}")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("status", help="Is the daemon running, since when, its last seq,"
                                      " venue connection, halt state and worst verdict.",
                       description="Ask the running daemon through its API, else read its"
                                   " status file; stderr names the source. Exit 0 if it"
                                   " runs, 1 if not.")
    api.add_target_options(p, json_help="print the report as one JSON object")
    p.set_defaults(run=cmd_status)
