"""docs/api.md's examples are the protocol: each request decodes with kernel.protocol, each
reply decodes as a Reply, each push is one of the documented pushes, and every op has
an example."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec

from kernel import protocol
from kernel.protocol import Reply, decode_request

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
PUSHES = {"snapshot": {"type", "sub", "seq", "skipped", "snapshot"},
          "event": {"type", "sub", "seq", "event"}, "bye": {"type", "reason"}}


def examples() -> list[dict[str, Any]]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return [json.loads(b) for b in blocks]


def within(part: Any, whole: Any) -> bool:
    """`part` is `whole` with some object keys left out (defaults the example omits)."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            k in whole and within(v, whole[k]) for k, v in part.items())
    return bool(part == whole)


def test_the_doc_has_json_examples() -> None:
    assert len(examples()) >= 20


def test_every_request_example_decodes_and_every_op_has_one() -> None:
    ops = set()
    for ex in examples():
        if "op" in ex:
            request = decode_request(json.dumps(ex))
            ops.add(request.__struct_config__.tag)
            back = json.loads(protocol.encode(msgspec.to_builtins(request)))
            assert within(ex, back), (ex, back)  # nothing lost or changed
    assert ops == protocol.OPS


def test_every_reply_example_decodes_as_a_reply() -> None:
    replies = [ex for ex in examples() if "ok" in ex]
    assert replies
    for ex in replies:
        reply = msgspec.json.decode(json.dumps(ex), type=Reply)
        assert (reply.result is not None) == reply.ok and (reply.error is not None) != reply.ok
        # and the server writes it in the same shape: no null result or error
        assert json.loads(protocol.encode(reply)) == {
            **ex, **({"error": {"field": None, **ex["error"]}} if "error" in ex else {})}


def test_every_push_example_is_a_documented_push() -> None:
    pushes = [ex for ex in examples() if "type" in ex]
    assert {p["type"] for p in pushes} == set(PUSHES)
    for p in pushes:
        assert set(p) == PUSHES[p["type"]], p
