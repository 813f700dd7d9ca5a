"""The REST queries behind the `Venue` resync methods, for the Binance family.

Each query calls ccxt (its unified methods where they fit, its implicit endpoint methods
where they do not), hands the venue's records to `adapters.ccxtpro.parse_rest` and maps
any ccxt error through `execution.venue_failure`. History is paged the way Binance's
limits require, because ccxt does not page by itself:

* `userTrades` and `income` accept windows of at most 7 days (ccxt's
  `binance.py:fetch_my_trades` cuts a `since` older than a week to a one-week window,
  and without `since` Binance returns only the last 7 days), and at most 1000 records
  per call. A query walks 7-day windows from its `since` (no earlier than
  `history_days` ago); a full page of trades continues by `fromId`, a full page of
  income by `page`.
* REST trades carry no client order id; it comes from the orders (`/allOrders` from the
  smallest order id not yet known), so a backfilled fill equals the pushed one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from adapters.ccxtpro import parse_rest as rest
from adapters.ccxtpro.book import Book, guard
from adapters.ccxtpro.execution import is_not_found, venue_failure
from adapters.fields import NS_PER_MS
from events.codec import Event
from events.control import InputQuarantined
from events.facts import FundingSettled, OrderFilled, OrderStatusReported, TransferCompleted
from kernel.errors import VenueUnavailable

WEEK_MS = 7 * 24 * 3600 * 1000
PAGE = 1000
T = TypeVar("T")
Row = dict[str, Any]
Fetch = Callable[[int, int], Awaitable[list[Row]]]


async def ask(what: str, call: Awaitable[T]) -> T:
    """`await call`, with a ccxt or network error as the kernel's `VenueError`."""
    try:
        return await call
    except Exception as e:
        raise venue_failure(e, what) from e


def windows(since_ms: int, now_ms: int) -> list[tuple[int, int]]:
    """Consecutive windows of at most 7 days covering [since_ms, now_ms]."""
    out, start = [], since_ms
    while start <= now_ms:
        end = min(start + WEEK_MS - 1, now_ms)
        out.append((start, end))
        start = end + 1
    return out


async def trade_pages(window: Fetch, after_id: Callable[[int], Awaitable[list[Row]]],
                      since_ms: int, now_ms: int) -> list[Row]:
    """Every trade in [since_ms, now_ms]: window by window; a full page continues by id
    (`fromId`: Binance's trade ids grow), which then reaches every later trade."""
    rows: dict[str, Row] = {}
    for start, end in windows(since_ms, now_ms):
        page = await window(start, end)
        rows.update((_id(r, "id"), r) for r in page)
        if len(page) < PAGE:
            continue
        while len(page) == PAGE:
            page = await after_id(max(int(_id(r, "id")) for r in page) + 1)
            rows.update((_id(r, "id"), r) for r in page)
        break
    return sorted(rows.values(), key=lambda r: (_time(r, "time"), int(_id(r, "id"))))


async def income_pages(fetch: Callable[[int, int, int], Awaitable[list[Row]]],
                       since_ms: int, now_ms: int) -> list[Row]:
    """Every income record in [since_ms, now_ms]: window by window, page by page (`page`:
    a funding time can hold more records than one page, one per symbol and side)."""
    rows: dict[str, Row] = {}
    for start, end in windows(since_ms, now_ms):
        number = 1
        while True:
            page = await fetch(start, end, number)
            rows.update((_id(r, "tranId"), r) for r in page)
            if len(page) < PAGE:
                break
            number += 1
    return sorted(rows.values(), key=lambda r: (_time(r, "time"), _id(r, "tranId")))


def _id(row: dict[str, Any], key: str) -> str:
    return str(row.get(key))


def _time(row: dict[str, Any], key: str) -> int:
    v = row.get(key)
    return int(v) if isinstance(v, int | str) and str(v).isdigit() else 0


class BinanceQueries:
    """REST queries of one session. `cids` ((symbol, order id) -> client order id) and
    `leverage` (symbol -> leverage) outlive the session: the adapter keeps them."""

    def __init__(self, ex: Any, book: Book, symbols: tuple[str, ...],
                 cids: dict[tuple[str, str], str], leverage: Mapping[str, Decimal],
                 inverse: bool) -> None:
        self.ex, self.book, self.symbols = ex, book, symbols
        self.cids, self.leverage = cids, leverage
        self.prefix = "dapiPrivate" if inverse else "fapiPrivate"

    # -- fills -----------------------------------------------------------------------

    async def fills(self, since_ms: int, now_ms: int) -> list[OrderFilled | InputQuarantined]:
        out: list[OrderFilled | InputQuarantined] = []
        for symbol in self.symbols:
            async def window(start: int, end: int, symbol: str = symbol) -> list[Row]:
                trades = await ask(f"userTrades {symbol}", self.ex.fetch_my_trades(
                    symbol, start, PAGE, {"endTime": end}))
                return [t["info"] for t in trades]

            async def after(trade_id: int, symbol: str = symbol) -> list[Row]:
                trades = await ask(f"userTrades {symbol}", self.ex.fetch_my_trades(
                    symbol, None, PAGE, {"fromId": trade_id}))
                return [t["info"] for t in trades]

            rows = await trade_pages(window, after, since_ms, now_ms)
            rows = [r for r in rows if since_ms <= _time(r, "time")]
            await self._learn_cids(symbol, {_id(r, "orderId") for r in rows})
            for r in rows:
                cid = self.cids.get((symbol, _id(r, "orderId")))
                out.append(guard(self.book, "userTrades", r, _time(r, "time") * NS_PER_MS,
                                 rest.fill, r, self.book, cid))
        return out

    async def _learn_cids(self, symbol: str, order_ids: set[str]) -> None:
        missing = sorted((o for o in order_ids if (symbol, o) not in self.cids
                          and o.isdigit()), key=int)
        while missing:
            orders = await ask(f"allOrders {symbol}", self.ex.fetch_orders(
                symbol, None, PAGE, {"orderId": missing[0]}))
            for o in orders:
                self.learn(o.get("info") or {})
            last = max((int(o["id"]) for o in orders if str(o.get("id")).isdigit()), default=0)
            missing = [o for o in missing if (symbol, o) not in self.cids and int(o) > last]
            if len(orders) < PAGE:
                break

    def learn(self, info: dict[str, Any]) -> None:
        """Remember an order record's client order id (REST trades need it)."""
        sym, oid, cid = info.get("symbol"), info.get("orderId"), info.get("clientOrderId")
        symbol = self.book.symbols.get(sym) if isinstance(sym, str) else None
        if symbol is not None and oid is not None and isinstance(cid, str) and cid:
            self.cids[(symbol, str(oid))] = cid

    # -- income ----------------------------------------------------------------------

    async def _income(self, kind: str, since_ms: int, now_ms: int) -> list[dict[str, Any]]:
        method = getattr(self.ex, f"{self.prefix}GetIncome")

        async def fetch(start: int, end: int, page: int) -> list[Row]:
            rows = await ask(f"income {kind}", method(
                {"incomeType": kind, "startTime": start, "endTime": end, "limit": PAGE,
                 "page": page}))
            return rest.income_rows(rows)

        rows = await income_pages(fetch, since_ms, now_ms)
        return [r for r in rows if since_ms <= _time(r, "time")]

    async def funding(self, since_ms: int, now_ms: int) -> list[FundingSettled | InputQuarantined]:
        rows = await self._income("FUNDING_FEE", since_ms, now_ms)
        rates = await self._rates(rows) if self.book.hedge_mode else {}
        out: list[FundingSettled | InputQuarantined] = []
        for r in rows:
            rate = rates.get((str(r.get("symbol")), _time(r, "time")))
            out.append(guard(self.book, "income FUNDING_FEE", r, _time(r, "time") * NS_PER_MS,
                             rest.funding, r, self.book, rate))
        return out

    async def _rates(self, rows: list[dict[str, Any]]) -> dict[tuple[str, int], Decimal]:
        """The funding rate at each payment (hedge mode names the side by it): Binance's
        `/fapi/v1/fundingRate` history, matched to a payment within a minute after."""
        out: dict[tuple[str, int], Decimal] = {}
        by_symbol: dict[str, list[int]] = {}
        for r in rows:
            by_symbol.setdefault(str(r.get("symbol")), []).append(_time(r, "time"))
        for venue_id, times in by_symbol.items():
            symbol = self.book.symbols.get(venue_id)
            if symbol is None:
                continue
            try:
                history = await self.ex.fetch_funding_rate_history(symbol, min(times) - 60_000,
                                                                   PAGE)
            except Exception:
                continue
            marks = [(_time(h.get("info") or {}, "fundingTime"),
                      (h.get("info") or {}).get("fundingRate")) for h in history]
            for t in times:
                best = [rate for ft, rate in marks if ft <= t <= ft + 60_000
                        and isinstance(rate, str)]
                if best:
                    out[(venue_id, t)] = Decimal(best[-1])
        return out

    async def transfers(self, since_ms: int, now_ms: int
                        ) -> list[TransferCompleted | InputQuarantined]:
        rows = await self._income("TRANSFER", since_ms, now_ms)
        return [guard(self.book, "income TRANSFER", r, _time(r, "time") * NS_PER_MS,
                      rest.transfer, r) for r in rows]

    # -- orders ----------------------------------------------------------------------

    async def open_orders(self, now: int) -> list[Event]:
        out: list[Event] = []
        for symbol in self.symbols:
            for params in ({}, {"trigger": True}):
                orders = await ask(f"openOrders {symbol}", self.ex.fetch_open_orders(
                    symbol, None, None, params))
                for o in orders:
                    info = o.get("info") or {}
                    self.learn(info)
                    ev = guard(self.book, "openOrders", info, now, rest.order, info, self.book,
                               now)
                    if ev is not None:
                        out.append(ev)
        return out

    async def order_record(self, symbol: str, cid: str) -> dict[str, Any] | None:
        """The ccxt order with this client order id: the regular order (a triggered
        stop's order carries the stop's client id), else the algo order; an algo order
        that triggered is followed to the regular order it placed (`actualOrderId`)."""
        for params in ({"clientOrderId": cid}, {"clientOrderId": cid, "trigger": True}):
            try:
                order: dict[str, Any] = await self.ex.fetch_order(None, symbol, params)
            except Exception as e:
                if is_not_found(e):
                    continue
                raise venue_failure(e, f"order {symbol} {cid}") from e
            info = order.get("info") or {}
            child = rest.triggered_order_id(info) if rest.is_algo(info) else None
            if child is not None:
                order = await ask(f"order {symbol} {child}", self.ex.fetch_order(child, symbol))
            self.learn(order.get("info") or {})
            return order
        return None

    async def order(self, symbol: str, cid: str, now: int
                    ) -> OrderStatusReported | InputQuarantined | None:
        order = await self.order_record(symbol, cid)
        if order is None:
            return None
        info = order.get("info") or {}
        status = guard(self.book, "order", info, now, rest.order, info, self.book, now)
        if status is None:  # triggered, and the order it placed is not visible yet
            raise VenueUnavailable(f"order {symbol} {cid}: the stop triggered but the venue"
                                   " does not show the order it placed yet")
        return status
