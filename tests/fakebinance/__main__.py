"""Run the fake venue standalone: `python -m tests.fakebinance --port 8765 ...` (from the
repository root, so that `tests` is importable).

Prints one JSON line on stdout once it listens (`{"rest_url": ..., "ws_url": ..., "port": ...}`)
and serves until SIGINT or SIGTERM. Point ccxt (or `exkernel run`) at it with the URL overrides
in the package docstring; drive it over `/_fake/...` (control.py). `--walk-bps N` moves every
mark by up to N basis points each `--mark-interval` seconds (a deterministic walk from
`--seed`), so resting orders fill and stops trigger on their own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from decimal import Decimal as D

from .engine import EngineConfig
from .venue import DEFAULT_KEY, DEFAULT_SECRET, FakeBinance, VenueConfig


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.fakebinance", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--api-key", default=DEFAULT_KEY)
    p.add_argument("--api-secret", default=DEFAULT_SECRET)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hedge", action="store_true", help="start in hedge (dual side) mode")
    p.add_argument("--wallet", action="append", default=[], metavar="ASSET=AMOUNT",
                   help="starting balance (repeatable; default USDT=10000)")
    p.add_argument("--listen-key-ttl", type=float, default=3600.0, metavar="SECONDS")
    p.add_argument("--mark-interval", type=float, default=1.0, metavar="SECONDS")
    p.add_argument("--walk-bps", type=int, default=0, metavar="BPS")
    p.add_argument("--legacy-ws-routes", action="store_true")
    return p.parse_args(argv)


def config(args: argparse.Namespace) -> VenueConfig:
    wallet = {"USDT": D("10000")}
    if args.wallet:
        wallet = {}
        for item in args.wallet:
            asset, _, amount = item.partition("=")
            wallet[asset] = D(amount)
    return VenueConfig(api_key=args.api_key, api_secret=args.api_secret, seed=args.seed,
                       engine=EngineConfig(wallet=wallet, hedge_mode=args.hedge),
                       listen_key_ttl_s=args.listen_key_ttl, mark_interval_s=args.mark_interval,
                       legacy_ws_routes=args.legacy_ws_routes, host=args.host, port=args.port)


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with FakeBinance(config(args)) as venue:
        print(json.dumps({"rest_url": venue.rest_url, "ws_url": venue.ws_url,
                          "port": venue.port, "api_key": venue.config.api_key}), flush=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.mark_interval)
            if args.walk_bps and not stop.is_set():
                for symbol in venue.engine.instruments:
                    await venue.walk(symbol, 1, step_bps=args.walk_bps)


def main(argv: list[str] | None = None) -> int:
    asyncio.run(serve(parse(sys.argv[1:] if argv is None else argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
