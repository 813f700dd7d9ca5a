"""Who may use the API, and how often: tokens with scopes, failed-hello and request limits.

Tokens are configured per client (`[[api.tokens]]`: a name, scopes, and the token in a
variable or systemd credential via `token_env`, or its SHA-256 via `token_sha256`). The
daemon keeps only each token's SHA-256; a presented token is hashed and compared with
every configured digest by `hmac.compare_digest`, all of them each time, so neither the
comparison nor the table's order tells an attacker how close a guess came.

`FailureLimiter` refuses a peer (an IP address, or the uid on the unix socket) for a
while after repeated failed hellos; `TokenBucket` limits one connection's requests.
Both take the time as an argument (monotonic seconds), so tests need no clock.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict, deque
from collections.abc import Mapping

import msgspec

from kernel.daemon.config import ApiConfig, credential_name, read_secret


class Grant(msgspec.Struct, frozen=True, kw_only=True):
    """What a token allows: the client's configured name and its scopes."""

    name: str
    scopes: frozenset[str]


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenTable:
    """The configured clients by token digest. Holds no token, only digests."""

    def __init__(self, entries: list[tuple[bytes, Grant]]) -> None:
        self._entries = entries

    @classmethod
    def from_config(cls, api: ApiConfig, environ: Mapping[str, str] | None = None
                    ) -> tuple[TokenTable, list[str]]:
        """The table, and a warning for each client whose token is not set (that client
        cannot connect; the daemon runs on). Raises ConfigError if a credential file
        exists but cannot be read."""
        entries: list[tuple[bytes, Grant]] = []
        warnings: list[str] = []
        for t in api.tokens:
            grant = Grant(name=t.name, scopes=frozenset(t.scopes))
            if t.token_sha256 is not None:
                entries.append((bytes.fromhex(t.token_sha256), grant))
                continue
            assert t.token_env is not None  # the config's checks require one of the two
            token = read_secret(t.token_env, environ)
            if token is None:
                warnings.append(
                    f"api client {t.name!r}: its token is not set (export {t.token_env} or"
                    f" provide the systemd credential {credential_name(t.token_env)}):"
                    " it cannot connect")
                continue
            entries.append((digest(token), grant))
        if not api.tokens:
            warnings.append("no [[api.tokens]] configured: every hello is refused")
        return cls(entries), warnings

    def check(self, token: str) -> Grant | None:
        """The grant of `token`, or None. Compares against every entry, in constant time."""
        presented = digest(token)
        found: Grant | None = None
        for expected, grant in self._entries:
            if hmac.compare_digest(expected, presented) and found is None:
                found = grant
        return found

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"TokenTable({', '.join(g.name for _, g in self._entries)})"


class FailureLimiter:
    """After `failures` failed hellos within `window_s` from one peer, that peer is
    refused for `block_s`. Remembers at most `max_peers` peers (the least recent go)."""

    def __init__(self, failures: int = 5, window_s: float = 60.0, block_s: float = 60.0,
                 max_peers: int = 10_000) -> None:
        self.failures = failures
        self.window_s = window_s
        self.block_s = block_s
        self.max_peers = max_peers
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked: dict[str, float] = {}

    def blocked_for(self, peer: str, now: float) -> float:
        """Seconds until `peer` may try again (0: it may now)."""
        until = self._blocked.get(peer)
        if until is None:
            return 0.0
        if now >= until:
            del self._blocked[peer]
            return 0.0
        return until - now

    def failed(self, peer: str, now: float) -> None:
        times = self._seen.pop(peer, None) or deque(maxlen=self.failures)
        times.append(now)
        self._seen[peer] = times  # most recent last
        while len(self._seen) > self.max_peers:
            self._seen.popitem(last=False)
        if len(times) == self.failures and now - times[0] <= self.window_s:
            self._blocked[peer] = now + self.block_s
            times.clear()
        if len(self._blocked) > self.max_peers:
            for p in [p for p, until in self._blocked.items() if until <= now]:
                del self._blocked[p]


class TokenBucket:
    """`rate` requests per second in bursts of up to `burst`."""

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = now

    def take(self, now: float) -> bool:
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
