"""kernel/daemon/config.py: every bad config names the file, the key and what was expected."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kernel.daemon import config as config_module
from kernel.daemon.config import (
    Config,
    Secrets,
    credential_name,
    load_config,
    load_secrets,
    resolve_state_dir,
)
from kernel.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SIM = ROOT / "config" / "sim.toml"
BINANCE = ROOT / "config" / "binance-usdm.toml"

INSTRUMENT = """
[[venue.sim.instruments]]
symbol = "BTCUSDT"
base = "BTC"
quote = "USDT"
settle = "USDT"
tick_size = "0.1"
lot_size = "0.001"
start_price = "60000"
"""

# (TOML text, the key path the message must name, what it must say was expected)
BAD = [
    # unknown keys, at every level
    ("bogus = 1\n", "bogus", "unknown key; expected one of: kernel, venue"),
    ("[kernel]\nqueue_sise = 5\n", "kernel.queue_sise", "unknown key"),
    ("[venue]\nkindd = 'sim'\n", "venue.kindd", "unknown key"),
    ("[venue.sim]\nsed = 1\n", "venue.sim.sed", "unknown key"),
    ("[venue.sim.faults]\ndorp = 0.1\n", "venue.sim.faults.dorp", "unknown key"),
    ("[venue.sim.trader]\nevery = 1\n", "venue.sim.trader.every", "unknown key"),
    (INSTRUMENT + "colour = 'red'\n", "venue.sim.instruments[0].colour", "unknown key"),
    ("[venue.ccxtpro]\napi_key = 'abc'\n", "venue.ccxtpro.api_key", "unknown key"),
    ("[venue.ccxtpro.credentials]\napi_secret = 'abc'\n",
     "venue.ccxtpro.credentials.api_secret", "unknown key"),
    ("[reconcile]\nepsilon = '1'\n", "reconcile.epsilon", "a table"),
    ("[reconcile]\ncapital_epsilon = '1'\n", "reconcile.capital_epsilon", "unknown key"),
    ("[metrics]\npath = '/m'\n", "metrics.path", "unknown key"),
    ("[api]\ntoken = 'abc'\n", "api.token", "unknown key"),
    # wrong types
    ("kernel = 3\n", "kernel", "expected a table, found 3"),
    ("[kernel]\nqueue_size = 'big'\n", "kernel.queue_size", "expected an integer"),
    ("[kernel]\nlog_level = 'verbose'\n", "kernel.log_level",
     "expected one of 'debug', 'info', 'warning', 'error', found 'verbose'"),
    ("[kernel]\nsynchronous = 'OFF'\n", "kernel.synchronous", "one of 'NORMAL', 'FULL'"),
    ("[venue]\nkind = 'binance'\n", "venue.kind", "one of 'sim', 'sim-remote', 'ccxtpro'"),
    ("[metrics]\nenabled = 'yes'\n", "metrics.enabled", "expected a boolean"),
    ("[venue.ccxtpro]\nrest_url = 3\n", "venue.ccxtpro.rest_url",
     "expected a string (or no key), found 3"),
    ("[venue.ccxtpro]\nsymbols = 'BTC/USDT'\n", "venue.ccxtpro.symbols", "expected an array"),
    ("[reconcile]\ndefault_epsilon = 'abc'\n", "reconcile.default_epsilon", "decimal number"),
    ("[venue.ccxtpro.credentials]\napi_key_env = 'my key'\n",
     "venue.ccxtpro.credentials.api_key_env", "matching regex"),
    ("[[venue.sim.instruments]]\nsymbol = 'X'\n", "venue.sim.instruments[0].base",
     "required key is missing"),
    (INSTRUMENT + "kind = 'perp'\n", "venue.sim.instruments[0].kind", "one of 'linear'"),
    # out of range
    ("[kernel]\nqueue_size = 0\n", "kernel.queue_size", "expected an integer >= 1, found 0"),
    ("[kernel]\ncheckpoint_every = -1\n", "kernel.checkpoint_every", ">= 1"),
    ("[kernel]\nbatch_max = 0\n", "kernel.batch_max", ">= 1"),
    ("[kernel]\nresync_every_s = 0\n", "kernel.resync_every_s", "> 0.0"),
    ("[kernel]\nstatus_every_s = -5\n", "kernel.status_every_s", "> 0.0"),
    ("[kernel]\nresync_every_s = inf\n", "kernel.resync_every_s", "a finite number"),
    ("[metrics]\nport = 70000\n", "metrics.port", "<= 65535, found 70000"),
    ("[api]\nport = -1\n", "api.port", ">= 0"),
    ("[venue.sim.faults]\ndrop = 1.5\n", "venue.sim.faults.drop",
     "expected a probability in [0, 1], found 1.5"),
    ("[venue.sim.faults]\nmalformed = -0.1\n", "venue.sim.faults.malformed", "probability"),
    ("[venue.sim.faults]\nduplicate = nan\n", "venue.sim.faults.duplicate", "finite"),
    ("[venue.sim.faults]\ndisconnect_every_s = 0\n", "venue.sim.faults.disconnect_every_s",
     "seconds > 0"),
    ("[venue.sim]\ntick_s = 0\n", "venue.sim.tick_s", "a number > 0"),
    ("[venue.sim.trader]\nmax_qty_lots = 0\n", "venue.sim.trader.max_qty_lots", "> 0"),
    ("[venue.sim.deposits]\nUSDT = '-5'\n", "venue.sim.deposits.USDT", ">= 0, found '-5'"),
    (INSTRUMENT.replace('"0.001"', '"0"'), "venue.sim.instruments[0].lot_size", "> 0"),
    (INSTRUMENT.replace('"60000"', '"NaN"'), "venue.sim.instruments[0].start_price", "finite"),
    ("[reconcile]\nprice_epsilon = '-1'\n", "reconcile.price_epsilon", ">= 0"),
    ("[reconcile]\nepsilon = { USDT = '-0.1' }\n", "reconcile.epsilon.USDT", ">= 0"),
    ("[reconcile]\nsettle_window_ns = -1\n", "reconcile.settle_window_ns", ">= 0"),
    # rules across keys
    ("[venue]\nkind = 'ccxtpro'\n", "venue.ccxtpro.exchange", "a ccxt.pro exchange id"),
    (INSTRUMENT + INSTRUMENT, "venue.sim.instruments", "unique symbols"),
    ("[api]\nport = 9464\n", "metrics.port", "a port other than api.port"),
    ("[kernel]\nresync_every_s = 90\nresync_lookback_s = 60\n", "kernel.resync_every_s",
     "expected at most kernel.resync_lookback_s (60.0)"),
    ("[kernel]\nresync_every_s = 61\n", "kernel.resync_every_s", "found 61.0"),
    ("[kernel]\nresync_silence_s = 0\n", "kernel.resync_silence_s", "> 0.0"),
    ("[kernel]\nresync_max_failures = 0\n", "kernel.resync_max_failures", ">= 1"),
]


@pytest.mark.parametrize(("text", "key", "expected"), BAD, ids=[b[1] for b in BAD])
def test_a_bad_config_names_file_key_and_expectation(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    path = tmp_path / "exkernel.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    message = str(e.value)
    assert f"{path}: {key}: " in message
    assert expected in message


def test_a_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[kernel]\nlog_level = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.toml: TOML syntax error: .*line 2, column"):
        load_config(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=rf"^{path}: no such config file$"):
        load_config(path)


def test_a_directory_or_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path)
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[kernel]\nstate_dir = '/var/lib/caf\xe9'\n")
    with pytest.raises(ConfigError, match=r"latin1\.toml: expected UTF-8 text, byte 34"):
        load_config(path)


def test_every_problem_beyond_types_is_reported_not_only_the_first(tmp_path: Path) -> None:
    path = tmp_path / "two.toml"
    path.write_text("[venue.sim.faults]\ndrop = 2.0\nreorder = -1.0\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert "venue.sim.faults.drop" in str(e.value)
    assert "venue.sim.faults.reorder" in str(e.value)


def test_no_path_gives_the_defaults_and_sim_toml_spells_them_out() -> None:
    assert load_config(None) == Config()
    assert load_config(SIM) == Config()


def _toml_leaves(raw: Any, pattern: str = "") -> set[str]:
    """Key paths in a parsed TOML document, written as config._leaves writes patterns."""
    if isinstance(raw, dict):
        out: set[str] = set()
        for k, v in raw.items():
            dict_table = pattern == "venue.sim.deposits"  # keys are data, not names
            out |= _toml_leaves(v, f"{pattern}.*" if dict_table else f"{pattern}.{k}".lstrip("."))
        return out
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):
        return set().union(*(_toml_leaves(v, f"{pattern}[]") for v in raw))
    return {pattern}


def test_sim_toml_shows_every_key_with_its_default() -> None:
    text = SIM.read_text(encoding="utf-8")
    shown = _toml_leaves(tomllib.loads(text))
    for _key, pattern, value in config_module._leaves(Config(), "", ""):
        if value is None:  # TOML has no null: the key is shown commented out
            assert f"# {pattern.rsplit('.', 1)[-1]} = " in text, pattern
        else:
            assert pattern in shown, pattern


def test_the_binance_example_loads_as_a_ccxtpro_venue() -> None:
    cfg = load_config(BINANCE)
    assert cfg.venue.kind == "ccxtpro"
    assert cfg.venue.ccxtpro.exchange == "binanceusdm"
    assert cfg.venue.ccxtpro.symbols == ("BTC/USDT:USDT", "ETH/USDT:USDT")
    assert cfg.kernel.synchronous == "FULL"


def test_values_decode_to_their_types(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[kernel]\nresync_every_s = 10\nlog_level = 'debug'\n"
                    "[reconcile]\nepsilon = { USDT = '0.5' }\n[venue.sim.faults]\ndrop = 0.25\n",
                    encoding="utf-8")
    cfg = load_config(path)
    assert cfg.kernel.resync_every_s == 10.0 and isinstance(cfg.kernel.resync_every_s, float)
    assert cfg.kernel.log_level == "debug"
    assert cfg.reconcile.eps("USDT") == Decimal("0.5")
    assert cfg.venue.sim.faults.drop == 0.25
    with pytest.raises(AttributeError):
        cfg.kernel.log_level = "error"  # type: ignore[misc]


# -- secrets ------------------------------------------------------------------------------

KEYS = {"EXKERNEL_API_KEY": "key-from-env", "EXKERNEL_API_SECRET": "secret-from-env"}


def test_a_sim_venue_needs_no_secrets() -> None:
    s = load_secrets(Config(), {})
    assert (s.api_key, s.api_secret, s.api_token) == (None, None, None)


def test_secrets_come_from_the_environment() -> None:
    s = load_secrets(load_config(BINANCE), {**KEYS, "EXKERNEL_API_TOKEN": "tok-from-env"})
    assert (s.api_key, s.api_secret, s.api_token) == (
        "key-from-env", "secret-from-env", "tok-from-env")


def test_secrets_come_from_the_systemd_credentials_directory_first(tmp_path: Path) -> None:
    (tmp_path / "exkernel-api-key").write_text("key-from-cred\n", encoding="utf-8")
    (tmp_path / "exkernel-api-secret").write_text("secret-from-cred", encoding="utf-8")
    s = load_secrets(load_config(BINANCE), {**KEYS, "CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert (s.api_key, s.api_secret, s.api_token) == ("key-from-cred", "secret-from-cred", None)


def test_secret_names_come_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[venue]\nkind = 'ccxtpro'\n[venue.ccxtpro]\nexchange = 'okx'\n"
                    "[venue.ccxtpro.credentials]\napi_key_env = 'OKX_KEY'\n"
                    "api_secret_env = 'OKX_SECRET'\n", encoding="utf-8")
    (tmp_path / "okx-secret").write_text("s", encoding="utf-8")
    s = load_secrets(load_config(path), {"OKX_KEY": "k", "CREDENTIALS_DIRECTORY": str(tmp_path),
                                         **KEYS})
    assert (s.api_key, s.api_secret) == ("k", "s")
    assert credential_name("OKX_SECRET") == "okx-secret"


@pytest.mark.parametrize("missing", ["EXKERNEL_API_KEY", "EXKERNEL_API_SECRET"])
def test_a_missing_ccxtpro_secret_is_a_config_error_naming_the_variable(missing: str) -> None:
    env = {k: v for k, v in KEYS.items() if k != missing}
    with pytest.raises(ConfigError, match=rf"secret {missing} .* not set") as e:
        load_secrets(load_config(BINANCE), env)
    assert credential_name(missing) in str(e.value)


def test_an_empty_secret_counts_as_missing(tmp_path: Path) -> None:
    (tmp_path / "exkernel-api-key").write_text("\n", encoding="utf-8")
    env = {**KEYS, "EXKERNEL_API_KEY": " ", "CREDENTIALS_DIRECTORY": str(tmp_path)}
    with pytest.raises(ConfigError, match="EXKERNEL_API_KEY"):
        load_secrets(load_config(BINANCE), env)


def test_secrets_repr_reveals_no_value() -> None:
    s = Secrets(api_key="AKIA-very-secret", api_secret="hunter2-secret", api_token=None)
    for shown in (repr(s), str(s), f"{s}", f"{s!r}", repr([s])):
        assert "AKIA" not in shown and "hunter2" not in shown
    assert repr(s) == "Secrets(api_key=<set>, api_secret=<set>, api_token=<unset>)"
    with pytest.raises(TypeError):
        msgspec.json.encode(s)


@pytest.mark.parametrize(
    ("state_dir", "env", "expected"),
    [
        ("/srv/exk", {"STATE_DIRECTORY": "/var/lib/exkernel"}, "/srv/exk"),
        ("", {"STATE_DIRECTORY": "/var/lib/exkernel"}, "/var/lib/exkernel"),
        ("", {"STATE_DIRECTORY": "/var/lib/a:/var/lib/b"}, "/var/lib/a"),
        ("", {}, "var"),
    ],
)
def test_resolve_state_dir(tmp_path: Path, state_dir: str, env: dict[str, str],
                           expected: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[kernel]\nstate_dir = '{state_dir}'\n", encoding="utf-8")
    assert resolve_state_dir(load_config(path), env) == Path(expected)


def test_the_demo_config_is_the_sim_without_its_scripted_trader() -> None:
    """`python3 dev.py run` uses config/demo.toml: the strategy trades, not the sim."""
    cfg = load_config(ROOT / "config" / "demo.toml")
    assert cfg.venue.kind == "sim" and not cfg.venue.sim.trader.enabled
    assert cfg.reconciler.enabled
    assert msgspec.structs.replace(
        cfg, venue=msgspec.structs.replace(
            cfg.venue, sim=msgspec.structs.replace(cfg.venue.sim, trader=Config().venue.sim.trader))
    ) == Config()
