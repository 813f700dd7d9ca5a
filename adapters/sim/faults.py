"""Fault injection on the sim's push stream: seeded, pure (no clock: `now_ns` is passed in).

Per pushed message, in this order, with the probabilities of `SimFaults`: it may be
dropped; replaced by a malformed payload (a missing field, a NaN, a negative quantity, an
unknown event type, or truncated JSON); delayed 5x the report delay if it is a balance
and positions report (`stale_reports`); delivered twice; or held back behind the next
message (`reorder`). `stats` counts each fault, for tests. Resync answers never pass here.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import msgspec

from adapters.sim import wire
from adapters.sim.config import SimFaults
from adapters.sim.wire import Msg

_encoder = msgspec.json.Encoder()
#: For each event type, a path to a decimal field that a malformed payload spoils.
_NUMERIC = {
    "ORDER_TRADE_UPDATE": ("o", "q"),
    "markPriceUpdate": ("p",),
    "ACCOUNT_CONFIG_UPDATE": ("ac", "l"),
}


class FaultInjector:
    def __init__(self, faults: SimFaults, rng: random.Random, report_delay_ms: int) -> None:
        self.faults = faults
        self._rng = rng
        self._stale_ns = 4 * report_delay_ms * wire.NS_PER_MS  # on top of the normal delay
        self._held: bytes | None = None  # a reordered message, waiting for the next one
        self._late: list[tuple[int, bytes]] = []  # stale reports and their release times
        self.stats: Counter[str] = Counter()

    def push(self, msgs: list[Msg], now_ns: int) -> list[bytes]:
        """The payloads to deliver now for `msgs`, pushed by the venue at `now_ns`."""
        out: list[bytes] = []
        due = [raw for t, raw in self._late if t <= now_ns]
        self._late = [(t, raw) for t, raw in self._late if t > now_ns]
        out.extend(due)
        for msg in msgs:
            self._one(msg, now_ns, out)
        return out

    def flush(self) -> list[bytes]:
        """Everything still held back (at the end of a test's run)."""
        out = [raw for _, raw in self._late]
        if self._held is not None:
            out.append(self._held)
        self._late, self._held = [], None
        return out

    def _one(self, msg: Msg, now_ns: int, out: list[bytes]) -> None:
        f, rng = self.faults, self._rng
        draws = [rng.random() for _ in range(5)]  # one draw per fault: stable sequences
        if draws[0] < f.drop:
            self.stats["drop"] += 1
            return
        if draws[1] < f.malformed:
            self.stats["malformed"] += 1
            raw = self.malform(msg)
        else:
            raw = _encoder.encode(msg)
        if wire.is_report(msg) and draws[2] < f.stale_reports:
            self.stats["stale"] += 1
            self._late.append((now_ns + self._stale_ns, raw))
            return
        copies = [raw]
        if draws[3] < f.duplicate:
            self.stats["duplicate"] += 1
            copies.append(raw)
        if self._held is not None:  # the message held back goes out behind this one
            copies.append(self._held)
            self._held = None
        elif draws[4] < f.reorder:
            self.stats["reorder"] += 1
            self._held = copies.pop(0)
        out.extend(copies)

    def malform(self, msg: Msg) -> bytes:
        """A payload that must fail to parse, made from `msg`."""
        bad: Any = msgspec.json.decode(_encoder.encode(msg))  # a deep copy
        how = self._rng.choice(("missing", "nan", "negative", "unknown", "truncated"))
        path = _NUMERIC.get(msg.get("e", ""))
        if how in ("nan", "negative") and path is not None:
            target = bad
            for k in path[:-1]:
                target = target[k]
            target[path[-1]] = "NaN" if how == "nan" else "-1"
        elif how == "missing":
            del bad["E"]
        elif how == "truncated":
            raw = _encoder.encode(bad)
            return raw[: len(raw) // 2]
        else:
            bad["e"] = "SIM_GARBLED"
        return _encoder.encode(bad)
