"""systemd/*.service: verified by systemd itself, hardened to an exposure <= 2.0, and
agreeing with the code on exit statuses (not restarted: config, credentials, a locked
log) and credential names.

The systemd-analyze tests need systemd >= 250 (`security --offline`); they are skipped
where it is missing. `verify` checks that ExecStart= is executable, so it runs on a copy
whose ExecStart= points at this checkout's `exkernel` (or the interpreter) instead of
/usr/local/bin/exkernel; nothing else in the copy differs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kernel.daemon.config import (
    EXIT_CONFIG,
    EXIT_CREDENTIALS,
    EXIT_LOCKED,
    ApiConfig,
    Credentials,
    credential_name,
)

ROOT = Path(__file__).resolve().parent.parent
UNITS = {"exkernel.service": "exkernel.service", "exkernel@.service": "exkernel@acct1.service"}
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed"
                                   " (apt-get install systemd)")
MAX_EXPOSURE = 2.0


def settings(unit: str) -> list[tuple[str, str]]:
    """(key, value) of every assignment in the [Service] section, repeats kept."""
    out, section = [], ""
    for line in (ROOT / "systemd" / unit).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out.append((key, value))
    return out


def value(unit: str, key: str) -> str:
    values = [v for k, v in settings(unit) if k == key]
    assert len(values) == 1, f"{unit}: {key} set {len(values)} times"
    return values[0]


def exposure(output: str) -> float:
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert m, output
    return float(m[1])


def test_the_exposure_parser() -> None:
    assert exposure("→ Overall exposure level for exkernel.service: 1.1 OK 🙂") == 1.1
    assert exposure("Overall exposure level for x@y.service: 9.6 UNSAFE 😨\n") == 9.6


@needs_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_systemd_analyze_security_exposure_is_at_most_2(unit: str) -> None:
    assert ANALYZE is not None
    run = subprocess.run([ANALYZE, "security", "--offline=true", str(ROOT / "systemd" / unit)],
                         capture_output=True, text=True, timeout=60)
    if "--offline" in run.stderr and "unrecognized" in run.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    score = exposure(run.stdout)
    assert score <= MAX_EXPOSURE, run.stdout


@needs_analyze
@pytest.mark.parametrize(("unit", "instance"), UNITS.items())
def test_systemd_analyze_verify_is_clean(tmp_path: Path, unit: str, instance: str) -> None:
    assert ANALYZE is not None
    exe = shutil.which("exkernel", path=str(Path(sys.executable).parent)) or sys.executable
    text = (ROOT / "systemd" / unit).read_text(encoding="utf-8")
    assert "ExecStart=/usr/local/bin/exkernel " in text
    copy = tmp_path / instance
    copy.write_text(text.replace("/usr/local/bin/exkernel", exe), encoding="utf-8")
    run = subprocess.run([ANALYZE, "verify", "--man=no", str(copy)],
                         capture_output=True, text=True, timeout=60)
    ours = [line for line in (run.stdout + run.stderr).splitlines()
            if "exkernel" in line or str(tmp_path) in line]
    assert run.returncode == 0 and not ours, run.stdout + run.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_the_units_say_what_the_daemon_expects(unit: str) -> None:
    assert value(unit, "Type") == "notify"
    assert value(unit, "NotifyAccess") == "main"
    assert value(unit, "WatchdogSec") == "30"
    assert value(unit, "Restart") == "on-failure"
    assert value(unit, "TimeoutStopSec") == "15"
    # Restarting helps none of these: a wrong config, rejected keys, or another writer
    # that holds the log (it would still hold it 2 s later).
    assert set(value(unit, "RestartPreventExitStatus").split()) == {
        str(EXIT_CONFIG), str(EXIT_CREDENTIALS), str(EXIT_LOCKED)}
    assert set(value(unit, "RestrictAddressFamilies").split()) == {
        "AF_INET", "AF_INET6", "AF_UNIX"}
    keys = {k for k, _ in settings(unit)}
    assert not keys & {"IPAddressDeny", "IPAddressAllow", "PrivateNetwork"}  # venue is remote
    assert value(unit, "DynamicUser") == "yes"
    assert value(unit, "UMask") == "0077"


@pytest.mark.parametrize("unit", UNITS)
def test_credentials_are_loaded_under_the_names_load_secrets_reads(unit: str) -> None:
    loaded = {v.split(":", 1)[0] for k, v in settings(unit) if k == "LoadCredential"}
    creds = Credentials()
    token_env = ApiConfig().tokens[0].token_env
    assert token_env is not None
    assert loaded == {credential_name(creds.api_key_env), credential_name(creds.api_secret_env),
                      credential_name(token_env)}
    assert not any(k == "Environment" and ("KEY=" in v or "SECRET=" in v)
                   for k, v in settings(unit))
    assert credential_name(token_env) == "exkernel-api-token"


def test_the_template_gives_each_account_its_config_state_and_credentials() -> None:
    unit = "exkernel@.service"
    assert value(unit, "ExecStart").endswith("run --config /etc/exkernel/%i.toml")
    assert value(unit, "StateDirectory") == "exkernel/%i"
    assert all("/credentials/%i/" in v for k, v in settings(unit) if k == "LoadCredential")
    assert value("exkernel.service", "ExecStart") == (
        "/usr/local/bin/exkernel run --config /etc/exkernel/exkernel.toml")
    assert value("exkernel.service", "StateDirectory") == "exkernel"
