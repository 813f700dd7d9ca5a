"""The API protocol driven by a raw websocket client written from docs/api.md alone.

A real daemon (the sim venue, in this event loop) listening on its unix socket; the
client is `tests.api_support.Raw` (json + websockets). Every op, its errors, scopes,
tokens, abuse, intents' validation and idempotency, checked against the log itself.
"""

from __future__ import annotations

import asyncio
import json
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import unix_connect
from websockets.exceptions import ConnectionClosed

from events.control import TradingHalted
from kernel import public
from kernel.daemon import api
from kernel.daemon.hub import encode_public
from kernel.daemon.replay import load_state
from kernel.daemon.service import Daemon
from kernel.protocol import SCOPES
from kernel.snapshot import project
from tests.api_support import Raw, config, daemon, eventually, rows

LIMIT = {"intent_id": "grid-1", "strategy": "grid", "symbol": "BTCUSDT", "side": "buy",
         "order_type": "limit", "qty": "0.010", "price": "60000.0", "time_in_force": "GTC",
         "reduce_only": False, "post_only": True, "oco_group": None}
#: A request with valid fields for every op, so only the scope (or hello) can refuse it.
REQUESTS: dict[str, dict[str, Any]] = {
    "hello": {"token": "op-token"}, "get_snapshot": {}, "subscribe_snapshots": {},
    "subscribe_events": {}, "unsubscribe": {"sub": "s9"}, "list_intents": {}, "status": {},
    "place_intent": {"intent": LIMIT},
    "amend_intent": {"intent_id": "grid-1", "revision": 1, "price": "60010.0"},
    "cancel_intent": {"intent_id": "grid-1"}, "halt": {"reason": "test"},
    "resume": {"reason": "test"},
}


@pytest.fixture
async def kernel(tmp_path: Path) -> Any:
    async with daemon(tmp_path / "state") as d:
        await eventually(lambda: "BTCUSDT" in d._writer.state.instruments)  # type: ignore[union-attr]
        yield d


def sock(d: Daemon) -> Path:
    return d.api.socket_path


async def intent_rows(d: Daemon) -> list[tuple[int, str, Any]]:
    return await rows(d.api.db, "intent_placed", "intent_amended", "intent_canceled",
                      "trading_halted", "trading_resumed", "input_quarantined")


def test_every_op_has_a_request_here() -> None:
    assert set(REQUESTS) == set(SCOPES)


async def test_hello_answers_version_name_scopes_seq_and_halted(kernel: Daemon) -> None:
    async with Raw.connect(sock(kernel), token=None) as c:
        r = await c.call("hello", token="op-token", versions=[1, 7], client="raw/1")
    assert r["ok"] and r["result"]["version"] == 1 and r["result"]["name"] == "op"
    assert r["result"]["scopes"] == ["read", "trade"]
    assert r["result"]["server"].startswith("exkernel")
    assert isinstance(r["result"]["seq"], int) and r["result"]["halted"] is False


async def test_no_common_version_is_refused_and_closed(kernel: Daemon) -> None:
    async with Raw.connect(sock(kernel), token=None) as c:
        r = await c.call("hello", token="op-token", versions=[2])
        assert r["error"]["code"] == "version" and r["error"]["field"] == "versions"
        assert {"type": "bye", "reason": "version"} in await c.closed()


async def test_every_op_before_hello_is_unauthorized_and_nothing_is_logged(
    kernel: Daemon,
) -> None:
    before = await intent_rows(kernel)
    async with Raw.connect(sock(kernel), token=None) as c:
        for op, fields in REQUESTS.items():
            if op != "hello":
                r = await c.call(op, **fields)
                assert r["error"]["code"] == "unauthorized", (op, r)
    assert await intent_rows(kernel) == before


@pytest.mark.parametrize(("token", "scope"), [("ro-token", "read"), ("tr-token", "trade")])
async def test_scopes_are_enforced_on_every_op(kernel: Daemon, token: str, scope: str) -> None:
    before = await intent_rows(kernel)
    async with Raw.connect(sock(kernel), token=token) as c:
        for op, fields in REQUESTS.items():
            if op == "hello":
                continue
            r = await c.call(op, **fields)
            if SCOPES[op] == scope:
                assert r.get("error", {}).get("code") != "forbidden", (op, r)
            else:
                assert r["error"]["code"] == "forbidden" and r["error"]["field"] == "op", r
                assert f"the {SCOPES[op]!r} scope" in r["error"]["message"]
    after = await intent_rows(kernel)
    if scope == "read":
        assert after == before  # a read token logged nothing
    else:
        assert len(after) > len(before)  # the trade token's own ops went through


async def test_a_wrong_or_missing_token_is_unauthorized_and_closed(kernel: Daemon) -> None:
    async with Raw.connect(sock(kernel), token=None) as c:
        r = await c.call("hello", token="guess", versions=[1])
        assert r["error"] == {"code": "unauthorized", "message": "unknown token",
                              "field": "token"}
        assert {"type": "bye", "reason": "unauthorized"} in await c.closed()
    async with Raw.connect(sock(kernel), token=None) as c:
        r = await c.call("hello", versions=[1])
        assert r["error"]["code"] == "invalid" and r["error"]["field"] == "token"


async def test_brute_force_refuses_the_peer_even_with_the_right_token(kernel: Daemon) -> None:
    for _ in range(5):
        async with Raw.connect(sock(kernel), token=None) as c:
            assert (await c.call("hello", token="nope"))["error"]["code"] == "unauthorized"
    async with Raw.connect(sock(kernel), token=None) as c:
        r = await c.call("hello", token="op-token")
        assert r["error"]["code"] == "rate_limited", r
        assert "too many failed hellos from uid" in r["error"]["message"]
        assert {"type": "bye", "reason": "rate_limited"} in await c.closed()


async def test_no_hello_in_time_is_closed(kernel: Daemon, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.setattr(api, "HELLO_TIMEOUT_S", 0.2)
    async with Raw.connect(sock(kernel), token=None) as c:
        frames = await c.closed(timeout=5)
    assert frames[0]["error"]["code"] == "unauthorized" and "no hello" in frames[0]["error"][
        "message"]
    assert frames[-1] == {"type": "bye", "reason": "unauthorized"}


async def test_read_ops(kernel: Daemon) -> None:
    assert stat.S_IMODE(sock(kernel).stat().st_mode) == 0o660  # the daemon's user and group
    async with Raw.connect(sock(kernel)) as c:
        snap = (await c.call("get_snapshot"))["result"]["snapshot"]
        assert snap["version"] == 2 and snap["seq"] >= 1
        public.decode(json.dumps(snap))  # the public form, exactly
        status = (await c.call("status"))["result"]
        assert set(status) == {"pid", "venue", "connected", "ready", "seq", "verdict",
                               "halted", "queue", "subscribers", "started_at"}
        assert status["venue"] == "sim" and status["ready"] is True
        past = await c.call("get_snapshot", seq=1)
        assert past["result"]["snapshot"]["seq"] == 1
        far = await c.call("get_snapshot", seq=10**9)
        assert far["error"]["code"] == "not_found" and far["error"]["field"] == "seq"
        bad = await c.call("get_snapshot", seq="1")
        assert bad["error"]["code"] == "invalid" and bad["error"]["field"] == "seq"
        listed = (await c.call("list_intents", status=["PENDING"]))["result"]
        assert listed["intents"] == [] and listed["orders"] == [] and listed["seq"] >= 1
        wrong = await c.call("list_intents", status=["SLEEPING"])
        assert wrong["error"]["code"] == "invalid" and wrong["error"]["field"] == "status[0]"
        gone = await c.call("unsubscribe", sub="s1")
        assert gone["error"]["code"] == "not_found" and gone["error"]["field"] == "sub"
        kinds = await c.call("subscribe_events", kinds=["order_filled", "fills"])
        assert kinds["error"]["code"] == "invalid" and kinds["error"]["field"] == "kinds[1]"
        ahead = await c.call("subscribe_events", since=10**9)
        assert ahead["error"]["code"] == "not_found" and ahead["error"]["field"] == "since"


async def test_get_snapshot_at_a_seq_is_the_replay_of_the_log_to_it(kernel: Daemon) -> None:
    async with Raw.connect(sock(kernel)) as c:
        got = (await c.call("get_snapshot", seq=3))["result"]["snapshot"]
    from events.log import EventLog

    log = await EventLog.open(kernel.api.db, readonly=True)
    try:
        state = await load_state(log, until=3)
    finally:
        await log.close()
    want = json.loads(encode_public(project(state, kernel.cfg.reconcile), state.book))
    assert got == want


async def test_subscriptions_push_after_their_reply_and_stop_on_unsubscribe(
    kernel: Daemon,
) -> None:
    async with Raw.connect(sock(kernel)) as c:
        r = await c.call("subscribe_snapshots")
        sub, seq = r["result"]["sub"], r["result"]["seq"]
        first = await c.push()
        assert first["type"] == "snapshot" and first["sub"] == sub
        assert first["seq"] >= seq and first["skipped"] is None  # from now: the current one
        e = await c.call("subscribe_events", since=0, kinds=["instrument_defined"])
        while not (ev := [p for p in c.pushes if p["type"] == "event"]):
            c.pushes.append(await c.push())
        want = await rows(kernel.api.db, "instrument_defined")
        assert ev[0]["sub"] == e["result"]["sub"] and ev[0]["seq"] == want[0][0]
        assert ev[0]["event"]["kind"] == "instrument_defined"
        assert (await c.call("unsubscribe", sub=sub))["result"] == {"sub": sub}
        c.pushes.clear()
        await asyncio.sleep(0.6)  # marks tick every 0.25 s: snapshots would come
        await c.call("status")
        assert not [p for p in c.pushes if p.get("sub") == sub]


# -- malformed, oversized, flooding ------------------------------------------------------


async def test_malformed_frames_get_typed_errors_and_twenty_in_a_row_close(
    kernel: Daemon,
) -> None:
    async with Raw.connect(sock(kernel)) as c, Raw.connect(sock(kernel)) as bystander:
        cases: list[tuple[str | bytes, str, str | None]] = [
            ("{nope", "bad_request", None), ("[1,2]", "bad_request", None),
            ('{"op":"status"}', "bad_request", "id"), ('{"id":1}', "bad_request", "op"),
            ('{"id":true,"op":"status"}', "bad_request", "id"),
            ('{"id":1,"op":"launch"}', "unknown_op", "op"),
            ('{"id":1,"op":"status","extra":1}', "invalid", "extra"),
            ('{"id":1,"op":"place_intent","intent":{"intent_id":"x","symbol":"BTCUSDT",'
             '"side":"buy","order_type":"limit","qty":0.01,"price":"60000"}}',
             "invalid", "intent.qty"),
            (b'{"id":1,"op":"status"}', "bad_request", None),
        ]
        for frame, code, field in cases:
            await c.send(frame)
            r = await c.reply()
            assert r["ok"] is False and r["error"]["code"] == code, (frame, r)
            assert r["error"]["field"] == field, (frame, r)
        assert (await c.call("status"))["ok"]  # a good request resets the count
        for _ in range(19):
            await c.send("{nope")
            assert (await c.reply())["error"]["code"] == "bad_request"
        await c.send("{nope")
        frames = await c.closed()
        assert frames[-1] == {"type": "bye", "reason": "too_many_errors"}
        assert (await bystander.call("status"))["ok"]


async def test_an_oversized_frame_closes_1009_and_others_are_unharmed(kernel: Daemon) -> None:
    async with Raw.connect(sock(kernel)) as c, Raw.connect(sock(kernel)) as bystander:
        await c.send(json.dumps({"id": 1, "op": "halt", "reason": "x" * 70_000}))
        with pytest.raises(ConnectionClosed) as closed:
            await c.reply()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert (await bystander.call("status"))["ok"]
    assert not [e for _, _, e in await intent_rows(kernel) if isinstance(e, TradingHalted)]


async def test_a_flooding_client_is_rate_limited_then_closed_others_unharmed(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path / "s", config(requests_per_s=20)) as d, \
            Raw.connect(sock(d)) as c, Raw.connect(sock(d)) as bystander:
        for i in range(200):
            await c.send({"id": i, "op": "status"})
        frames = await c.closed()
        codes = [f.get("error", {}).get("code") for f in frames if "id" in f]
        assert codes[:39].count(None) == 39  # the burst (2 x 20, less the hello) went through
        assert "rate_limited" in codes
        assert frames[-1] == {"type": "bye", "reason": "rate_limited"}
        assert len(frames) < 200  # closed before it was all answered
        assert (await bystander.call("status"))["ok"]


async def test_too_many_connections_are_refused(tmp_path: Path) -> None:
    async with daemon(tmp_path / "s", config(max_connections=2)) as d, \
            Raw.connect(sock(d)) as a, Raw.connect(sock(d)) as b:
        async with unix_connect(str(sock(d))) as third:
            frames = [json.loads(await asyncio.wait_for(third.recv(), 5))]
            assert frames == [{"type": "bye", "reason": "too_many_connections"}]
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(third.recv(), 5)
        assert (await a.call("status"))["ok"] and (await b.call("status"))["ok"]


# -- intents ---------------------------------------------------------------------------


def intent(**kw: Any) -> dict[str, Any]:
    return {**LIMIT, **kw}


@pytest.mark.parametrize(("spec", "code", "field", "says"), [
    (intent(order_type="market"), "invalid", "intent.price", "must be absent"),
    (intent(price=None), "invalid", "intent.price", "is required"),
    (intent(qty="0"), "invalid", "intent.qty", "must be > 0"),
    (intent(qty="NaN"), "invalid", "intent.qty", "expected a decimal in a string"),
    (intent(qty="1e-19"), "invalid", "intent.qty", "more than 18 decimals"),
    (intent(intent_id=""), "invalid", "intent.intent_id", "identifier"),
    (intent(side="long"), "invalid", "intent.side", ""),
    (intent(colour="red"), "invalid", "intent.colour", "unknown field"),
    (intent(price="60000.05"), "rejected", "intent.price", "tick size 0.1"),
    (intent(qty="0.0105"), "rejected", "intent.qty", "lot size 0.001"),
    (intent(symbol="DOGEUSDT"), "rejected", "intent.symbol", "unknown symbol"),
    (intent(qty="0.001", price="100.0"), "rejected", "intent.qty", "minimum"),
], ids=["price_on_market", "no_price_on_limit", "zero_qty", "nan_qty", "tiny_qty", "empty_id",
        "bad_side", "unknown_field", "off_tick", "off_lot", "unknown_symbol", "min_notional"])
async def test_an_invalid_intent_is_refused_naming_the_field_and_nothing_is_logged(
    kernel: Daemon, spec: dict[str, Any], code: str, field: str, says: str,
) -> None:
    before = await intent_rows(kernel)
    async with Raw.connect(sock(kernel)) as c:
        r = await c.call("place_intent", intent=spec)
    assert r["ok"] is False and r["error"]["code"] == code and r["error"]["field"] == field, r
    assert says in r["error"]["message"]
    assert await intent_rows(kernel) == before


async def test_placing_is_idempotent_and_a_changed_body_conflicts(kernel: Daemon) -> None:
    async with Raw.connect(sock(kernel)) as c, Raw.connect(sock(kernel)) as other:
        first = await c.call("place_intent", intent=LIMIT)
        assert first["ok"] and first["result"]["duplicate"] is False
        seq = first["result"]["seq"]
        again = await other.call("place_intent", intent=LIMIT)  # another client, same body
        assert again["result"] == {"seq": seq, "duplicate": True}
        changed = await c.call("place_intent", intent=intent(price="60001.0"))
        assert changed["error"]["code"] == "conflict"
        assert changed["error"]["field"] == "intent.price" and f"seq {seq}" in changed[
            "error"]["message"]
        listed = (await c.call("list_intents"))["result"]["intents"]
        assert [(i["intent_id"], i["price"], i["status"]) for i in listed] == [
            ("grid-1", "60000.0", "PENDING")]
    logged = await intent_rows(kernel)
    assert [(s, k) for s, k, _ in logged] == [(seq, "intent_placed")]


async def test_concurrent_identical_placements_log_one(kernel: Daemon) -> None:
    clients = [Raw.connect(sock(kernel)) for _ in range(5)]
    entered = [await cm.__aenter__() for cm in clients]
    try:
        replies = await asyncio.gather(*(c.call("place_intent", intent=LIMIT) for c in entered))
    finally:
        for cm in clients:
            await cm.__aexit__(None, None, None)
    assert len({r["result"]["seq"] for r in replies}) == 1
    assert sorted(r["result"]["duplicate"] for r in replies) == [False] + [True] * 4
    assert len(await intent_rows(kernel)) == 1


async def test_amend_and_cancel(kernel: Daemon) -> None:
    async with Raw.connect(sock(kernel)) as c:
        await c.call("place_intent", intent=LIMIT)
        a1 = await c.call("amend_intent", intent_id="grid-1", revision=1, price="60010.0")
        assert a1["ok"] and set(a1["result"]) == {"seq"}
        same = await c.call("amend_intent", intent_id="grid-1", revision=1, price="60010.0")
        assert same["result"] == {"seq": a1["result"]["seq"], "duplicate": True}
        other = await c.call("amend_intent", intent_id="grid-1", revision=1, price="60020.0")
        assert other["error"]["code"] == "conflict"
        skip = await c.call("amend_intent", intent_id="grid-1", revision=3, price="60020.0")
        assert skip["error"]["code"] == "conflict" and skip["error"]["field"] == "revision"
        assert "the next amendment is revision 2" in skip["error"]["message"]
        tick = await c.call("amend_intent", intent_id="grid-1", revision=2, price="60020.05")
        assert tick["error"]["code"] == "rejected" and tick["error"]["field"] == "price"
        trig = await c.call("amend_intent", intent_id="grid-1", revision=2,
                            trigger_price="59000.0")
        assert trig["error"]["code"] == "invalid" and trig["error"]["field"] == "trigger_price"
        nothing = await c.call("amend_intent", intent_id="grid-1", revision=2)
        assert nothing["error"]["code"] == "invalid" and nothing["error"]["field"] == "qty"
        unknown = await c.call("amend_intent", intent_id="grid-9", revision=1, qty="0.02")
        assert unknown["error"]["code"] == "not_found"
        cancel = await c.call("cancel_intent", intent_id="grid-1")
        assert cancel["ok"] and set(cancel["result"]) == {"seq"}
        twice = await c.call("cancel_intent", intent_id="grid-1")
        assert twice["result"] == {"seq": cancel["result"]["seq"], "duplicate": True}
        late = await c.call("amend_intent", intent_id="grid-1", revision=2, qty="0.02")
        assert late["error"]["code"] == "rejected" and "no longer" in late["error"]["message"]
        ghost = await c.call("cancel_intent", intent_id="grid-9")
        assert ghost["error"]["code"] == "not_found"
        listed = (await c.call("list_intents"))["result"]["intents"]
        assert [(i["revision"], i["price"], i["status"]) for i in listed] == [
            (1, "60010.0", "CANCELED")]
    kinds = [k for _, k, _ in await intent_rows(kernel)]
    assert kinds == ["intent_placed", "intent_amended", "intent_canceled"]


async def test_halt_refuses_new_and_amended_intents_but_not_cancels(kernel: Daemon) -> None:
    async with Raw.connect(sock(kernel)) as c:
        await c.call("place_intent", intent=LIMIT)
        h = await c.call("halt", reason="manual: venue maintenance")
        assert h["ok"] and set(h["result"]) == {"seq"}
        assert (await c.call("status"))["result"]["halted"] is True
        new = await c.call("place_intent", intent=intent(intent_id="grid-2"))
        assert new["error"]["code"] == "halted" and "halted" in new["error"]["message"]
        amend = await c.call("amend_intent", intent_id="grid-1", revision=1, qty="0.02")
        assert amend["error"]["code"] == "halted"
        assert (await c.call("cancel_intent", intent_id="grid-1"))["ok"]
        empty = await c.call("resume", reason=" ")
        assert empty["error"]["code"] == "invalid" and empty["error"]["field"] == "reason"
        assert (await c.call("resume", reason="maintenance over"))["ok"]
        assert (await c.call("place_intent", intent=intent(intent_id="grid-2")))["ok"]
    logged = await intent_rows(kernel)
    assert [k for _, k, _ in logged] == ["intent_placed", "trading_halted", "intent_canceled",
                                         "trading_resumed", "intent_placed"]
    assert {e.by for _, k, e in logged if k.startswith("trading_")} == {"op"}


async def test_a_snapshot_subscription_without_the_book_gets_its_locks_not_its_intents(
        kernel: Daemon) -> None:
    async with Raw.connect(sock(kernel)) as full, Raw.connect(sock(kernel)) as bare:
        await full.call("place_intent", intent=LIMIT)
        await full.call("subscribe_snapshots")
        await bare.call("subscribe_snapshots", book=False)
        got = [await c.push() for c in (full, bare)]
    with_book, without = (g["snapshot"] for g in got)
    assert [i["intent_id"] for i in with_book["intents"]] == ["grid-1"]
    assert without["intents"] == [] and without["orders"] == []
    locked = {a: v["locked"] for a, v in without["k"]["assets"].items()}
    assert locked == {a: v["locked"] for a, v in with_book["k"]["assets"].items()}
    assert any(Decimal(v) > 0 for v in locked.values())  # the intent's lock is counted
