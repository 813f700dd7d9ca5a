"""The lock file and pyproject.toml agree, so `dev.py` installs what was tested.

pyproject.toml states minimums for library users; requirements.lock pins, with hashes, the
exact versions that `python3 dev.py run|test` install. These tests read both files (no
network) and fail when someone adds or raises a dependency without re-locking.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"

_PIN = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)"
    r"(?P<hashes>(?:\s+--hash=sha256:[0-9a-f]{64})*)"
)


class Pin(NamedTuple):
    version: str
    hashes: tuple[str, ...]


def read_lock(text: str) -> dict[str, Pin]:
    """Pins by canonical name; any line that is not a hashed `name==version` pin raises."""
    pins: dict[str, Pin] = {}
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _PIN.fullmatch(line)
        if m is None:
            raise ValueError(f"requirements.lock: not a name==version pin with hashes: {line!r}")
        hashes = tuple(re.findall(r"sha256:([0-9a-f]{64})", m["hashes"]))
        pins[canonicalize_name(m["name"])] = Pin(m["version"], hashes)
    return pins


def declared(pyproject: dict[str, Any]) -> list[tuple[str, Requirement]]:
    """(where, requirement) for every dependency pyproject names, build backend included."""
    project = pyproject["project"]
    found = [("dependencies", Requirement(r)) for r in project.get("dependencies", [])]
    for extra, reqs in project.get("optional-dependencies", {}).items():
        found += [(f"extra {extra}", Requirement(r)) for r in reqs]
    found += [("build-system", Requirement(r)) for r in pyproject["build-system"]["requires"]]
    return found


def lock_problems(pyproject: dict[str, Any], pins: dict[str, Pin]) -> list[str]:
    """What keeps the lock from covering pyproject: a missing, unhashed or too-old pin."""
    problems = []
    for where, req in declared(pyproject):
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req.name} ({where}) is not in requirements.lock")
        elif not pin.hashes:
            problems.append(f"{req.name}=={pin.version} has no sha256 hash in the lock")
        elif not req.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{req.name} ({where}) wants {req.specifier}, the lock has "
                            f"{pin.version}")
    return problems


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


@pytest.fixture(scope="module")
def pins() -> dict[str, Pin]:
    return read_lock(LOCK.read_text())


def test_lock_pins_every_declared_dependency_with_a_hash_and_within_its_minimum(
    pyproject: dict[str, Any], pins: dict[str, Pin]
) -> None:
    assert lock_problems(pyproject, pins) == []


def test_every_locked_distribution_is_exact_and_hashed(pins: dict[str, Pin]) -> None:
    # read_lock already refused anything but name==version pins; pip's --require-hashes
    # would refuse a pin without a hash on a fresh machine, so catch it here first.
    assert len(pins) > 20  # the runtime, dev and bench closure, not an empty parse
    assert [name for name, pin in pins.items() if not pin.hashes] == []


def test_lock_names_no_index_or_local_path() -> None:
    # A machine's own mirror or wheel folder in the lock would break everyone else's install.
    options = [line for line in LOCK.read_text().splitlines()
               if line.startswith("-") or "file://" in line]
    assert options == []


def test_pyproject_states_minimums_for_library_users(pyproject: dict[str, Any]) -> None:
    exact_or_capped = [f"{where}: {req}" for where, req in declared(pyproject)
                       if not req.specifier or any(s.operator != ">=" for s in req.specifier)]
    assert exact_or_capped == []


def test_a_dependency_added_without_relocking_is_named(
    pyproject: dict[str, Any], pins: dict[str, Pin]
) -> None:
    grown = {**pyproject, "project": {**pyproject["project"]}}
    grown["project"]["dependencies"] = [*pyproject["project"]["dependencies"], "orjsonx>=1"]
    assert lock_problems(grown, pins) == ["orjsonx (dependencies) is not in requirements.lock"]


def test_a_minimum_raised_past_the_lock_is_named(
    pyproject: dict[str, Any], pins: dict[str, Pin]
) -> None:
    raised = {**pyproject, "project": {**pyproject["project"]}}
    raised["project"]["dependencies"] = [
        "msgspec>=999" if Requirement(r).name == "msgspec" else r
        for r in pyproject["project"]["dependencies"]]
    assert lock_problems(raised, pins) == [
        f"msgspec (dependencies) wants >=999, the lock has {pins['msgspec'].version}"]


def test_an_unhashed_or_unpinned_lock_line_is_refused() -> None:
    assert read_lock("ccxt==4.5.90 \\\n    --hash=sha256:" + "a" * 64 + "\n")["ccxt"].hashes
    assert read_lock("ccxt==4.5.90\n")["ccxt"].hashes == ()
    with pytest.raises(ValueError, match="not a name==version pin"):
        read_lock("ccxt>=4.4\n")
    with pytest.raises(ValueError, match="not a name==version pin"):
        read_lock("--extra-index-url https://example.invalid/simple\n")


def _load_dev() -> Any:
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("changed", ["requirements.lock", "pyproject.toml"])
def test_dev_py_reinstalls_when_the_lock_or_pyproject_changes(
    tmp_path: Path, changed: str
) -> None:
    dev = _load_dev()
    for name in ("requirements.lock", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    before = dev.fingerprint(tmp_path)
    with (tmp_path / changed).open("a") as f:
        f.write("\n")
    assert dev.fingerprint(tmp_path) != before


@pytest.mark.skipif(os.environ.get("EXKERNEL_UNLOCKED") == "1",
                    reason="dev.py test --latest: newest releases, not the lock, by design")
def test_the_environment_under_test_holds_the_locked_versions(pins: dict[str, Pin]) -> None:
    # What the tests ran on is what the lock says; drift means a hand install into .venv
    # (rm .venv/.installed and rerun dev.py to put the lock back).
    drift = {}
    for name, pin in pins.items():
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            have = "missing"
        if have != pin.version:
            drift[name] = f"{have}, lock has {pin.version}"
    assert drift == {}, f"{sys.prefix} differs from requirements.lock"
