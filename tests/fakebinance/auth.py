"""Endpoint security, checked the way Binance's general-info page states it.

* USER_STREAM (listenKey) endpoints need a valid `X-MBX-APIKEY` header; SIGNED (TRADE,
  USER_DATA) endpoints need it too, plus `timestamp`, optional `recvWindow` (default 5000) and
  `signature` = hex HMAC-SHA256(secret, totalParams), where totalParams is the query string
  *concatenated* with the request body, exactly as sent (percent-encoding included), without
  the `signature` pair, which must come last. The signature is not case sensitive.
* Timing: accepted iff `timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow`.
* A missing or malformed key is -2014, a well-formed unknown key -2015 (HTTP 401); a bad
  signature -1022, a timestamp outside the window -1021 (HTTP 400).

A key is "well formed" here when it is 1 to 128 letters and digits (Binance's are 64).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from . import errors as E

KEY_FORMAT = re.compile(r"^[A-Za-z0-9]{1,128}$")
SIGNATURE_PAIR = re.compile(r"(?:^|&)signature=([^&]*)$")


@dataclass(frozen=True)
class Credentials:
    api_key: str
    secret: str


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def check_api_key(header: str | None, creds: Credentials) -> None:
    if not header or not KEY_FORMAT.match(header):
        raise E.api_key_format_invalid()
    if not hmac.compare_digest(header, creds.api_key):
        raise E.rejected_api_key()


def params_of(query: str, body: str) -> dict[str, str]:
    """The request's parameters; a name in both places takes the query string's value."""
    params = dict(parse_qsl(body, keep_blank_values=True))
    params.update(parse_qsl(query, keep_blank_values=True))
    return params


def _strip_signature(raw: str) -> tuple[str, str | None]:
    m = SIGNATURE_PAIR.search(raw)
    if m is None:
        return raw, None
    return raw[:m.start()], m.group(1)


def check_signed(query: str, body: str, creds: Credentials, now_ms: int) -> dict[str, str]:
    """Verify a SIGNED request; return its parameters without `signature`."""
    params = params_of(query, body)
    raw_ts = params.get("timestamp", "")
    if not raw_ts.isdigit():
        raise E.mandatory_param("timestamp")
    raw_window = params.get("recvWindow", "5000")
    if not raw_window.isdigit():
        raise E.invalid_parameter("recvWindow")
    ts, window = int(raw_ts), int(raw_window)
    if ts >= now_ms + 1000:
        raise E.timestamp_ahead()
    if now_ms - ts > window:
        raise E.timestamp_outside_recv_window()
    q, q_sig = _strip_signature(query)
    b, b_sig = _strip_signature(body)
    given = q_sig if q_sig is not None else b_sig
    if not given:
        raise E.mandatory_param("signature")
    if not hmac.compare_digest(given.lower(), sign(creds.secret, q + b)):
        raise E.invalid_signature()
    params.pop("signature", None)
    return params
