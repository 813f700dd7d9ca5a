"""Commands -> ccxt calls, and the one place ccxt's errors become kernel outcomes.

Error mapping (`outcome` for commands, `venue_failure` for queries and streams) reads
what the venue answered first (the HTTP status and Binance's `code`/`msg`, attached by
`adapters.ccxtpro.client`), then ccxt's exception class:

=========================================  ==================================  ==============
what happened                              a command                           a query
=========================================  ==================================  ==============
keys refused (-2014, -2015, -1022, -1002;  raises `CredentialsRejected`        the same
ccxt AuthenticationError, PermissionDenied)  (the daemon exits 77)
listenKey gone (-1125)                     -                                   VenueUnavailable
rate limited (HTTP 429/418, -1003, ccxt    `CommandOutcomeUnknown`             VenueUnavailable
DDoSProtection)
execution status unknown (-1006, -1007,    `CommandOutcomeUnknown`             VenueUnavailable
-1008, HTTP 5xx), timeout, network error
any other venue code (-2019, -2021,        `CommandRejected(code, reason)`     VenueUnavailable
-2022, -1013, -2011, -4164, ...)
ccxt refused before sending (InvalidOrder  `CommandRejected(code=None)`        VenueUnavailable
without a venue code, ArgumentsRequired)
another ccxt error after sending           `CommandOutcomeUnknown`             VenueUnavailable
=========================================  ==================================  ==============

An unknown outcome is never a failure: the kernel asks the venue (`Venue.order`) with
the same client order id, so a retry cannot place twice.

Before ccxt sees a command, `check` refuses in the kernel's own words what ccxt would
otherwise change silently: ccxt truncates a quantity to the lot grid and rounds a price
to the tick (`amount_to_precision`, `price_to_precision` in ccxt/base/exchange.py), so an
off-grid order would be placed as a different order than the one logged.
"""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from typing import Any

import ccxt  # type: ignore[import-untyped]

from adapters.base import Outcome
from adapters.ccxtpro.client import venue_error
from events.facts import InstrumentDefined
from events.orders import (
    AmendOrder,
    CancelOrder,
    CommandAcknowledged,
    CommandOutcomeUnknown,
    CommandRejected,
    PlaceOrder,
)
from kernel.errors import CredentialsRejected, VenueError, VenueUnavailable

#: Binance codes for rejected keys, a dead listenKey, rate limits, and "sent, but the
#: execution status is unknown" (Binance's error-code page).
AUTH_CODES = frozenset({"-2014", "-2015", "-1022", "-1002"})
LISTEN_KEY_GONE = "-1125"
RATE_CODES = frozenset({"-1003"})
UNKNOWN_CODES = frozenset({"-1006", "-1007", "-1008"})
NOT_FOUND_CODES = frozenset({"-2011", "-2013"})
#: Binance's client order id rule (`newClientOrderId`: ^[\.A-Z\:/a-z0-9_-]{1,36}$).
_BINANCE_CID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_TRIGGER_TYPES = frozenset({"stop", "take_profit", "stop_limit", "take_profit_limit"})
_LIMIT_TYPES = frozenset({"limit", "stop_limit", "take_profit_limit"})


def is_trigger(order_type: str) -> bool:
    return order_type in _TRIGGER_TYPES


def _auth(e: BaseException, code: str | None) -> bool:
    if code == LISTEN_KEY_GONE:
        return False
    if isinstance(e, ccxt.DDoSProtection):  # ccxt: -2015 after a success is an IP ban
        return False
    return code in AUTH_CODES or isinstance(e, ccxt.AuthenticationError | ccxt.PermissionDenied)


def credentials_refused(e: BaseException) -> CredentialsRejected | None:
    info = venue_error(e)
    code = info.code if info else None
    if _auth(e, code):
        shown = f" (code {code})" if code else ""
        return CredentialsRejected(f"the venue refused the API key{shown}")
    return None


def is_listen_key_gone(e: BaseException) -> bool:
    info = venue_error(e)
    return info is not None and info.code == LISTEN_KEY_GONE


def is_not_found(e: BaseException) -> bool:
    info = venue_error(e)
    if info is not None and info.code is not None:
        return info.code in NOT_FOUND_CODES
    return isinstance(e, ccxt.OrderNotFound)


def venue_failure(e: BaseException, what: str) -> VenueError:
    """A query's or a stream's failure as the kernel's error: `CredentialsRejected`
    (fatal) or `VenueUnavailable` (reconnect, resync)."""
    refused = credentials_refused(e)
    if refused is not None:
        return refused
    info = venue_error(e)
    if info is not None and info.code == LISTEN_KEY_GONE:
        return VenueUnavailable(f"{what}: the venue's listenKey expired (code -1125)")
    said = f" (HTTP {info.status}, code {info.code})" if info else ""
    return VenueUnavailable(f"{what} failed: {type(e).__name__}{said}: {str(e)[:200]}")


def outcome(e: BaseException, command_id: str, now: int) -> Outcome:
    """A failed command's outcome; raises `CredentialsRejected` for refused keys and
    re-raises what is not a venue or network error (a bug must not look like a venue)."""
    info = venue_error(e)
    code = info.code if info else None
    if _auth(e, code):
        raise CredentialsRejected(f"the venue refused the API key (code {code})") from e
    if info is not None:
        if (info.status in (418, 429) or code in RATE_CODES
                or isinstance(e, ccxt.DDoSProtection)):
            return CommandOutcomeUnknown(venue_ts=now, command_id=command_id,
                                         reason=f"rate limited by the venue (HTTP {info.status})")
        if code in UNKNOWN_CODES or info.status >= 500 or code is None:
            return CommandOutcomeUnknown(
                venue_ts=now, command_id=command_id,
                reason=f"the venue answered HTTP {info.status} code {code}: status unknown")
        return CommandRejected(venue_ts=now, command_id=command_id, code=code,
                               reason=info.message or f"the venue refused it (code {code})")
    if isinstance(e, ccxt.NetworkError | asyncio.TimeoutError | OSError):
        return CommandOutcomeUnknown(venue_ts=now, command_id=command_id,
                                     reason=f"no answer from the venue: {type(e).__name__}")
    if isinstance(e, ccxt.InvalidOrder | ccxt.ArgumentsRequired | ccxt.BadSymbol
                  | ccxt.NotSupported):
        return CommandRejected(venue_ts=now, command_id=command_id, code=None,
                               reason=f"not sent: ccxt refused it ({type(e).__name__}: "
                                      f"{str(e)[:200]})")
    if isinstance(e, ccxt.BaseError):
        return CommandOutcomeUnknown(venue_ts=now, command_id=command_id,
                                     reason=f"the venue call failed after sending:"
                                            f" {type(e).__name__}")
    raise e


def _off_grid(value: Decimal, step: Decimal) -> bool:
    return value % step != 0


def check(cmd: PlaceOrder | AmendOrder, inst: InstrumentDefined | None,
          exchange: str) -> str | None:
    """Why the kernel refuses to send this command, in its own words, or None."""
    if inst is None:
        return f"{cmd.symbol!r} is not an instrument of this venue (not in venue.ccxtpro.symbols)"
    if exchange.startswith("binance") and not _BINANCE_CID.match(cmd.client_order_id):
        return (f"client order id {cmd.client_order_id!r} breaks the venue's rule"
                " (1-36 of A-Z a-z 0-9 . : / _ -)")
    if cmd.qty is not None and _off_grid(cmd.qty, inst.lot_size):
        return f"qty {cmd.qty} is not a multiple of the lot size {inst.lot_size}"
    for name in ("price", "trigger_price"):
        v = getattr(cmd, name)
        if v is not None and _off_grid(v, inst.tick_size):
            return f"{name} {v} is not a multiple of the tick size {inst.tick_size}"
    return None


def place_args(cmd: PlaceOrder, hedge_mode: bool
               ) -> tuple[str, str, str, str, str | None, dict[str, Any]]:
    """`create_order`'s (symbol, type, side, amount, price, params) for a command.
    Kernel types map onto ccxt's unified ones: a stop is a market order with
    `triggerPrice` (Binance STOP_MARKET), a take-profit one with `takeProfitPrice`
    (TAKE_PROFIT_MARKET); the limit variants add a price (STOP, TAKE_PROFIT). ccxt sends
    every order with a trigger to Binance's algo service (`/fapi/v1/algoOrder`,
    binance.py:create_order) and names the client id `clientAlgoId` there."""
    params: dict[str, Any] = {"clientOrderId": cmd.client_order_id}
    kind = "limit" if cmd.order_type in _LIMIT_TYPES else "market"
    if cmd.trigger_price is not None:
        key = "takeProfitPrice" if cmd.order_type.startswith("take_profit") else "triggerPrice"
        params[key] = _s(cmd.trigger_price)
    if cmd.post_only:
        # ccxt's unified post-only time in force: it sends GTX. An explicit "GTC" here
        # would override the GTX ccxt sets for postOnly (binance.py:create_order_request
        # extends the request with the caller's params last), silently losing post-only.
        params["timeInForce"] = "PO"
    elif kind == "limit":
        params["timeInForce"] = cmd.time_in_force
    if cmd.reduce_only:
        params["reduceOnly"] = True
    if hedge_mode:
        # ccxt names the position side: a reduce-only order closes the other side's
        # position (and drops reduceOnly, which Binance refuses in hedge mode).
        params["hedged"] = True
    price = _s(cmd.price) if cmd.price is not None else None
    return cmd.symbol, kind, cmd.side, _s(cmd.qty), price, params


def _s(x: Decimal) -> str:
    return f"{x.normalize():f}"


async def place(ex: Any, cmd: PlaceOrder, hedge_mode: bool, now: int) -> Outcome:
    symbol, kind, side, amount, price, params = place_args(cmd, hedge_mode)
    try:
        order = await ex.create_order(symbol, kind, side, amount, price, params)
    except Exception as e:
        return outcome(e, cmd.command_id, now)
    oid = order.get("id") if isinstance(order, dict) else None
    return CommandAcknowledged(venue_ts=now, command_id=cmd.command_id,
                               order_id=str(oid) if oid not in (None, "") else None)


async def amend(ex: Any, cmd: AmendOrder, current: dict[str, Any] | None, now: int) -> Outcome:
    """`edit_order` (Binance: `PUT /fapi/v1/order`, limit orders only) with the order's
    current side, quantity and price where the command leaves them."""
    if current is None:
        return CommandRejected(venue_ts=now, command_id=cmd.command_id, code=None,
                               reason=f"no order with client order id {cmd.client_order_id!r}")
    info = current.get("info") or {}
    if "algoId" in info or cmd.trigger_price is not None:
        return CommandRejected(venue_ts=now, command_id=cmd.command_id, code=None,
                               reason="the venue cannot amend a conditional order:"
                                      " cancel it and place another")
    if current.get("type") != "limit":
        return CommandRejected(venue_ts=now, command_id=cmd.command_id, code=None,
                               reason=f"the venue amends limit orders only, this is"
                                      f" {current.get('type')!r}")
    qty = _s(cmd.qty) if cmd.qty is not None else info.get("origQty")
    px = _s(cmd.price) if cmd.price is not None else info.get("price")
    try:
        order = await ex.edit_order(current["id"], cmd.symbol, "limit", current["side"], qty,
                                    px, {"clientOrderId": cmd.client_order_id})
    except Exception as e:
        return outcome(e, cmd.command_id, now)
    return CommandAcknowledged(venue_ts=now, command_id=cmd.command_id,
                               order_id=str(order.get("id") or current["id"]))


async def cancel(ex: Any, cmd: CancelOrder, algo_first: bool, now: int) -> Outcome:
    """Cancel by client order id: the regular order (a triggered stop's order has the
    stop's client id), then the algo order (`{'trigger': True}`), or the other way round
    when the kernel placed it as a conditional order and it has not triggered."""
    tries = [True, False] if algo_first else [False, True]
    first: BaseException | None = None
    for trigger in tries:
        params: dict[str, Any] = {"clientOrderId": cmd.client_order_id}
        if trigger:
            params["trigger"] = True
        try:
            order = await ex.cancel_order(None, cmd.symbol, params)
        except Exception as e:
            if is_not_found(e):
                first = first or e
                continue
            return outcome(e, cmd.command_id, now)
        oid = order.get("id") if isinstance(order, dict) else None
        return CommandAcknowledged(venue_ts=now, command_id=cmd.command_id,
                                   order_id=str(oid) if oid else None)
    assert first is not None
    return outcome(first, cmd.command_id, now)
