"""kernel.client.Client against a real daemon subprocess (embedded sim venue): the
session, both subscriptions, intents that return once logged, and a typed error for each
code the server answers with."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from events.codec import decode_logged, encode
from events.log import EventLog
from events.orders import IntentCanceled, IntentPlaced
from kernel.client import (
    ApiError,
    Client,
    Conflict,
    Forbidden,
    Halted,
    Invalid,
    NotFound,
    RateLimited,
    Rejected,
    RequestTimeout,
    TooLarge,
    Unauthorized,
    UnknownOp,
    Unreachable,
    VersionMismatch,
)
from kernel.client.client import decimal
from kernel.public import PublicSnapshot
from tests.client_support import READ, TRADE, Daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("client")).start()
    try:
        yield d
    finally:
        assert d.stop() == 0


@pytest.fixture
async def client(daemon: Daemon) -> AsyncIterator[Client]:
    async with Client.connect(unix_path=daemon.socket, token=TRADE) as c:
        yield c


async def logged(db: Path, kinds: tuple[str, ...] = ()) -> list[tuple[int, bytes]]:
    log = await EventLog.open(db, readonly=True)
    try:
        return [(r.seq, r.payload) async for r in log.rows(kinds=kinds)]
    finally:
        await log.close()


def spec(intent_id: str, **kw: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "intent_id": intent_id, "strategy": "test", "symbol": "BTCUSDT", "side": "buy",
        "order_type": "limit", "qty": "0.010", "price": "50000.0", "post_only": True}
    fields.update(kw)
    return fields


# -- without a daemon ---------------------------------------------------------------------


def test_a_float_is_refused_and_decimals_keep_their_digits() -> None:
    with pytest.raises(TypeError, match="qty must be a Decimal"):
        decimal("qty", 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="price must be finite"):
        decimal("price", Decimal("NaN"))
    assert decimal("qty", Decimal("0.010")) == "0.010"
    assert decimal("qty", "0.010") == "0.010"
    assert decimal("qty", 3) == "3"


async def test_no_daemon_is_unreachable_naming_the_socket(tmp_path: Path) -> None:
    with pytest.raises(Unreachable, match="does not exist") as e:
        await Client.connect(unix_path=tmp_path / "api.sock", token=TRADE)
    assert str(tmp_path / "api.sock") in str(e.value)


# -- the session ----------------------------------------------------------------------------


async def test_hello_names_the_client_and_its_scopes(client: Client, daemon: Daemon) -> None:
    assert client.session is not None
    assert client.session.version == 1
    assert client.session.name == "strategy"
    assert set(client.session.scopes) == {"read", "trade"}
    status = await client.status()
    assert status.pid == daemon.pid and status.venue == "sim"
    assert status.seq >= client.session.seq


async def test_a_wrong_token_is_unauthorized(daemon: Daemon) -> None:
    with pytest.raises(Unauthorized) as e:
        await Client.connect(unix_path=daemon.socket, token="not-a-token")
    assert e.value.code == "unauthorized"


async def test_no_common_version_is_refused(daemon: Daemon) -> None:
    with pytest.raises(VersionMismatch) as e:
        await Client.connect(unix_path=daemon.socket, token=TRADE, versions=[99])
    assert e.value.code == "version"


# -- subscriptions --------------------------------------------------------------------------


async def test_events_from_genesis_are_the_log_in_order_each_once(
    client: Client, daemon: Daemon
) -> None:
    got: list[tuple[int, bytes]] = []
    stream = client.events(since=0)
    async with asyncio.timeout(30):
        async for seq, event in stream:
            got.append((seq, encode(event)))
            if len(got) >= 60:
                break
    await stream.aclose()
    assert [s for s, _ in got] == list(range(1, 61))
    assert got == (await logged(daemon.db))[:60]  # the very events, byte for byte


async def test_events_filtered_by_kind_skip_the_others(client: Client, daemon: Daemon) -> None:
    kinds = ("balance_reported", "order_filled")
    stream = client.events(kinds=kinds, since=0)
    seqs: list[int] = []
    async with asyncio.timeout(30):
        async for seq, event in stream:
            assert type(event).__struct_config__.tag in kinds
            seqs.append(seq)
            if len(seqs) >= 5:
                break
    await stream.aclose()
    assert seqs == [s for s, _ in await logged(daemon.db, kinds)][:5]


async def test_snapshots_increase_and_say_what_they_skipped(client: Client) -> None:
    stream = client.snapshots()
    snaps: list[tuple[PublicSnapshot, tuple[int, int] | None]] = []
    async with asyncio.timeout(30):
        async for snap in stream:
            snaps.append((snap, stream.skipped))
            if len(snaps) == 1:
                await asyncio.sleep(0.5)  # a slow reader: the next one conflates
            if len(snaps) >= 4:
                break
    await stream.aclose()
    assert client.session is not None and snaps[0][0].seq >= client.session.seq
    assert snaps[0][1] is None  # the current snapshot first: nothing skipped before it
    for (before, _), (after, skipped) in itertools.pairwise(snaps):
        assert after.seq > before.seq
        expected = (before.seq + 1, after.seq - 1) if after.seq > before.seq + 1 else None
        assert skipped == expected
    assert snaps[1][1] is not None, "half a second of a busy sim conflated nothing"


async def test_a_snapshot_from_a_seq_starts_after_it(client: Client) -> None:
    stream = client.snapshots(from_seq=3)
    async with asyncio.timeout(30):
        first = await anext(stream)
    await stream.aclose()
    assert first.seq > 3
    assert stream.skipped == ((4, first.seq - 1) if first.seq > 4 else None)


async def test_get_snapshot_at_a_seq_and_past_the_log(client: Client) -> None:
    snap = await client.get_snapshot(seq=5)
    assert snap.seq == 5 and snap.version == 2
    now = await client.get_snapshot()
    assert now.seq >= 5
    with pytest.raises(NotFound) as e:
        await client.get_snapshot(seq=now.seq + 10_000_000)
    assert e.value.code == "not_found"


# -- intents --------------------------------------------------------------------------------


async def test_an_intent_returns_once_logged_and_a_repeat_is_a_duplicate(
    client: Client, daemon: Daemon
) -> None:
    first = await client.place_intent(**spec("c-dup"))  # type: ignore[arg-type]
    rows = dict(await logged(daemon.db, ("intent_placed",)))
    assert first.seq in rows and not first.duplicate  # committed before the reply
    event = decode_logged(rows[first.seq])
    assert isinstance(event, IntentPlaced) and event.intent_id == "c-dup"
    assert event.qty == Decimal("0.010") and event.strategy == "test" and event.post_only
    again = await client.place_intent(**spec("c-dup"))  # type: ignore[arg-type]
    assert again.seq == first.seq and again.duplicate
    with pytest.raises(Conflict) as e:
        await client.place_intent(**spec("c-dup", price="50001.0"))  # type: ignore[arg-type]
    assert e.value.code == "conflict"
    listed = await client.list_intents()
    assert [i.intent_id for i in listed.intents].count("c-dup") == 1
    placed = [decode_logged(p) for _, p in await logged(daemon.db, ("intent_placed",))]
    assert [i.intent_id for i in placed if isinstance(i, IntentPlaced)].count("c-dup") == 1


async def test_amend_needs_the_next_revision_and_cancel_repeats_as_a_duplicate(
    client: Client, daemon: Daemon
) -> None:
    await client.place_intent(**spec("c-amend"))  # type: ignore[arg-type]
    amended = await client.amend_intent("c-amend", 1, price="50010.0")
    with pytest.raises(Conflict) as e:
        await client.amend_intent("c-amend", 1, price="50020.0")  # revision 1 is taken
    assert e.value.code == "conflict"
    listed = await client.list_intents()
    [intent] = [i for i in listed.intents if i.intent_id == "c-amend"]
    assert intent.revision == 1 and intent.price == Decimal("50010.0")
    assert listed.seq >= amended.seq
    canceled = await client.cancel_intent("c-amend")
    again = await client.cancel_intent("c-amend")
    assert again.duplicate and again.seq == canceled.seq
    rows = dict(await logged(daemon.db, ("intent_canceled",)))
    assert isinstance(decode_logged(rows[canceled.seq]), IntentCanceled)
    with pytest.raises(NotFound) as nf:
        await client.cancel_intent("c-never-placed")
    assert nf.value.code == "not_found"


@pytest.mark.parametrize(("fields", "error", "where"), [
    ({"price": "50000.05"}, Rejected, "price"),  # off the 0.1 tick
    ({"qty": "0.0105"}, Rejected, "qty"),  # off the 0.001 lot
    ({"symbol": "NOPEUSDT"}, Rejected, "symbol"),
    ({"qty": "1_000"}, Invalid, "qty"),  # not a plain decimal
    ({"side": "up"}, Invalid, "side"),
    ({"order_type": "market", "price": "50000.0"}, Invalid, "price"),  # a market has none
])
async def test_a_bad_intent_gets_a_typed_error_naming_the_field_and_nothing_is_logged(
    client: Client, daemon: Daemon, fields: dict[str, object], error: type[ApiError],
    where: str,
) -> None:
    intent_id = f"c-bad-{len(fields)}-{sorted(fields)[0]}-{abs(hash(str(fields)))}"
    with pytest.raises(error) as e:
        await client.place_intent(**spec(intent_id, **fields))  # type: ignore[arg-type]
    assert e.value.code == error.code
    assert e.value.field is not None and e.value.field.endswith(where), e.value
    assert e.value.message
    placed = [decode_logged(p) for _, p in await logged(daemon.db, ("intent_placed",))]
    assert intent_id not in {i.intent_id for i in placed if isinstance(i, IntentPlaced)}


async def test_a_read_only_token_is_forbidden_to_trade_and_nothing_happens(
    daemon: Daemon,
) -> None:
    async with Client.connect(unix_path=daemon.socket, token=READ) as reader:
        assert reader.session is not None and reader.session.scopes == ("read",)
        assert (await reader.status()).pid == daemon.pid  # reading is allowed
        for call in (reader.place_intent(**spec("c-forbidden")),  # type: ignore[arg-type]
                     reader.cancel_intent("c-forbidden"), reader.halt("no"),
                     reader.resume("no"), reader.amend_intent("c-forbidden", 1, qty="1")):
            with pytest.raises(Forbidden) as e:
                await call
            assert e.value.code == "forbidden"
    placed = [decode_logged(p) for _, p in await logged(daemon.db, ("intent_placed",))]
    assert "c-forbidden" not in {i.intent_id for i in placed if isinstance(i, IntentPlaced)}
    assert await logged(daemon.db, ("trading_halted",)) == []


async def test_while_halted_new_intents_are_refused_and_cancels_go_through(
    client: Client,
) -> None:
    await client.place_intent(**spec("c-before-halt"))  # type: ignore[arg-type]
    halt = await client.halt("test: maintenance")
    try:
        assert (await client.status()).halted
        assert (await client.get_snapshot()).halted
        with pytest.raises(Halted) as e:
            await client.place_intent(**spec("c-during-halt"))  # type: ignore[arg-type]
        assert e.value.code == "halted"
        with pytest.raises(Halted):
            await client.amend_intent("c-before-halt", 1, price="50010.0")
        canceled = await client.cancel_intent("c-before-halt")
        assert canceled.seq > halt.seq
    finally:
        resumed = await client.resume("test: maintenance over")
    assert resumed.seq > halt.seq and not (await client.status()).halted


async def test_an_unknown_op_and_an_oversized_request_get_their_errors(client: Client) -> None:
    with pytest.raises(UnknownOp) as e:
        await client._link.call({"op": "teleport"}, dict)
    assert e.value.code == "unknown_op" and e.value.field == "op"
    with pytest.raises(TooLarge):  # refused before sending: the daemon would hang up
        await client.place_intent(**spec("x" * 70_000))  # type: ignore[arg-type]
    assert (await client.status()).pid  # the connection is still good


async def test_a_flood_is_rate_limited_and_the_client_recovers(daemon: Daemon) -> None:
    async with Client.connect(unix_path=daemon.socket, token=READ) as c:
        results = await asyncio.gather(*(c.status() for _ in range(600)),
                                       return_exceptions=True)
        limited = [r for r in results if isinstance(r, RateLimited)]
        assert limited and all(r.code == "rate_limited" for r in limited)
        assert not [r for r in results if isinstance(r, BaseException)
                    and not isinstance(r, RateLimited)], results
        await asyncio.sleep(2.5)  # the bucket refills
        assert (await c.status()).pid == daemon.pid


async def test_callers_that_give_up_early_leave_the_connection_working(client: Client) -> None:
    last = (await client.status()).seq
    gave_up = 0
    for i in range(60):  # replies land just after their callers were canceled
        try:
            await asyncio.wait_for(client.get_snapshot(seq=i % last + 1), (i % 6) / 1000)
        except TimeoutError:
            gave_up += 1
    assert gave_up
    assert (await client.get_snapshot(seq=5)).seq == 5
    assert (await client.status()).seq >= last


async def test_no_reply_within_the_request_timeout_is_a_request_timeout(daemon: Daemon) -> None:
    async with Client.connect(unix_path=daemon.socket, token=READ) as c:
        c._link._timeout = 0.0001  # no daemon answers a snapshot rebuild this fast
        with pytest.raises(RequestTimeout, match="get_snapshot: no reply within"):
            await c.get_snapshot(seq=1)
        c._link._timeout = 10.0
        assert (await c.get_snapshot(seq=1)).seq == 1  # the late reply did not confuse it
