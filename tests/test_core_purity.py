"""The functional core imports no I/O, clock, randomness or shell library.

Read with `ast`, so a forbidden import anywhere in a module (inside a function, under
`TYPE_CHECKING`, in a `try`) counts, and nothing is imported to find out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = frozenset({
    "asyncio", "aiosqlite", "websockets", "ccxt", "structlog", "time", "random",
    "datetime", "sqlite3", "os", "socket",
})


def core_modules() -> list[Path]:
    """Every module at the top of `kernel/` and of `events/`: their shells (the daemon,
    the command line, the SQLite log) live in subfolders."""
    return sorted((ROOT / "events").glob("*.py")) + sorted((ROOT / "kernel").glob("*.py"))


def imported_roots(source: str) -> set[str]:
    """The top-level package of every absolute import in `source`."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and getattr(node.func, "id", getattr(node.func, "attr", None))
            in ("__import__", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            roots.add(node.args[0].value.split(".")[0])
    return roots


def test_the_core_module_list_is_complete() -> None:
    paths = core_modules()
    assert all(p.exists() for p in paths), [p for p in paths if not p.exists()]
    names = {p.relative_to(ROOT).as_posix() for p in paths}
    assert {"events/base.py", "events/facts.py", "events/control.py", "events/codec.py",
            "kernel/state.py", "kernel/reconcile.py", "kernel/ledger.py",
            "kernel/backoff.py"} <= names
    assert not any(n.startswith("events/log/") for n in names)


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_core_module_imports_nothing_impure(path: Path) -> None:
    bad = imported_roots(path.read_text(encoding="utf-8")) & FORBIDDEN
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize(
    "source",
    [
        "import time",
        "import os.path",
        "from datetime import datetime",
        "from asyncio import sleep",
        "import random as r",
        "def f():\n    import sqlite3\n",
        "if TYPE_CHECKING:\n    import structlog\n",
        "import importlib\nm = importlib.import_module('socket')\n",
        "ws = __import__('websockets')",
    ],
)
def test_the_import_reader_sees_forbidden_imports(source: str) -> None:
    assert imported_roots(source) & FORBIDDEN


@pytest.mark.parametrize(
    "source",
    ["import msgspec", "from decimal import Decimal", "from events.facts import OrderFilled",
     "from . import time", "import timeit", "from typing import Literal"],
)
def test_the_import_reader_passes_pure_imports(source: str) -> None:
    assert not imported_roots(source) & FORBIDDEN
