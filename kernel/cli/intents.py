"""`exkernel intents place|amend|cancel|list`: intents through a running daemon's API.

Each change returns once the kernel has logged it and prints its seq; `--json` prints
the result as one JSON object. An intent placed without `--id` gets `cli-<random>`: give
`--id` to make a retry safe (the same id and body again is answered as a duplicate).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import Any

from kernel.cli import api
from kernel.cli.render import intent_line, order_line
from kernel.client import Client, NotFound

_ORDER_TYPES = ("market", "limit", "stop", "take_profit", "stop_limit", "take_profit_limit")
_STATUSES = ("PENDING", "SUBMITTING", "ACTIVE", "RECONCILING", "FAILED", "COMPLETED",
             "CANCELED")


async def cmd_place(args: argparse.Namespace) -> int:
    intent_id = args.id or f"cli-{secrets.token_hex(6)}"

    async def op(client: Client) -> int:
        logged = await client.place_intent(
            intent_id=intent_id, strategy=args.strategy, symbol=args.symbol, side=args.side,
            order_type=args.type, qty=args.qty, price=args.price,
            trigger_price=args.trigger_price, time_in_force=args.tif,
            reduce_only=args.reduce_only, post_only=args.post_only, oco_group=args.oco_group)
        if args.json:
            api.out({"intent_id": intent_id, "seq": logged.seq, "duplicate": logged.duplicate})
        else:
            again = " (a duplicate: logged before)" if logged.duplicate else ""
            print(f"placed {intent_id} at seq {logged.seq}{again}")
        return 0

    return await api.run(args, op)


async def cmd_amend(args: argparse.Namespace) -> int:
    if args.qty is None and args.price is None and args.trigger_price is None:
        print("exkernel: intents amend needs --qty, --price or --trigger-price", file=sys.stderr)
        return 2

    async def op(client: Client) -> int:
        revision = args.revision
        if revision is None:  # the next one after the kernel's current revision
            listed = await client.list_intents()
            found = next((i for i in listed.intents if i.intent_id == args.intent_id), None)
            if found is None:
                raise NotFound(f"no intent {args.intent_id!r}", field="intent_id")
            revision = found.revision + 1
        logged = await client.amend_intent(args.intent_id, revision, qty=args.qty,
                                           price=args.price, trigger_price=args.trigger_price)
        if args.json:
            api.out({"intent_id": args.intent_id, "revision": revision, "seq": logged.seq})
        else:
            print(f"amended {args.intent_id} (revision {revision}) at seq {logged.seq}")
        return 0

    return await api.run(args, op)


async def cmd_cancel(args: argparse.Namespace) -> int:
    async def op(client: Client) -> int:
        logged = await client.cancel_intent(args.intent_id)
        if args.json:
            api.out({"intent_id": args.intent_id, "seq": logged.seq,
                     "duplicate": logged.duplicate})
        else:
            again = " (canceled before)" if logged.duplicate else ""
            print(f"canceled {args.intent_id} at seq {logged.seq}{again}")
        return 0

    return await api.run(args, op)


async def cmd_list(args: argparse.Namespace) -> int:
    async def op(client: Client) -> int:
        listed = await client.list_intents(args.status)
        if args.json:
            api.out(listed)
            return 0
        orders = {o.intent_id: o for o in listed.orders}
        print(f"{len(listed.intents)} intents at seq {listed.seq}")
        for intent in listed.intents:
            print(intent_line(intent))
            if (order := orders.get(intent.intent_id)) is not None:
                print(order_line(order))
        return 0

    return await api.run(args, op)


def add_parser(sub: Any) -> None:
    """The `intents` command group."""
    p = sub.add_parser("intents", help="Place, amend, cancel and list intents through the"
                                       " running daemon's API.",
                       description="Intents through the running daemon's API. Token:"
                                   f" ${api.TOKEN_ENV} or --token-file.")
    group = p.add_subparsers(dest="intents_command", required=True, metavar="ACTION")

    c = group.add_parser("place", help="Log a new intent.", description="Log a new intent;"
                         " prints its id and seq.")
    c.add_argument("--id", help="the intent id (default: cli-<random>); the same id and body"
                                " again is a duplicate, another body a conflict")
    c.add_argument("--symbol", required=True)
    c.add_argument("--side", required=True, choices=("buy", "sell"))
    c.add_argument("--type", required=True, choices=_ORDER_TYPES, help="the order type")
    c.add_argument("--qty", required=True, help="a decimal, e.g. 0.010")
    c.add_argument("--price", help="the limit price (limit, stop_limit, take_profit_limit)")
    c.add_argument("--trigger-price", help="the trigger (stop, take_profit, *_limit)")
    c.add_argument("--tif", default="GTC", choices=("GTC", "IOC", "FOK"),
                   help="time in force (default GTC)")
    c.add_argument("--reduce-only", action="store_true")
    c.add_argument("--post-only", action="store_true")
    c.add_argument("--oco-group", help="intents in one group cancel each other")
    c.add_argument("--strategy", default="cli", help="the strategy it belongs to (default cli)")
    api.add_target_options(c, json_help="print {intent_id, seq, duplicate}")
    c.set_defaults(run=cmd_place)

    c = group.add_parser("amend", help="Change a working intent's qty or prices.",
                         description="Change a working intent's qty or prices.")
    c.add_argument("intent_id")
    c.add_argument("--qty")
    c.add_argument("--price")
    c.add_argument("--trigger-price")
    c.add_argument("--revision", type=int, help="the revision this makes (default: the"
                                                " intent's current one + 1)")
    api.add_target_options(c, json_help="print {intent_id, revision, seq}")
    c.set_defaults(run=cmd_amend)

    c = group.add_parser("cancel", help="Cancel an intent.", description="Cancel an intent"
                         " (canceling it again is answered as a duplicate).")
    c.add_argument("intent_id")
    api.add_target_options(c, json_help="print {intent_id, seq, duplicate}")
    c.set_defaults(run=cmd_cancel)

    c = group.add_parser("list", help="List intents and the orders working them.",
                         description="List intents and the venue orders working them.")
    c.add_argument("--status", action="append", default=[], choices=_STATUSES,
                   help="only intents in this status (repeatable)")
    api.add_target_options(c, json_help="print {seq, intents, orders} in the snapshot's forms")
    c.set_defaults(run=cmd_list)
