"""A small grid around the mark, through the kernel: the ExecutionContext's demo.

    export EXKERNEL_API_TOKEN=...            # a token with the read and trade scopes
    python -m examples.grid --state-dir var/sim-run

It keeps `--levels` post-only limit buys below the mark and as many sells above it,
`--step` apart, on the instrument's tick. Each round it amends every working level to
follow the mark, and places again a level that filled. It never talks to the venue:
every call is an intent the kernel logs (and its reconciler then works on the venue);
the intents' statuses come back in the snapshots. Each level is a tagged intent
(`grid.L1-buy`, ...): the one after a fill is the tag's next generation
(`grid.L1-buy#2`), and a restarted grid never places a level twice. On its way out it
cancels what is still working.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path

from kernel import money
from kernel.client import ApiError, Client, ClientError, ExecutionContext
from kernel.client.context import Side


def on_tick(price: Decimal, tick: Decimal, rounding: str) -> Decimal:
    return (price / tick).to_integral_value(rounding) * tick


def levels(mark: Decimal, n: int, step: Decimal, tick: Decimal
           ) -> list[tuple[str, Side, Decimal]]:
    """(tag, side, price) for `n` buys below `mark` and `n` sells above it, on the tick
    and never nearer the mark than `step`."""
    out: list[tuple[str, Side, Decimal]] = []
    for i in range(1, n + 1):
        out.append((f"L{i}-buy", "buy", on_tick(mark - i * step, tick, ROUND_FLOOR)))
        out.append((f"L{i}-sell", "sell", on_tick(mark + i * step, tick, ROUND_CEILING)))
    return out


async def mark_of(ctx: ExecutionContext, symbol: str, timeout: float) -> Decimal:
    """The kernel's mark for `symbol`, waiting for the venue's first one."""
    async with asyncio.timeout(timeout):
        async for snap in ctx.updates():
            if (mark := snap.k.marks.get(symbol)) is not None:
                return mark
    raise ClientError(f"no mark for {symbol}")  # the stream ended


async def run(args: argparse.Namespace, token: str) -> int:
    socket = args.state_dir / "api.sock"
    async with Client.connect(unix_path=socket, token=token, client_name="examples.grid"
                              ) as client:
        ctx = await ExecutionContext.start(client, args.strategy)
        try:
            canceled = await ctx.cancel_all(args.symbol)
            print(f"{args.strategy}: canceled {canceled} working intents left from before")
            round_ = 0
            while args.rounds == 0 or round_ < args.rounds:
                round_ += 1
                mark = await mark_of(ctx, args.symbol, timeout=30)
                working = {i.intent_id: i for i in ctx.pending_orders}
                moves = []
                for tag, side, price in levels(mark, args.levels, args.step, args.tick):
                    current = next((i for i in working.values()
                                    if i.intent_id.split("#")[0] == f"{args.strategy}.{tag}"),
                                   None)
                    if current is None:  # new, or the last one filled: its next generation
                        intent_id = await ctx.limit_order(args.symbol, side, args.qty, price,
                                                          post_only=True, tag=tag)
                        moves.append(f"placed {intent_id} @ {price}")
                    elif current.price != price:  # follow the mark: the kernel amends
                        await ctx.amend(current.intent_id, price=price)
                        moves.append(f"amended {current.intent_id} {current.price} -> {price}")
                pos = ctx.position(args.symbol)
                acct = ctx.account
                print(f"round {round_}: mark {mark}; position"
                      f" {pos.qty if pos else 0}; {acct.asset} equity"
                      f" {acct.equity.quantize(Decimal('0.01'))}; " + "; ".join(moves),
                      flush=True)
                await asyncio.sleep(args.every)
            canceled = await ctx.cancel_all(args.symbol)
            acct, cents = ctx.account, Decimal("0.01")
            print(f"done: canceled {canceled}; {acct.asset} equity"
                  f" {acct.equity.quantize(cents)} available"
                  f" {acct.available_margin.quantize(cents)}")
        finally:
            await ctx.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m examples.grid", description=__doc__.split(
        "\n\n")[0])
    p.add_argument("--state-dir", type=Path, default=Path("var/sim-run"),
                   help="the daemon's state directory (its API socket is api.sock in it)")
    p.add_argument("--token-file", type=Path, help="the API token (default: $EXKERNEL_API_TOKEN)")
    p.add_argument("--strategy", default="grid")
    p.add_argument("--symbol", default="BTCUSDT")
    p.add_argument("--levels", type=int, default=2)
    p.add_argument("--step", type=Decimal, default=Decimal("15"), help="price step per level")
    p.add_argument("--tick", type=Decimal, default=Decimal("0.1"), help="the symbol's tick")
    p.add_argument("--qty", default="0.001", help="qty per level, on the symbol's lot")
    p.add_argument("--rounds", type=int, default=3, help="rounds to run (0: until Ctrl-C)")
    p.add_argument("--every", type=float, default=2.0, help="seconds between rounds")
    args = p.parse_args(argv)
    money.install()
    token = (args.token_file.read_text().strip() if args.token_file
             else os.environ.get("EXKERNEL_API_TOKEN", ""))
    if not token:
        print("grid: no API token: export EXKERNEL_API_TOKEN or pass --token-file",
              file=sys.stderr)
        return 78
    try:
        return asyncio.run(run(args, token))
    except ApiError as e:
        print(f"grid: the kernel refused: {e}", file=sys.stderr)
        return 4
    except ClientError as e:
        print(f"grid: {e}", file=sys.stderr)
        return 6
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
