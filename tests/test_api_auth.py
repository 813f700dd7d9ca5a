"""Who may use the API: tokens (hashed, compared in constant time), the failed-hello and
request limits, and the `[api]` config's checks, in the kernel's own words."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kernel.daemon.auth import FailureLimiter, TokenBucket, TokenTable, digest
from kernel.daemon.config import ApiConfig, ApiToken, load_config, load_secrets
from kernel.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def api(*tokens: ApiToken) -> ApiConfig:
    return ApiConfig(tokens=tokens)


def test_tokens_come_from_the_environment_or_a_credential_or_a_hash(tmp_path: Path) -> None:
    (tmp_path / "dash-token").write_text("from-credential\n")
    table, warnings = TokenTable.from_config(api(
        ApiToken(name="env", scopes=("read", "trade"), token_env="ENV_TOKEN"),
        ApiToken(name="cred", token_env="DASH_TOKEN"),
        ApiToken(name="hash", token_sha256=hashlib.sha256(b"hashed").hexdigest()),
    ), {"ENV_TOKEN": "from-env", "CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert warnings == []
    env, cred, hashed = (table.check(t) for t in ("from-env", "from-credential", "hashed"))
    assert env is not None and env.name == "env" and env.scopes == {"read", "trade"}
    assert cred is not None and cred.name == "cred" and cred.scopes == {"read"}
    assert hashed is not None and hashed.name == "hash"
    assert table.check("from-env ") is None and table.check("") is None


def test_the_table_keeps_only_digests() -> None:
    table, _ = TokenTable.from_config(api(ApiToken(name="a", token_env="T")), {"T": "s3cret"})
    assert "s3cret" not in repr(table) and repr(table) == "TokenTable(a)"
    assert table._entries[0][0] == digest("s3cret") == hashlib.sha256(b"s3cret").digest()


def test_a_client_whose_token_is_not_set_is_warned_about_not_fatal() -> None:
    table, warnings = TokenTable.from_config(api(ApiToken(name="bot", token_env="BOT_TOKEN")),
                                             {})
    assert len(table) == 0
    assert warnings == ["api client 'bot': its token is not set (export BOT_TOKEN or provide"
                        " the systemd credential bot-token): it cannot connect"]
    _, none = TokenTable.from_config(api(), {})
    assert none == ["no [[api.tokens]] configured: every hello is refused"]


def test_the_local_cli_token_is_the_first_configured_variable() -> None:
    cfg = load_config(None)
    assert load_secrets(cfg, {"EXKERNEL_API_TOKEN": "t"}).api_token == "t"


def test_five_failures_within_a_minute_block_the_peer_for_a_minute() -> None:
    lim = FailureLimiter()
    for t in range(4):
        lim.failed("ip 10.0.0.1", float(t))
        assert lim.blocked_for("ip 10.0.0.1", float(t)) == 0
    lim.failed("ip 10.0.0.1", 4.0)
    assert lim.blocked_for("ip 10.0.0.1", 5.0) == 59.0
    assert lim.blocked_for("ip 10.0.0.2", 5.0) == 0  # another peer is not affected
    assert lim.blocked_for("ip 10.0.0.1", 64.0) == 0  # a minute later it may try again


def test_failures_spread_over_more_than_a_minute_do_not_block() -> None:
    lim = FailureLimiter()
    for t in range(10):
        lim.failed("uid 1000", t * 20.0)
        assert lim.blocked_for("uid 1000", t * 20.0) == 0


def test_the_limiter_remembers_a_bounded_number_of_peers() -> None:
    lim = FailureLimiter(max_peers=100)
    for i in range(1000):
        lim.failed(f"ip {i}", 0.0)
    assert len(lim._seen) == 100


def test_the_bucket_allows_bursts_then_the_rate() -> None:
    b = TokenBucket(rate=10, burst=20, now=0.0)
    assert [b.take(0.0) for _ in range(21)].count(True) == 20
    assert not b.take(0.05)
    assert b.take(0.1)  # one more per tenth of a second


@pytest.mark.parametrize(("body", "key", "says"), [
    ("[[api.tokens]]\nname = 'x'\n", "api.tokens[0]", "exactly one of token_env and"),
    ("[[api.tokens]]\nname = 'x'\ntoken_env = 'A'\ntoken_sha256 = '" + "0" * 64 + "'\n",
     "api.tokens[0]", "exactly one of token_env and"),
    ("[[api.tokens]]\nname = 'x'\ntoken_env = 'A'\n[[api.tokens]]\nname = 'x'\n"
     "token_env = 'B'\n", "api.tokens", "unique names"),
    ("[[api.tokens]]\nname = 'x'\nscopes = []\ntoken_env = 'A'\n", "api.tokens[0].scopes",
     "one or both"),
    ("[[api.tokens]]\nname = 'x'\nscopes = ['admin']\ntoken_env = 'A'\n",
     "api.tokens[0].scopes[0]", "one of 'read', 'trade'"),
    ("[[api.tokens]]\nname = 'has space'\ntoken_env = 'A'\n", "api.tokens[0].name",
     "regex"),
    ("[[api.tokens]]\nname = 'x'\ntoken_sha256 = 'abc'\n", "api.tokens[0].token_sha256",
     "regex"),
    ("[api]\ntcp = true\nhost = '0.0.0.0'\n", "api.host", "a loopback address"),
    ("[api]\ntcp = true\nhost = '0.0.0.0'\nallow_remote = true\n", "api.host",
     "tls_cert and tls_key"),
    ("[api]\ntls_cert = 'c.pem'\n", "api.tls_key", "both api.tls_cert and api.tls_key"),
    ("[api]\nmax_frame_bytes = 100\n", "api.max_frame_bytes", ">= 1024"),
    ("[api]\nrequests_per_s = 0\n", "api.requests_per_s", ">= 1"),
    ("[api]\ntoken_env = 'X'\n", "api.token_env", "unknown key"),
], ids=["no_source", "two_sources", "duplicate_names", "no_scopes", "unknown_scope",
        "bad_name", "bad_hash", "remote_host", "remote_without_tls", "cert_without_key",
        "tiny_frames", "zero_rate", "old_key"])
def test_a_bad_api_config_is_refused_naming_the_key(tmp_path: Path, body: str, key: str,
                                                     says: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert f"{path}: {key}: " in str(e.value) and says in str(e.value), str(e.value)


def test_remote_with_tls_and_loopback_names_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[api]\ntcp = true\nhost = '0.0.0.0'\nallow_remote = true\n"
                    "tls_cert = 'c.pem'\ntls_key = 'k.pem'\n")
    assert load_config(path).api.allow_remote
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        path.write_text(f"[api]\ntcp = true\nhost = '{host}'\n")
        assert load_config(path).api.host == host


def test_a_taken_api_port_exits_78_naming_it(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cfg = tmp_path / "k.toml"
        cfg.write_text(f"[kernel]\nstate_dir = '{tmp_path / 'state'}'\n[metrics]\nport = 0\n"
                       f"[api]\ntcp = true\nport = {port}\n")
        out = subprocess.run([sys.executable, "-m", "kernel.cli.main", "run", "--config",
                              str(cfg)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 78, out.stdout + out.stderr
    assert f"api.port {port} on 127.0.0.1 is not available" in out.stderr
    assert not (tmp_path / "state" / "api.sock").exists()  # what did bind was closed
