"""The ccxt.pro client, built the way the adapter needs it: URL overrides, and four hooks.

`make_exchange` instantiates the unmodified ccxt.pro class of the configured exchange
through a subclass that overrides only ccxt's own extension points (verified in ccxt
4.5.90, `ccxt/async_support/base/exchange.py` and `ccxt/binance.py`):

* `on_rest_response` (called by `Exchange.fetch` for every REST reply): records the
  venue's rate-limit headers (Binance's `X-MBX-USED-WEIGHT-1M`, `X-MBX-ORDER-COUNT-*`)
  and, from `exchangeInfo`, its documented limits;
* `handle_errors` (called by `Exchange.fetch` before ccxt raises): annotates the exception
  ccxt raises with the HTTP status and the venue's own `code` and `msg`, so
  `adapters.ccxtpro.execution` maps errors by what the venue said, never by ccxt's
  message text and never by an exception class that depends on the URL (below);
* `get_exceptions_by_url` (binance.py): ccxt picks Binance's per-market error table by
  the URL's prefix (`https://fapi.binance.com/`), so behind a URL override it would use
  the generic table (-2019 becomes OperationFailed instead of InsufficientFunds). The
  hook maps an overridden URL back to the original before ccxt looks;
* `handle_message` (every websocket message, before ccxt's handlers): hands the raw
  payload to the adapter's `sink` first, and on to ccxt only if the sink says so. ccxt's
  `watch_*` caches drop wake-ups (`Client.resolve` with no waiting future), overwrite
  entries with one id (`ArrayCacheBySymbolById`) and keep only the last account update
  (`handle_balance`), and ccxt has no handler for `listenKeyExpired`; the sink sees
  every message once;
* `client` (creates each websocket `Client`): guards the client's frame decoder. ccxt
  decodes and dispatches a frame inside a done-callback of its receive loop
  (`ws/client.py:receive_loop`); an exception there (a frame that is not JSON, a
  handler failing on an odd payload) ends the callback before it schedules the next
  receive, and the connection goes silent with no error until a ping times out. The
  guard hands such a frame to the sink as a `BadFrame` instead.

Overrides replace the scheme and host of every URL in `exchange.urls['api']` (REST) and
`urls['api']['ws']` (websockets) and keep the path, so one local server can stand in
for all of a venue's hosts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import ccxt  # type: ignore[import-untyped]
import ccxt.pro  # type: ignore[import-untyped]
import msgspec


@dataclass(frozen=True)
class BadFrame:
    """A websocket frame ccxt could not decode or dispatch, and why."""

    data: bytes
    error: str
    decoded: bool  # True: it decoded and reached the sink, a ccxt handler then failed


#: What `handle_message` hands on: (the websocket URL, the decoded message or a
#: `BadFrame`). It returns whether ccxt's own handlers should see the message too.
Sink = Callable[[str, Any], bool]

#: Rate-limit headers worth reporting, by the venue's header prefix (lower case).
_RATE_HEADERS = ("x-mbx-used-weight-", "x-mbx-order-count-")


@dataclass
class VenueErrorInfo:
    """What the venue answered to a failed request: HTTP status, its code and message."""

    status: int
    code: str | None
    message: str | None


@dataclass
class RateState:
    """The venue's latest rate-limit headers and its documented limits, by name
    (`x-mbx-used-weight-1m` -> used; `REQUEST_WEIGHT/1m` -> limit)."""

    used: dict[str, int] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    at_ns: int = 0


def venue_error(exc: BaseException) -> VenueErrorInfo | None:
    """The venue's answer attached to a ccxt exception by `handle_errors`, if any."""
    info = getattr(exc, "kernel_venue_error", None)
    return info if isinstance(info, VenueErrorInfo) else None


def _rewrite(urls: Any, base: str, originals: dict[str, str]) -> Any:
    """`urls` with every URL's scheme and host replaced by `base`'s; `originals` maps
    each new URL to the one it replaced."""
    if isinstance(urls, dict):
        return {k: _rewrite(v, base, originals) for k, v in urls.items()}
    if isinstance(urls, str) and "://" in urls:
        parts = urlsplit(urls)
        new = base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        originals[new] = urls
        return new
    return urls


class _Hooks:
    """Mixed in front of a ccxt.pro exchange class; see the module docstring."""

    kernel_sink: Sink | None = None
    kernel_rate: RateState
    kernel_originals: dict[str, str]

    def on_rest_response(self, code: Any, reason: Any, url: str, method: Any, headers: Any,
                         body: Any, request_headers: Any, request_body: Any) -> Any:
        rate = self.kernel_rate
        for name, value in (headers or {}).items():
            low = str(name).lower()
            if low.startswith(_RATE_HEADERS) and str(value).strip().isdigit():
                rate.used[low] = int(str(value).strip())
                rate.at_ns = time.time_ns()
        if url.split("?", 1)[0].endswith("/exchangeInfo") and isinstance(body, str):
            _record_limits(rate, body)
        return super().on_rest_response(  # type: ignore[misc]
            code, reason, url, method, headers, body, request_headers, request_body)

    def handle_errors(self, code: Any, reason: Any, url: Any, method: Any, headers: Any,
                      body: Any, response: Any, request_headers: Any,
                      request_body: Any) -> Any:
        try:
            return super().handle_errors(  # type: ignore[misc]
                code, reason, url, method, headers, body, response, request_headers,
                request_body)
        except ccxt.BaseError as e:
            venue_code = msg = None
            if isinstance(response, dict):
                raw = response.get("code")
                venue_code = None if raw is None else str(raw)
                msg = None if response.get("msg") is None else str(response.get("msg"))
            e.kernel_venue_error = VenueErrorInfo(
                status=int(code), code=venue_code, message=msg)
            raise

    def get_exceptions_by_url(self, url: Any, exact_or_broad: str) -> Any:
        if isinstance(url, str):
            for new in sorted(self.kernel_originals, key=len, reverse=True):
                if url.startswith(new):
                    url = self.kernel_originals[new] + url[len(new):]
                    break
        return super().get_exceptions_by_url(url, exact_or_broad)  # type: ignore[misc]

    def handle_message(self, client: Any, message: Any) -> Any:
        client.kernel_delivered = True
        sink = self.kernel_sink
        if sink is not None and not sink(client.url, message):  # the sink never raises
            return None
        return super().handle_message(client, message)  # type: ignore[misc]

    def client(self, url: str) -> Any:
        c = super().client(url)  # type: ignore[misc]
        if not getattr(c, "kernel_guarded", False):
            inner = c.handle_text_or_binary_message

            def guarded(data: Any) -> None:
                c.kernel_delivered = False
                try:
                    inner(data)
                except Exception as e:
                    raw = data if isinstance(data, bytes) else str(data).encode(
                        "utf-8", "surrogateescape")
                    if self.kernel_sink is not None:
                        self.kernel_sink(c.url, BadFrame(raw, f"{type(e).__name__}: {e}"[:300],
                                                         bool(c.kernel_delivered)))

            c.handle_text_or_binary_message = guarded
            c.kernel_guarded = True
        return c


def _record_limits(rate: RateState, body: str) -> None:
    try:
        info = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return
    for row in info.get("rateLimits", []) if isinstance(info, dict) else []:
        if not isinstance(row, dict):
            continue
        kind, unit, num, limit = (row.get(k) for k in
                                  ("rateLimitType", "interval", "intervalNum", "limit"))
        if isinstance(kind, str) and isinstance(unit, str) and isinstance(limit, int):
            rate.limits[f"{kind}/{num}{unit[:1].lower()}"] = limit


_classes: dict[str, type] = {}


def exchange_class(exchange_id: str) -> type:
    """ccxt.pro's class for `exchange_id` with the hooks in front (one class per id)."""
    if exchange_id not in _classes:
        base = getattr(ccxt.pro, exchange_id, None)
        if not isinstance(base, type):
            raise LookupError(f"ccxt.pro has no exchange {exchange_id!r}")
        _classes[exchange_id] = type(f"Kernel_{exchange_id}", (_Hooks, base), {})
    return _classes[exchange_id]


def make_exchange(exchange_id: str, *, api_key: str | None, secret: str | None,
                  options: dict[str, Any], rest_url: str | None, ws_url: str | None,
                  sandbox: bool, timeout_s: float, sink: Sink | None,
                  rate_limit_ms: float | None = None) -> Any:
    """A new ccxt.pro exchange (the caller closes it). The secrets go to ccxt only.
    ccxt paces its REST calls (`enableRateLimit`, always on)."""
    cls = exchange_class(exchange_id)
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": int(timeout_s * 1000)}
    if rate_limit_ms is not None:
        config["rateLimit"] = rate_limit_ms
    if api_key:
        config["apiKey"] = api_key
    if secret:
        config["secret"] = secret
    ex = cls(config)
    ex.kernel_rate = RateState()
    ex.kernel_originals = {}
    ex.kernel_sink = sink
    if sandbox:
        ex.set_sandbox_mode(True)
    ex.options = ex.deep_extend(ex.options, options)
    api = dict(ex.urls["api"])
    ws = api.pop("ws", None)
    if rest_url:
        api = _rewrite(api, rest_url, ex.kernel_originals)
    if ws is not None:
        api["ws"] = _rewrite(ws, ws_url, {}) if ws_url else ws
    ex.urls["api"] = api
    return ex
