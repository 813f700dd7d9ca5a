"""The daemon's TOML config, decoded into frozen typed values; secrets from outside it.

`load_config(path)` reads one TOML file (stdlib `tomllib`) into `Config`, whose tables are
frozen msgspec Structs that refuse unknown keys. Every problem (a missing file, TOML
syntax, an unknown key, a wrong type, a value out of range, a ccxtpro venue without an
`exchange`) raises `ConfigError` naming the file, the key path (`venue.sim.faults.drop`)
and what was expected. config/sim.toml spells out every key with its default.

Secrets are never in the TOML: the config names environment variables, and
`load_secrets(cfg)` reads them, or the systemd credential of the same name in lower
case with dashes (`EXKERNEL_API_KEY` -> `$CREDENTIALS_DIRECTORY/exkernel-api-key`).
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from adapters.ccxtpro.config import CcxtProSettings
from adapters.sim.config import SimConfig
from kernel.daemon.reconciler import ReconcilerConfig
from kernel.errors import ConfigError
from kernel.reconcile import ReconcileConfig
from kernel.risk import RiskConfig

#: Exit statuses systemd must not restart on (RestartPreventExitStatus=), from sysexits.h.
EXIT_CONFIG = 78  # EX_CONFIG: the config file or a secret is wrong
EXIT_CREDENTIALS = 77  # EX_NOPERM: the venue rejected the credentials
EXIT_LOCKED = 75  # EX_TEMPFAIL: another writer holds the event log; retry once it stopped

Positive = Annotated[int, msgspec.Meta(gt=0)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
EnvName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class KernelConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    state_dir: str = ""  # "" = $STATE_DIRECTORY (systemd), else ./var
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    synchronous: Literal["NORMAL", "FULL"] = "FULL"
    checkpoint_every: Positive = 10_000
    queue_size: Positive = 10_000
    batch_max: Positive = 1_000
    resync_every_s: Seconds = 30.0
    resync_lookback_s: Seconds = 60.0
    #: Resync at once when the venue has pushed nothing for this long, and this often
    #: while it stays silent: a silent stream may be a dead one.
    resync_silence_s: Seconds = 10.0
    #: Periodic resyncs failing this many times in a row force a reconnect.
    resync_max_failures: Positive = 5
    status_every_s: Seconds = 5.0


class Credentials(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Names of the variables holding the secrets; never the secrets themselves."""

    api_key_env: EnvName = "EXKERNEL_API_KEY"
    api_secret_env: EnvName = "EXKERNEL_API_SECRET"


class CcxtProConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    exchange: str = ""  # a ccxt.pro exchange id, e.g. "binanceusdm"; required for ccxtpro
    symbols: tuple[str, ...] = ()  # ccxt unified symbols; required for ccxtpro
    sandbox: bool = False
    #: Merged over the adapter's ccxt options (`exchange.options`), e.g. {recvWindow = 5000}.
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    #: Replace the scheme and host of every REST / websocket URL (a proxy, a local venue).
    rest_url: str | None = None
    ws_url: str | None = None
    credentials: Credentials = Credentials()
    adapter: CcxtProSettings = CcxtProSettings()


class VenueConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    #: "sim": the simulated venue embedded in this process; "sim-remote": a simulated
    #: venue served by `python -m adapters.sim.server` at `url`, whose account outlives
    #: the kernel's restarts; "ccxtpro": a real venue.
    kind: Literal["sim", "sim-remote", "ccxtpro"] = "sim"
    url: str = ""
    sim: SimConfig = SimConfig()
    ccxtpro: CcxtProConfig = CcxtProConfig()


class MetricsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 9464


ApiScope = Literal["read", "trade"]
#: A client's name: it is logged as `by` on the halts and resumes it sends.
ClientName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")]
Sha256Hex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]


class ApiToken(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One client of the API: its name, scopes, and where its token is. Exactly one of
    `token_env` (the NAME of a variable, or the systemd credential of that name in lower
    case with dashes) and `token_sha256` (the token's SHA-256 in hex)."""

    name: ClientName
    scopes: tuple[ApiScope, ...] = ("read",)
    token_env: EnvName | None = None
    token_sha256: Sha256Hex | None = None


class ApiConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The websocket API (docs/api.md). It always listens on `api.sock` in the state
    directory; TCP only when `tcp`, on loopback unless `allow_remote` with TLS."""

    tcp: bool = False
    host: str = "127.0.0.1"
    port: Port = 8765  # 0 = any free port (the daemon logs which)
    allow_remote: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    tokens: tuple[ApiToken, ...] = (
        ApiToken(name="operator", scopes=("read", "trade"), token_env="EXKERNEL_API_TOKEN"),)
    max_frame_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 65536
    max_connections: Positive = 64
    requests_per_s: Positive = 100
    max_lag_s: Seconds = 30.0
    max_event_backlog: Positive = 10_000


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kernel: KernelConfig = KernelConfig()
    venue: VenueConfig = VenueConfig()
    reconcile: ReconcileConfig = ReconcileConfig()
    metrics: MetricsConfig = MetricsConfig()
    api: ApiConfig = ApiConfig()
    reconciler: ReconcilerConfig = ReconcilerConfig()
    risk: RiskConfig = RiskConfig()


def load_config(path: Path | None) -> Config:
    """The config in `path`; None gives the defaults (the same as config/sim.toml)."""
    if path is None:
        return Config()
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: expected UTF-8 text, byte {e.start} is not") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file: {e.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: TOML syntax error: {e}") from None
    try:
        cfg = msgspec.convert(raw, Config)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{path}: {_explain(str(e), raw)}") from None
    problems = list(_problems(cfg))
    if problems:
        raise ConfigError("\n".join(
            f"{path}: {key}: expected {want}, found {_shown(v)}" for key, want, v in problems))
    return cfg


def _shown(value: Any) -> str:
    return repr(str(value) if isinstance(value, Decimal) else value)


def resolve_state_dir(cfg: Config, environ: Mapping[str, str] | None = None) -> Path:
    """`kernel.state_dir`, else `$STATE_DIRECTORY`'s first entry (systemd), else ./var."""
    env = os.environ if environ is None else environ
    if cfg.kernel.state_dir:
        return Path(cfg.kernel.state_dir)
    return Path(env.get("STATE_DIRECTORY", "").split(":")[0] or "var")


# -- secrets ----------------------------------------------------------------------------


class Secrets:
    """The venue's API key and secret, and the API token of the first `[[api.tokens]]`
    read from a variable (what a CLI on this machine presents). `repr` says only which
    are set. The daemon reads every client's token itself (`kernel.daemon.auth`)."""

    __slots__ = ("api_key", "api_secret", "api_token")

    def __init__(self, *, api_key: str | None, api_secret: str | None,
                 api_token: str | None) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.api_token = api_token

    def __repr__(self) -> str:
        shown = (f"{n}={'<set>' if getattr(self, n) else '<unset>'}" for n in self.__slots__)
        return f"Secrets({', '.join(shown)})"

    __str__ = __repr__


def credential_name(env_name: str) -> str:
    """The systemd credential read in place of `env_name`.

    `EXKERNEL_API_KEY` -> `exkernel-api-key`, as LoadCredential= names it in the units."""
    return env_name.lower().replace("_", "-")


def load_secrets(cfg: Config, environ: Mapping[str, str] | None = None) -> Secrets:
    """Each secret from `$CREDENTIALS_DIRECTORY/<credential_name>` if that file exists,
    else from the environment variable the config names. A ccxtpro venue's key and
    secret are required (ConfigError naming the variable); the API token may be None."""
    env = os.environ if environ is None else environ
    creds = cfg.venue.ccxtpro.credentials
    required = cfg.venue.kind == "ccxtpro"
    return Secrets(
        api_key=_secret(env, creds.api_key_env, required, "venue.ccxtpro.credentials.api_key_env"),
        api_secret=_secret(env, creds.api_secret_env, required,
                           "venue.ccxtpro.credentials.api_secret_env"),
        api_token=next((_secret(env, t.token_env, False, f"api.tokens[{i}].token_env")
                        for i, t in enumerate(cfg.api.tokens) if t.token_env), None),
    )


def read_secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The secret in `$CREDENTIALS_DIRECTORY/<credential_name(name)>`, else in the
    variable `name`, else None. Raises ConfigError if the credential cannot be read."""
    return _secret(os.environ if environ is None else environ, name, False, name)


def _secret(env: Mapping[str, str], name: str, required: bool, key: str) -> str | None:
    cred = credential_name(name)
    if directory := env.get("CREDENTIALS_DIRECTORY"):
        try:
            value = (Path(directory) / cred).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"credential {cred} in {directory} cannot be read: {e}") from None
        else:
            if value:
                return value
    value = env.get(name, "").strip()
    if value:
        return value
    if required:
        raise ConfigError(
            f"secret {name} (named by {key}) is not set: export {name}, or provide the"
            f" systemd credential {cred} (LoadCredential={cred}:/path/to/file)")
    return None


# -- explaining msgspec's errors -----------------------------------------------------------

_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>.*)`)?$", re.S)
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


def _explain(message: str, raw: Any) -> str:
    """`Expected int >= 1 - at $.kernel.queue_size` -> `kernel.queue_size: expected ...`."""
    m = _AT.match(message)
    assert m is not None  # the pattern matches any string
    what, path = m["what"], m["path"] or ""
    parts: list[str | int] = [name or (int(index) if index.isdigit() else index)
                              for name, index in _SEGMENT.findall(path)]
    typ = _type_at(parts)
    if unknown := re.fullmatch(r"Object contains unknown field `(.+)`", what):
        known = ", ".join(f.name for f in msgspec.structs.fields(typ)) if _is_table(typ) else ""
        return f"{_key([*parts, unknown[1]])}: unknown key; expected one of: {known}"
    if missing := re.fullmatch(r"Object missing required field `(.+)`", what):
        return f"{_key([*parts, missing[1]])}: required key is missing"
    found = _value_at(raw, parts)
    choices = typing.get_args(typ) if typing.get_origin(typ) is Literal else ()
    if choices:
        expected = "expected one of " + ", ".join(repr(c) for c in choices)
    elif what == "Invalid decimal string":
        expected = "expected a decimal number in a string, like '0.001'"
    else:  # "Expected `str | null`, got `int`": say it in TOML's words
        expected = re.sub(r"`([^`]+)`", lambda t: _toml_type(t[1]), what)
        expected = expected[0].lower() + expected[1:]
        if found is not _ABSENT:
            expected = expected.split(", got ")[0]
    return f"{_key(parts)}: {expected}" + ("" if found is _ABSENT else f", found {found!r}")


_TOML_TYPES = {"object": "a table", "array": "an array", "str": "a string", "int": "an integer",
               "float": "a number", "bool": "a boolean", "decimal": "a decimal string"}


def _toml_type(msgspec_type: str) -> str:
    """msgspec's `str | null` -> `a string (or no key)`."""
    names = [n.strip() for n in msgspec_type.split("|")]
    words = " or ".join(_TOML_TYPES.get(n, n) for n in names if n != "null")
    return words + (" (or no key)" if "null" in names else "")


def _key(parts: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) or p == "..." else f".{p}"
                   for p in parts).lstrip(".")


_ABSENT = object()


def _value_at(raw: Any, parts: list[str | int]) -> Any:
    for p in parts:
        try:
            raw = raw[p]
        except (KeyError, IndexError, TypeError):
            return _ABSENT
    return raw


def _is_table(typ: Any) -> bool:
    return isinstance(typ, type) and issubclass(typ, msgspec.Struct)


def _type_at(parts: list[str | int]) -> Any:
    """The declared type at a key path (Annotated and Optional unwrapped), or None."""
    typ: Any = Config
    for p in parts:
        if _is_table(typ) and isinstance(p, str):
            fields = {f.name: f.type for f in msgspec.structs.fields(typ)}
            typ = fields.get(p)
        elif typing.get_origin(typ) in (tuple, list, dict):
            typ = typing.get_args(typ)[-1 if typing.get_origin(typ) is dict else 0]
        else:
            return None
        while typing.get_origin(typ) in (Annotated, typing.Union, types.UnionType):
            typ = next(a for a in typing.get_args(typ) if a is not type(None))
    return typ


# -- checks beyond types -----------------------------------------------------------------

Rule = tuple[Callable[[Any], bool], str]
_PROBABILITY: Rule = (lambda v: 0 <= v <= 1, "a probability in [0, 1]")
_POSITIVE: Rule = (lambda v: v > 0, "a number > 0")
_NOT_NEGATIVE: Rule = (lambda v: v >= 0, "a number >= 0")

#: Ranges msgspec's types cannot state for the tables this module does not own.
_RULES: dict[str, Rule] = {
    **{f"venue.sim.faults.{f}": _PROBABILITY
       for f in ("duplicate", "reorder", "drop", "malformed", "stale_reports")},
    "venue.sim.faults.disconnect_every_s": (lambda v: v is None or v > 0,
                                            "seconds > 0, or no key for never"),
    **{f"venue.sim.instruments[].{f}": _POSITIVE
       for f in ("tick_size", "lot_size", "start_price", "contract_size", "leverage")},
    **{f"venue.sim.instruments[].{f}": _NOT_NEGATIVE for f in ("min_notional", "volatility")},
    "venue.sim.deposits.*": _NOT_NEGATIVE,
    "venue.sim.tick_s": _POSITIVE,
    "venue.sim.funding_interval_s": _POSITIVE,
    "venue.sim.report_delay_ms": _NOT_NEGATIVE,
    "venue.sim.flood_per_s": _NOT_NEGATIVE,
    "venue.sim.trader.every_s": _POSITIVE,
    "venue.sim.trader.max_qty_lots": _POSITIVE,
    **{f"reconcile.{f.name}": _NOT_NEGATIVE for f in msgspec.structs.fields(ReconcileConfig)},
    "reconcile.epsilon.*": _NOT_NEGATIVE,
}


def _leaves(value: Any, key: str, pattern: str) -> Iterator[tuple[str, str, Any]]:
    """(key path, key path with indices as [] and dict keys as *, value) of every leaf."""
    if isinstance(value, msgspec.Struct):
        for f in msgspec.structs.fields(value):
            yield from _leaves(getattr(value, f.name), f"{key}.{f.name}".lstrip("."),
                               f"{pattern}.{f.name}".lstrip("."))
    elif isinstance(value, tuple) and any(isinstance(v, msgspec.Struct) for v in value):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{key}[{i}]", f"{pattern}[]")
    elif isinstance(value, dict):
        for k, item in value.items():
            yield from _leaves(item, f"{key}.{k}", f"{pattern}.*")
    else:
        yield key, pattern, value


def _problems(cfg: Config) -> Iterator[tuple[str, str, Any]]:
    """(key path, what was expected, what was found) for each value out of range."""
    for key, pattern, value in _leaves(cfg, "", ""):
        if isinstance(value, float | Decimal) and not math.isfinite(value):
            yield key, "a finite number", value
        elif (rule := _RULES.get(pattern)) and not rule[0](value):
            yield key, rule[1], value
    venue = cfg.venue
    if venue.kind == "ccxtpro" and not venue.ccxtpro.exchange:
        yield "venue.ccxtpro.exchange", "a ccxt.pro exchange id (venue.kind is 'ccxtpro')", ""
    for key in ("rest_url", "ws_url"):
        url = getattr(venue.ccxtpro, key)
        if url is not None and "://" not in url:
            yield f"venue.ccxtpro.{key}", "a URL with a scheme (http://, ws://)", url
    if venue.kind == "sim-remote" and not venue.url.startswith(("ws://", "wss://")):
        yield "venue.url", "a ws:// URL of the sim venue server (venue.kind is 'sim-remote')", \
            venue.url
    symbols = [i.symbol for i in venue.sim.instruments]
    if len(set(symbols)) != len(symbols):
        yield "venue.sim.instruments", "unique symbols", symbols
    k = cfg.kernel
    if k.resync_every_s > k.resync_lookback_s:
        # A resync asks from where the previous one began, less the lookback. With the
        # lookback >= the interval, every fact's time lies in two successive resyncs'
        # windows: one the venue's history answered without it (it showed it late, or
        # its clock lags ours) is followed by one that asks again.
        yield ("kernel.resync_every_s",
               f"at most kernel.resync_lookback_s ({k.resync_lookback_s}), so that each"
               " resync reaches back past the previous one", k.resync_every_s)
    m, a = cfg.metrics, cfg.api
    if m.enabled and m.port and m.port == a.port and m.host == a.host:
        yield ("metrics.port", f"a port other than api.port on {m.host} (which api.tcp"
               " = true listens on)", m.port)
    yield from _api_problems(a)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api_problems(a: ApiConfig) -> Iterator[tuple[str, str, Any]]:
    if (a.tls_cert is None) != (a.tls_key is None):
        yield ("api.tls_key" if a.tls_key is None else "api.tls_cert",
               "both api.tls_cert and api.tls_key, or neither", a.tls_key or a.tls_cert)
    if a.tcp and not is_loopback(a.host) and not (a.allow_remote and a.tls_cert):
        yield ("api.host", "a loopback address (127.0.0.1, ::1, localhost), or"
               " allow_remote = true with tls_cert and tls_key (better: a TLS proxy in"
               " front of loopback, docs/operations.md)", a.host)
    names = [t.name for t in a.tokens]
    if len(set(names)) != len(names):
        yield "api.tokens", "tokens with unique names", names
    for i, t in enumerate(a.tokens):
        if (t.token_env is None) == (t.token_sha256 is None):
            yield (f"api.tokens[{i}]", "exactly one of token_env and token_sha256",
                   f"name {t.name}")
        if not t.scopes or len(set(t.scopes)) != len(t.scopes):
            yield f"api.tokens[{i}].scopes", "one or both of 'read' and 'trade'", list(t.scopes)
