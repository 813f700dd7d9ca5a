"""Faults a test can arm before the venue does something; each fires once per count.

Armed here, acted on by the server (responses) and the stream hub (pushes):
* `lose_next_response` - the request is executed (an order is created, its stream events go
  out) but the client gets no HTTP answer: the connection is closed (`"reset"`), or held open
  for `hang_s` seconds and then closed (`"hang"`, for client timeouts);
* `fail_next` - the request is *not* executed and the client gets the given Binance error
  (any code: -1013 "Filter failure: ...", -1003 with 429, 503 "Service Unavailable.", ...);
* `duplicate_next_push` - the next user-data push is sent twice;
* `corrupt_next_push` - the next user-data push is mangled: `"truncate"` (invalid JSON),
  `"nan"` (a number field becomes "NaN"), `"negative"` (the fill quantity or wallet balance
  turns negative), `"missing"` (a field is deleted, `field` names it), or any callable
  `payload -> payload | text`.
Dropping sockets, expiring a listenKey and holding the clock are actions on the venue itself
(`FakeBinance.drop_sockets`, `.expire_listen_key`, `.clock`).
"""

from __future__ import annotations

import copy
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import BinanceError

Json = dict[str, Any]
Mutation = Callable[[Json], "Json | str"]


def _inner(payload: Json) -> Json:
    for key in ("o", "a"):
        if isinstance(payload.get(key), dict):
            return payload[key]  # type: ignore[no-any-return]
    return payload


def _first_balance(payload: Json) -> Json | None:
    inner = _inner(payload)
    balances = inner.get("B")
    return balances[0] if isinstance(balances, list) and balances else None


def canned(how: str, field_name: str | None = None) -> Mutation:
    def nan(p: Json) -> Json:
        b = _first_balance(p)
        target = b if b is not None else _inner(p)
        key = field_name or ("wb" if b is not None else ("L" if "L" in target else "p"))
        target[key] = "NaN"
        return p

    def negative(p: Json) -> Json:
        b = _first_balance(p)
        target = b if b is not None else _inner(p)
        key = field_name or ("wb" if b is not None else ("l" if "l" in target else "p"))
        target[key] = "-" + str(target[key]).lstrip("-")
        return p

    def missing(p: Json) -> Json:
        b = _first_balance(p)
        target = b if b is not None and field_name in (None, "wb") else _inner(p)
        target.pop(field_name or ("wb" if b is not None else "L"), None)
        return p

    def truncate(p: Json) -> str:
        text = json.dumps(p)
        return text[: len(text) // 2]

    table: dict[str, Mutation] = {"nan": nan, "negative": negative, "missing": missing,
                                  "truncate": truncate}
    if how not in table:
        raise ValueError(f"unknown corruption {how!r}, expected one of {sorted(table)}")
    return table[how]


@dataclass
class Faults:
    hang_s: float = 30.0
    _lose: dict[tuple[str, str], deque[str]] = field(default_factory=dict)
    _fail: dict[tuple[str, str], deque[BinanceError]] = field(default_factory=dict)
    _duplicate: int = 0
    _corrupt: deque[Mutation] = field(default_factory=deque)

    def lose_next_response(self, method: str = "POST", path: str = "/fapi/v1/order",
                           count: int = 1, mode: str = "reset") -> None:
        if mode not in ("reset", "hang"):
            raise ValueError(f"mode must be 'reset' or 'hang', was {mode!r}")
        self._lose.setdefault((method.upper(), path), deque()).extend([mode] * count)

    def fail_next(self, error: BinanceError, method: str = "POST",
                  path: str = "/fapi/v1/order", count: int = 1) -> None:
        self._fail.setdefault((method.upper(), path), deque()).extend([error] * count)

    def duplicate_next_push(self, count: int = 1) -> None:
        self._duplicate += count

    def corrupt_next_push(self, how: str | Mutation = "nan", field: str | None = None,
                          count: int = 1) -> None:
        mutation = canned(how, field) if isinstance(how, str) else how
        self._corrupt.extend([mutation] * count)

    # --- consumed by the server and the hub ---------------------------------------------------

    def take_failure(self, method: str, path: str) -> BinanceError | None:
        queue = self._fail.get((method, path))
        return queue.popleft() if queue else None

    def take_loss(self, method: str, path: str) -> str | None:
        queue = self._lose.get((method, path))
        return queue.popleft() if queue else None

    def shape_push(self, payload: Json) -> list[Json | str]:
        """What to send for one user-data push: the payload (maybe mangled, maybe as raw text),
        once or, when a duplicate is armed, twice."""
        frames: list[Json | str] = [payload]
        if self._corrupt:
            frames = [self._corrupt.popleft()(copy.deepcopy(payload))]
        if self._duplicate:
            self._duplicate -= 1
            frames = frames * 2
        return frames
