"""`exkernel halt --reason ...` and `exkernel resume --reason ...`, through the running
daemon's API. Logged as `trading_halted` / `trading_resumed` with the token's name as
`by`; while halted the kernel refuses new and amended intents, and cancels still go
through."""

from __future__ import annotations

import argparse
from typing import Any

from kernel.cli import api
from kernel.client import Client


async def cmd_halt(args: argparse.Namespace) -> int:
    async def op(client: Client) -> int:
        logged = await client.halt(args.reason)
        _done(args, "halted", logged.seq)
        return 0

    return await api.run(args, op)


async def cmd_resume(args: argparse.Namespace) -> int:
    async def op(client: Client) -> int:
        logged = await client.resume(args.reason)
        _done(args, "resumed", logged.seq)
        return 0

    return await api.run(args, op)


def _done(args: argparse.Namespace, what: str, seq: int) -> None:
    if args.json:
        api.out({"seq": seq})
    else:
        print(f"trading {what} at seq {seq}")


def add_parsers(sub: Any) -> None:
    for name, run, help in (
        ("halt", cmd_halt, "Halt trading: the kernel refuses new and amended intents."),
        ("resume", cmd_resume, "Resume trading after a halt."),
    ):
        p = sub.add_parser(name, help=help, description=help + " Through the running"
                           f" daemon's API (token: ${api.TOKEN_ENV} or --token-file).")
        p.add_argument("--reason", required=True, help="why (logged with the event)")
        api.add_target_options(p, json_help="print {seq}")
        p.set_defaults(run=run)
