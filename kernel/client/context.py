"""ExecutionContext: flint's order API for strategy authors, on top of the kernel's intents.

::

    async with Client.connect(unix_path=sock, token=token) as client:
        ctx = await ExecutionContext.start(client, "grid")
        oid = await ctx.limit_order("BTCUSDT", "buy", "0.010", "60000.0")
        ctx.pending_orders     # includes oid: the call waited for its snapshot
        await ctx.cancel(oid)

Every call becomes an intent request to the daemon (`place_intent`, `amend_intent`,
`cancel_intent`): the context never talks to a venue. A call returns once the kernel has
logged the intent, and (within `sync_timeout`) once the context's snapshot includes it,
so `pending_orders` and `positions` read right after a call see it. Whether the order is
on the venue is the intent's `status` in later snapshots (the intent reconciler works
it), not the call's return.

Intent ids are the client's, and deterministic:

* without a tag: `<strategy>-<n>`, `n` counting on from the largest this strategy has
  in the kernel's book, so a restarted strategy never reuses an id;
* with a tag: `<strategy>.<tag>`, a name. Placing it again while it works answers
  with the same id (the kernel logs it once) or raises `Conflict` for another body;
  once it is canceled or done, the next placement is `<strategy>.<tag>#2`, and so on.
  A strategy that may crash between sending and hearing back uses tags: its restart
  places the same names, and nothing twice.

docs/client.md lists where this differs from flint's ExecutionContext.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Literal

import msgspec

from kernel.client.client import Client, Number, decimal
from kernel.client.errors import ClientError, Closed
from kernel.client.streams import SnapshotStream
from kernel.intents import FINAL
from kernel.public import IntentOut, PositionK, PublicSnapshot

Side = Literal["buy", "sell"]
_TAG = re.compile(r"^[A-Za-z0-9_.:/@-]{1,64}$")


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """K's figures for one settlement asset, from the latest snapshot."""

    asset: str
    equity: Decimal
    capital: Decimal
    unrealized_pnl: Decimal
    used_margin: Decimal
    available_margin: Decimal


class ExecutionContext:
    def __init__(self, client: Client, strategy: str, *, asset: str | None = None,
                 sync_timeout: float = 10.0) -> None:
        if not _TAG.match(strategy) or "#" in strategy:
            raise ValueError(f"strategy must be 1-64 letters, digits or _.:/@-, was {strategy!r}")
        self.client = client
        self.strategy = strategy
        self.asset = asset
        self.sync_timeout = sync_timeout
        self._counter = 0
        self._revisions: dict[str, int] = {}
        self._canceled: set[str] = set()
        self._snapshot: PublicSnapshot | None = None
        self._error: BaseException | None = None
        self._updated = asyncio.Event()
        self._stream: SnapshotStream | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, client: Client, strategy: str, *, asset: str | None = None,
                    sync_timeout: float = 10.0) -> ExecutionContext:
        """A context following the daemon's snapshots, its id counter past every id the
        strategy has used. Call `close()` when done (it leaves the client open)."""
        ctx = cls(client, strategy, asset=asset, sync_timeout=sync_timeout)
        listed = await client.list_intents()
        ctx._counter = max((n for i in listed.intents if (n := ctx._number(i.intent_id))),
                           default=0)
        ctx._stream = client.snapshots()
        ctx._task = asyncio.get_running_loop().create_task(ctx._follow(), name="ctx-follow")
        await ctx._caught_up(listed.seq, strict=True)
        return ctx

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._stream is not None:
            await self._stream.aclose()

    # -- state, from the latest snapshot ------------------------------------------------

    @property
    def snapshot(self) -> PublicSnapshot:
        """The latest snapshot the context has (raises the stream's error if it failed)."""
        if self._error is not None:
            raise self._error
        if self._snapshot is None:
            raise ClientError("no snapshot yet: create the context with ExecutionContext.start")
        return self._snapshot

    @property
    def positions(self) -> list[PositionK]:
        """Open positions (K's), every strategy's: the account is one."""
        return [p for p in self.snapshot.k.positions.values() if p.qty]

    def position(self, symbol: str) -> PositionK | None:
        """The open position in `symbol`, or None when flat. In hedge mode a symbol may
        have two (long and short): then this raises; read `positions`."""
        found = [p for p in self.positions if p.symbol == symbol]
        if len(found) > 1:
            raise ClientError(f"{symbol} has {len(found)} positions (hedge mode): read"
                              " ctx.positions")
        return found[0] if found else None

    @property
    def pending_orders(self) -> list[IntentOut]:
        """This strategy's working intents: neither final nor canceled by it."""
        return [i for i in self.snapshot.intents
                if i.strategy == self.strategy and self._working(i)]

    @property
    def accounts(self) -> dict[str, Account]:
        return {a: Account(asset=a, equity=k.equity, capital=k.capital,
                           unrealized_pnl=k.unrealized_pnl, used_margin=k.used_margin,
                           available_margin=k.available_margin)
                for a, k in self.snapshot.k.assets.items()}

    @property
    def account(self) -> Account:
        """K's equity, capital and margin in the settlement asset (`asset=`, or the
        account's only one)."""
        accounts = self.accounts
        asset = self.asset
        if asset is None:
            if len(accounts) != 1:
                raise ClientError("the account holds " + (", ".join(sorted(accounts)) or
                                                          "no asset yet")
                                  + ": create the context with asset=...")
            asset = next(iter(accounts))
        if asset not in accounts:
            raise ClientError(f"the account holds no {asset} yet")
        return accounts[asset]

    async def updates(self) -> AsyncIterator[PublicSnapshot]:
        """Each newer snapshot the context receives (latest wins)."""
        seen = -1
        while True:
            snap = self.snapshot
            if snap.seq > seen:
                seen = snap.seq
                yield snap
            else:
                await self._updated.wait()

    # -- orders ------------------------------------------------------------------------

    async def market_order(self, symbol: str, side: Side, qty: Number, *,
                           reduce_only: bool = False, tag: str = "") -> str:
        return await self._place(tag, symbol=symbol, side=side, order_type="market", qty=qty,
                                 reduce_only=reduce_only)

    async def limit_order(self, symbol: str, side: Side, qty: Number, price: Number, *,
                          reduce_only: bool = False, post_only: bool = False,
                          time_in_force: str = "GTC", tag: str = "",
                          oco_group: str | None = None) -> str:
        return await self._place(tag, symbol=symbol, side=side, order_type="limit", qty=qty,
                                 price=price, reduce_only=reduce_only, post_only=post_only,
                                 time_in_force=time_in_force, oco_group=oco_group)

    async def stop_order(self, symbol: str, side: Side, qty: Number, trigger_price: Number,
                         *, price: Number | None = None, reduce_only: bool = False,
                         tag: str = "", oco_group: str | None = None) -> str:
        """A stop at `trigger_price`: a market order when triggered, or with `price` a
        limit order (stop_limit)."""
        return await self._place(tag, symbol=symbol, side=side, qty=qty, price=price,
                                 order_type="stop" if price is None else "stop_limit",
                                 trigger_price=trigger_price, reduce_only=reduce_only,
                                 oco_group=oco_group)

    async def take_profit_order(self, symbol: str, side: Side, qty: Number,
                                trigger_price: Number, *, price: Number | None = None,
                                reduce_only: bool = False, tag: str = "",
                                oco_group: str | None = None) -> str:
        return await self._place(
            tag, symbol=symbol, side=side, qty=qty, price=price,
            order_type="take_profit" if price is None else "take_profit_limit",
            trigger_price=trigger_price, reduce_only=reduce_only, oco_group=oco_group)

    async def amend(self, intent_id: str, *, qty: Number | None = None,
                    price: Number | None = None, trigger_price: Number | None = None) -> int:
        """Change a working intent (the kernel amends or replaces the venue's order);
        returns the amendment's seq."""
        current = next((i.revision for i in self.snapshot.intents if i.intent_id == intent_id),
                       0)
        revision = max(current, self._revisions.get(intent_id, 0)) + 1
        logged = await self.client.amend_intent(intent_id, revision, qty=qty, price=price,
                                                trigger_price=trigger_price)
        self._revisions[intent_id] = revision
        await self._caught_up(logged.seq)
        return logged.seq

    async def cancel(self, intent_id: str) -> bool:
        """Cancel one intent: True if this call canceled it, False if it was already
        canceled. Raises `NotFound` for an id the kernel does not know."""
        logged = await self.client.cancel_intent(intent_id)
        self._canceled.add(intent_id)
        await self._caught_up(logged.seq)
        return not logged.duplicate

    async def cancel_all(self, symbol: str | None = None) -> int:
        """Cancel this strategy's working intents (in `symbol`, if given); how many."""
        ids = [i.intent_id for i in self.pending_orders if symbol is None or i.symbol == symbol]
        canceled = 0
        for intent_id in ids:
            canceled += await self.cancel(intent_id)
        return canceled

    async def close_position(self, symbol: str, *, tag: str = "") -> str | None:
        """A reduce-only market intent for the whole open position in `symbol`; None when
        flat. Hedge mode's sides cannot be named by an intent yet: refused."""
        pos = self.position(symbol)
        if pos is None:
            return None
        if pos.position_side != "both":
            raise ClientError(f"{symbol} is a hedge-mode {pos.position_side} position:"
                              " intents carry no position side yet")
        side: Side = "sell" if pos.qty > 0 else "buy"
        return await self.market_order(symbol, side, abs(pos.qty), reduce_only=True, tag=tag)

    # -- inside ------------------------------------------------------------------------

    async def _place(self, tag: str, *, qty: Number, price: Number | None = None,
                     trigger_price: Number | None = None, **spec: object) -> str:
        # Numbers are checked here, before an id is spent on a request that cannot go.
        decimal("qty", qty)
        for name, value in (("price", price), ("trigger_price", trigger_price)):
            if value is not None:
                decimal(name, value)
        intent_id = self._tagged(tag) if tag else self._next_id()
        logged = await self.client.place_intent(
            intent_id=intent_id, strategy=self.strategy, qty=qty, price=price,
            trigger_price=trigger_price, **spec)  # type: ignore[arg-type]
        await self._caught_up(logged.seq)
        return intent_id

    def _next_id(self) -> str:
        self._counter += 1
        return f"{self.strategy}-{self._counter}"

    def _number(self, intent_id: str) -> int:
        prefix = f"{self.strategy}-"
        tail = intent_id[len(prefix):] if intent_id.startswith(prefix) else ""
        return int(tail) if tail.isdigit() and tail[0] != "0" else 0

    def _tagged(self, tag: str) -> str:
        if not _TAG.match(tag):
            raise ValueError(f"tag must be 1-64 letters, digits or _.:/@-, was {tag!r}")
        base = f"{self.strategy}.{tag}"
        generations = {1 if i.intent_id == base else int(i.intent_id.rpartition("#")[2]): i
                       for i in self.snapshot.intents
                       if i.intent_id == base or (i.intent_id.startswith(base + "#")
                                                  and i.intent_id[len(base) + 1:].isdigit())}
        if not generations:
            return base
        latest = max(generations)
        if self._working(generations[latest]):
            return generations[latest].intent_id  # the kernel answers: duplicate or conflict
        return f"{base}#{latest + 1}"

    def _working(self, intent: IntentOut) -> bool:
        return intent.status not in FINAL and intent.intent_id not in self._canceled

    async def _follow(self) -> None:
        assert self._stream is not None
        try:
            async for snap in self._stream:
                self._snapshot = snap
                self._updated.set()
                self._updated = asyncio.Event()
        except Exception as e:  # a task boundary: the next read of the state raises it
            self._error = e
        else:
            self._error = Closed("the snapshot stream ended: the client was closed")
        finally:
            self._updated.set()

    async def _caught_up(self, seq: int, *, strict: bool = False) -> None:
        """Wait until the context's snapshot is at `seq` or later. Past `sync_timeout`
        the call still succeeded (the kernel logged it): only the view lags, unless
        `strict` (at start, with no view at all)."""
        try:
            async with asyncio.timeout(self.sync_timeout):
                while self._error is None and (self._snapshot is None
                                               or self._snapshot.seq < seq):
                    await self._updated.wait()
        except TimeoutError:
            if strict:
                raise ClientError(f"no snapshot at seq {seq} within {self.sync_timeout} s"
                                  ) from None
        if self._error is not None:
            raise self._error
