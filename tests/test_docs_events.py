"""docs/events.md stays true to the schema: every example decodes, every kind has one.

Convention: each kind's section is a heading whose text is the kind in backticks,
e.g. ``### `order_filled` ``; the ```json blocks below it, up to the next heading,
belong to it and hold one event on one line. ```jsonl blocks (the ingest example)
hold one event per line and may show any kind.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from pathlib import Path

import pytest

from events.codec import KINDS, decode, encode
from events.control import InputQuarantined

DOC = Path(__file__).resolve().parent.parent / "docs" / "events.md"
HEADING = re.compile(r"^#{1,6}\s+(.*)$")
KIND_HEADING = re.compile(r"^`([a-z_]+)`$")
FENCE = re.compile(r"^```(\S*)\s*$")


def _blocks() -> list[tuple[str | None, str, int, str]]:
    """(section kind or None, fence language, line number, block text) for every fence."""
    out: list[tuple[str | None, str, int, str]] = []
    section: str | None = None
    lines = DOC.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence:
            start, lang, body = i + 1, fence.group(1), []
            i += 1
            while i < len(lines) and not FENCE.match(lines[i]):
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise AssertionError(f"docs/events.md:{start}: unclosed ``` fence")
            out.append((section, lang, start, "\n".join(body)))
        elif heading := HEADING.match(lines[i]):
            m = KIND_HEADING.match(heading.group(1).strip())
            section = m.group(1) if m else None
        i += 1
    return out


BLOCKS = _blocks()
JSON_BLOCKS = [b for b in BLOCKS if b[1] == "json"]
JSONL_LINES = [
    (start + n, line)
    for _, lang, start, text in BLOCKS
    if lang == "jsonl"
    for n, line in enumerate(text.splitlines())
    if line.strip()
]


def test_doc_has_json_examples() -> None:
    assert len(JSON_BLOCKS) >= len(KINDS)


@pytest.mark.parametrize(
    ("section", "text"),
    [(s, t) for s, _, _, t in JSON_BLOCKS],
    ids=[f"{s or 'intro'}@line{n}" for s, _, n, _ in JSON_BLOCKS],
)
def test_json_example_decodes_and_matches_its_section(section: str | None, text: str) -> None:
    assert section is not None, "a ```json example must sit under a `kind` heading"
    assert "\n" not in text.strip(), "an example is one event on one line"
    event = decode(text)
    assert type(event).__struct_config__.tag == section
    assert decode(encode(event)) == event


@pytest.mark.parametrize(
    "line", [t for _, t in JSONL_LINES], ids=[f"line{n}" for n, _ in JSONL_LINES]
)
def test_jsonl_example_line_decodes(line: str) -> None:
    decode(line)


def test_every_kind_has_exactly_one_section_with_one_example() -> None:
    per_kind: dict[str, int] = {}
    for section, _, _, _ in JSON_BLOCKS:
        if section is not None:
            per_kind[section] = per_kind.get(section, 0) + 1
    assert set(per_kind) == set(KINDS), (
        f"no example: {sorted(set(KINDS) - set(per_kind))}; "
        f"not a kind: {sorted(set(per_kind) - set(KINDS))}"
    )
    assert {k: n for k, n in per_kind.items() if n != 1} == {}


def test_quarantine_example_describes_its_raw() -> None:
    """The documented example is a consistent quarantine record, not just a decodable one."""
    [text] = [t for s, _, _, t in JSON_BLOCKS if s == "input_quarantined"]
    event = decode(text)
    assert isinstance(event, InputQuarantined)
    raw = event.raw.encode("utf-8")
    assert event.raw_len == len(raw)
    assert event.raw_sha256 == hashlib.sha256(raw).hexdigest()


def test_every_documented_dedup_key_formula_matches_the_example() -> None:
    """Each section's `Dedup key: ...` formula, filled from its example, is the event's key."""
    text = DOC.read_text(encoding="utf-8")
    formulas = dict(
        re.findall(r"^### `([a-z_]+)`$.*?^Dedup key: `([^`]+)`", text, re.M | re.S)
    )
    assert set(formulas) == set(KINDS)
    for section, _, _, block in JSON_BLOCKS:
        event = decode(block)
        assert section is not None
        expected = formulas[section]
        for name in re.findall(r"\{(\w+)\}", expected):
            expected = expected.replace(f"{{{name}}}", _part(getattr(event, name)))
        assert event.dedup_key == expected, section


def _part(value: object) -> str:
    """A key part as docs/events.md describes it: canonical Decimals, `%` and `:` escaped."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value).replace("%", "%25").replace(":", "%3A")
