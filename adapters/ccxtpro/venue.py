"""`CcxtProVenue`: a real venue behind the `Venue` interface, through ccxt.pro.

`connect` builds a ccxt.pro exchange (`adapters.ccxtpro.client`), loads its markets,
checks the keys with a signed call (Binance: the position mode, which also says whether
the account is in hedge mode), starts a `Session` (`adapters.ccxtpro.stream`) and waits
for the user-data websocket to open. Queries and commands run on the session's
exchange; between sessions they raise `VenueUnavailable` (nothing was sent).

What outlives a session lives here: each definition's first-seen time (an instrument,
an asset precision or a leverage setting keeps its `venue_ts` while it is unchanged, so
a resync repeats it under the same dedup key), the client order id of each order id
(REST trades lack it), the leverage per symbol, and which client order ids the kernel
placed as conditional (algo) orders.

Supported: the Binance family (`binanceusdm`, and `binancecoinm` where it falls out).
Other exchanges are refused at construction, with the reason (docs/venues.md).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
import structlog

from adapters.base import Outcome, RateUsage, Venue
from adapters.ccxtpro import execution
from adapters.ccxtpro import parse_rest as rest
from adapters.ccxtpro.book import Book, guard
from adapters.ccxtpro.client import make_exchange
from adapters.ccxtpro.resync import BinanceQueries, ask
from adapters.ccxtpro.stream import Session
from events.codec import Event
from events.control import InputQuarantined
from events.facts import (
    AssetDefined,
    BalanceReported,
    FundingSettled,
    InstrumentDefined,
    LeverageSet,
    MarkPriceObserved,
    OrderFilled,
    OrderStatusReported,
    PositionsReported,
    TransferCompleted,
)
from events.orders import (
    AmendOrder,
    CancelOrder,
    CommandAcknowledged,
    CommandOutcomeUnknown,
    CommandRejected,
    PlaceOrder,
)
from kernel.daemon.config import CcxtProConfig
from kernel.errors import ConfigError, VenueUnavailable

SUPPORTED = frozenset({"binanceusdm", "binancecoinm"})
NS_PER_MS = 1_000_000
DAY_MS = 86_400_000
E = TypeVar("E", bound=Event)
#: Orders whose client order id the adapter remembers (the newest ones).
REMEMBERED = 200_000
#: ccxt options the adapter needs (the config's `options` are merged over them):
#: no spot-wallet currency call at load_markets (binance.py:fetch_currencies needs
#: keys with wallet permission), no REST snapshot behind the first `watch_positions`
#: (pro/binance.py:watch_positions awaits one, `load_positions_snapshot`), and ccxt's
#: own listenKey renewal out of the way (the session renews, see stream.py).
BINANCE_OPTIONS: dict[str, Any] = {
    "fetchCurrencies": False,
    "watchPositions": {"fetchPositionsSnapshot": False, "awaitPositionsSnapshot": False},
    "watchBalance": {"fetchBalanceSnapshot": False},
    "listenKeyRefreshRate": DAY_MS,
}


class CcxtProVenue(Venue):
    def __init__(self, cfg: CcxtProConfig, *, api_key: str | None, secret: str | None,
                 clock: Callable[[], int] = time.time_ns,
                 log: structlog.typing.FilteringBoundLogger | None = None) -> None:
        if cfg.exchange not in SUPPORTED:
            raise ConfigError(
                f"venue.ccxtpro.exchange = {cfg.exchange!r}: the ccxt.pro adapter supports"
                f" {', '.join(sorted(SUPPORTED))} (docs/venues.md says why)")
        if not cfg.symbols:
            raise ConfigError("venue.ccxtpro.symbols: name the symbols this account trades")
        self.cfg = cfg
        self.settings = cfg.adapter
        self.name = cfg.exchange
        self._key, self._secret = api_key, secret
        self.clock = clock
        self.log = log or structlog.get_logger("exkernel")
        self.inverse = cfg.exchange == "binancecoinm"
        self._session: Session | None = None
        self._queries: BinanceQueries | None = None
        self._since: dict[str, tuple[Event, int]] = {}
        self.cids: dict[tuple[str, str], str] = {}
        self.leverage: dict[str, Decimal] = {}
        self._algo_cids: dict[str, None] = {}
        #: Client order ids of orders the venue has (or had): Binance accepts a client id
        #: again once its order is closed, the kernel never means to. (A dict as an
        #: ordered set: both maps keep the newest `REMEMBERED` entries.)
        self._used_cids: dict[str, None] = {}
        self._instruments: dict[str, InstrumentDefined] = {}
        self._markets: dict[str, Any] = {}

    # -- session -------------------------------------------------------------------

    async def connect(self) -> None:
        if self._session is not None:
            return
        ex = make_exchange(
            self.cfg.exchange, api_key=self._key, secret=self._secret,
            options=_merge(BINANCE_OPTIONS, self.cfg.options),
            rest_url=self.cfg.rest_url, ws_url=self.cfg.ws_url, sandbox=self.cfg.sandbox,
            timeout_s=self.settings.request_timeout_s, sink=None,
            rate_limit_ms=self.settings.rate_limit_ms)
        try:
            markets = await ask("load_markets", ex.load_markets())
            missing = [s for s in self.cfg.symbols if s not in markets]
            if missing:
                raise ConfigError(f"venue.ccxtpro.symbols: {missing} are not markets of"
                                  f" {self.name} (ccxt unified symbols, like 'BTC/USDT:USDT')")
            mode = await ask("position mode", ex.fetch_position_mode(self.cfg.symbols[0]))
        except BaseException:
            await ex.close()
            raise
        self._markets = {s: markets[s] for s in self.cfg.symbols}
        book = Book(exchange=self.name,
                    symbols={m["id"]: s for s, m in markets.items() if m.get("contract")},
                    settle={s: m["settle"] for s, m in markets.items() if m.get("settle")},
                    hedge_mode=bool(mode.get("hedged")))
        session = Session(ex, book, self.settings, self.clock, self._refresh,
                          self.cfg.symbols, self.log, observe=self._observe)
        ex.kernel_sink = session.sink
        renew = ex.dapiPrivatePutListenKey if self.inverse else ex.fapiPrivatePutListenKey
        session.start([session.user_stream, session.mark_stream, session.keepalive(renew)])
        self._session = session
        self._queries = BinanceQueries(ex, book, self.cfg.symbols, self.cids, self.leverage,
                                       self.inverse)
        try:
            await session.wait_connected(self.settings.request_timeout_s)
        except BaseException:
            await self.close()
            raise
        self.log.info("venue session open", venue=self.name, hedge_mode=book.hedge_mode)

    def _observe(self, ev: Event) -> None:
        """Learn from what the stream says: client order ids, leverage changes."""
        if isinstance(ev, OrderStatusReported | OrderFilled) and ev.client_order_id:
            self._remember(ev.symbol, ev.order_id, ev.client_order_id)
        elif isinstance(ev, LeverageSet):
            self.leverage[ev.symbol] = ev.leverage

    def _remember(self, symbol: str, order_id: str | None, cid: str) -> None:
        if order_id is not None:
            self.cids[(symbol, order_id)] = cid
        self._used_cids[cid] = None
        _trim(self.cids)
        _trim(self._used_cids)

    async def close(self) -> None:
        session, self._session, self._queries = self._session, None, None
        if session is not None:
            await session.close()

    async def facts(self) -> AsyncIterator[Event]:
        session = self._session
        if session is None:
            return
        async for event in session.facts():
            yield event

    def _q(self) -> BinanceQueries:
        if self._queries is None:
            raise VenueUnavailable(f"{self.name}: not connected")
        return self._queries

    def _now_ms(self) -> int:
        return self.clock() // NS_PER_MS

    def _since_ms(self, venue_ts: int) -> int:
        floor = self._now_ms() - int(self.settings.history_days * DAY_MS)
        return max(venue_ts // NS_PER_MS, floor, 0)

    def rate_usage(self) -> tuple[RateUsage, ...]:
        if self._queries is None:
            return ()
        rate = self._queries.ex.kernel_rate
        limits = {"x-mbx-used-weight-1m": "REQUEST_WEIGHT/1m",
                  "x-mbx-order-count-1m": "ORDERS/1m", "x-mbx-order-count-10s": "ORDERS/10s"}
        return tuple(RateUsage(name=name, used=used, limit=rate.limits.get(limits.get(name, "")),
                               at_ns=rate.at_ns) for name, used in sorted(rate.used.items()))

    # -- commands ------------------------------------------------------------------

    async def place(self, cmd: PlaceOrder) -> Outcome:
        q, now = self._q(), self.clock()
        refused = execution.check(cmd, self._instruments.get(cmd.symbol)
                                  or self._define(cmd.symbol), self.name)
        if refused is None and (cmd.client_order_id in self._used_cids
                                or cmd.client_order_id in self.cids.values()):
            refused = (f"client order id {cmd.client_order_id!r} names an order the venue"
                       " already has or had (Binance would accept it again once that order"
                       " closed)")
        if refused is not None:
            return CommandRejected(venue_ts=now, command_id=cmd.command_id, reason=refused)
        out = await execution.place(q.ex, cmd, q.book.hedge_mode, now)
        if isinstance(out, CommandAcknowledged | CommandOutcomeUnknown):
            self._remember(cmd.symbol, None, cmd.client_order_id)
        if execution.is_trigger(cmd.order_type):
            self._algo_cids[cmd.client_order_id] = None
            _trim(self._algo_cids)
        if isinstance(out, CommandAcknowledged) and out.order_id \
                and not execution.is_trigger(cmd.order_type):
            self._remember(cmd.symbol, out.order_id, cmd.client_order_id)
        return out

    async def amend(self, cmd: AmendOrder) -> Outcome:
        q, now = self._q(), self.clock()
        refused = execution.check(cmd, self._instruments.get(cmd.symbol)
                                  or self._define(cmd.symbol), self.name)
        if refused is not None:
            return CommandRejected(venue_ts=now, command_id=cmd.command_id, reason=refused)
        try:
            current = await q.order_record(cmd.symbol, cmd.client_order_id)
        except VenueUnavailable as e:  # nothing was sent; the kernel asks and retries
            return CommandOutcomeUnknown(venue_ts=now, command_id=cmd.command_id,
                                         reason=f"could not look the order up: {e}"[:300])
        return await execution.amend(q.ex, cmd, current, now)

    async def cancel(self, cmd: CancelOrder) -> Outcome:
        q, now = self._q(), self.clock()
        return await execution.cancel(q.ex, cmd, cmd.client_order_id in self._algo_cids, now)

    # -- definitions ---------------------------------------------------------------

    def _stable(self, subject: str, ev: E) -> E:
        """`ev` with the venue_ts it had when first seen with this content."""
        bare = msgspec.structs.replace(ev, venue_ts=0)
        seen = self._since.get(subject)
        if seen is not None and seen[0] == bare:
            return msgspec.structs.replace(ev, venue_ts=seen[1])
        self._since[subject] = (bare, ev.venue_ts)
        return ev

    def _define(self, symbol: str) -> InstrumentDefined | None:
        market = self._markets.get(symbol)
        if market is None:
            return None
        ev = guard(self._q().book, "market", market, self.clock(), rest.instrument, market,
                   self.clock())
        if isinstance(ev, InstrumentDefined):
            ev = self._stable(f"instrument:{symbol}", ev)
            self._instruments[symbol] = ev
        return ev if isinstance(ev, InstrumentDefined) else None

    async def instruments(self) -> list[InstrumentDefined]:
        self._q()
        out = [self._define(s) for s in self.cfg.symbols]
        return [i for i in out if i is not None]

    async def assets(self) -> list[AssetDefined]:
        """Each asset's precision: exchangeInfo's `quotePrecision`/`baseAssetPrecision`
        for the configured markets' assets, the configured default for the other assets
        the account lists (Binance keeps every futures wallet at 8 places)."""
        q, now = self._q(), self.clock()
        known: dict[str, int] = {}
        for m in self._markets.values():
            known.update(rest.places(m))
        held = {m["settle"] for m in self._markets.values() if m.get("settle")}
        account = await ask("account", q.ex.fetch_balance())
        for a in (account.get("info") or {}).get("assets") or []:
            if isinstance(a, dict) and isinstance(a.get("asset"), str):
                held.add(a["asset"])
        s = self.settings
        return [self._stable(f"asset:{a}", AssetDefined(
            venue_ts=now, asset=a, precision=s.precision_of(a, known.get(a)),
            rounding=s.rounding)) for a in sorted(held)]

    async def leverage_settings(self) -> list[LeverageSet]:
        q, now = self._q(), self.clock()
        rows = await ask("symbolConfig", q.ex.fetch_leverages(list(self.cfg.symbols)))
        out: list[LeverageSet] = []
        for lev in (rows.values() if isinstance(rows, dict) else rows):
            info = lev.get("info") or {}
            ev = guard(q.book, "symbolConfig", info, now, rest.leverage, info, q.book, now)
            if isinstance(ev, LeverageSet) and ev.symbol in self.cfg.symbols:
                self.leverage[ev.symbol] = ev.leverage
                out.append(self._stable(f"leverage:{ev.symbol}", ev))
        return out

    # -- reports -------------------------------------------------------------------

    async def marks(self) -> list[MarkPriceObserved]:
        q = self._q()
        tickers = await ask("premiumIndex", q.ex.fetch_mark_prices(list(self.cfg.symbols)))
        out = [guard(q.book, "premiumIndex", t.get("info"), self.clock(), rest.mark,
                     t.get("info"), q.book) for t in tickers.values()]
        return self._only(out, MarkPriceObserved)

    async def balances(self) -> BalanceReported:
        q = self._q()
        account = await ask("account", q.ex.fetch_balance())
        now = self.clock()
        return self._one(guard(q.book, "account", account.get("info"), now, rest.balances,
                               account.get("info"), now), BalanceReported)

    async def positions(self) -> PositionsReported:
        q = self._q()
        rows = await ask("positionRisk", q.ex.fetch_positions(list(self.cfg.symbols)))
        now = self.clock()
        infos = [p.get("info") for p in rows]
        return self._one(guard(q.book, "positionRisk", infos, now, rest.positions, infos,
                               q.book, self.leverage, now), PositionsReported)

    async def open_orders(self) -> list[OrderStatusReported]:
        return self._only(await self._q().open_orders(self.clock()), OrderStatusReported)

    async def order(self, symbol: str, client_order_id: str) -> OrderStatusReported | None:
        status = await self._q().order(symbol, client_order_id, self.clock())
        if isinstance(status, InputQuarantined):
            raise VenueUnavailable(f"order {symbol} {client_order_id}: {status.reason}")
        return status

    async def fills_since(self, venue_ts: int) -> list[OrderFilled]:
        return self._only(await self._q().fills(self._since_ms(venue_ts), self._now_ms()),
                          OrderFilled)

    async def funding_since(self, venue_ts: int) -> list[FundingSettled]:
        return self._only(await self._q().funding(self._since_ms(venue_ts), self._now_ms()),
                          FundingSettled)

    async def transfers_since(self, venue_ts: int) -> list[TransferCompleted]:
        return self._only(await self._q().transfers(self._since_ms(venue_ts),
                                                     self._now_ms()), TransferCompleted)

    async def _refresh(self, kinds: set[str], since_ns: int) -> list[Event]:
        """The session's answer to an account push: dated facts first, then reports."""
        out: list[Event] = []
        if "funding" in kinds:
            out += await self.funding_since(since_ns)
        if "transfers" in kinds:
            out += await self.transfers_since(since_ns)
        if "reports" in kinds:
            out += [await self.balances(), await self.positions()]
        return out

    # -- quarantine of REST records --------------------------------------------------

    def _quarantine(self, bad: list[Event]) -> None:
        """REST records that failed to parse go into the facts stream: the log keeps
        them, and the query answers without them (never with a coerced value)."""
        if bad and self._session is not None:
            self._session.put(bad)

    def _only(self, events: list[Any], kind: type[E]) -> list[E]:
        self._quarantine([e for e in events if isinstance(e, InputQuarantined)])
        return [e for e in events if isinstance(e, kind)]

    def _one(self, event: Any, kind: type[E]) -> E:
        if isinstance(event, kind):
            return event
        assert isinstance(event, InputQuarantined)
        self._quarantine([event])
        raise VenueUnavailable(f"{self.name}: the venue's {kind.__name__} was quarantined:"
                               f" {event.reason}")


def _trim(store: dict[Any, Any]) -> None:
    """Forget the oldest tenth of `store` once it holds more than REMEMBERED."""
    if len(store) > REMEMBERED:
        for k in list(itertools.islice(store, REMEMBERED // 10)):
            del store[k]


def _merge(base: dict[str, Any], over: Any) -> dict[str, Any]:
    """`over` merged into a copy of `base`, tables key by key."""
    out = dict(base)
    for k, v in dict(over).items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
