"""Commands through ccxt to the fake Binance USD-M venue, and the one error mapping:
the venue's real rejections arrive as `CommandRejected` with Binance's code, whatever
exception class ccxt picked behind the URL override; a lost or late answer is an unknown
outcome the kernel resolves by asking, never a failure; refused keys are fatal (the
daemon exits 77, shown through `exkernel run`)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import ccxt  # type: ignore[import-untyped]
import msgspec
import pytest
from ccxtpro_support import BTC, FAST, adapter, cancel, connected, fake, place
from fakebinance import BinanceError, FakeBinance

from adapters.ccxtpro.client import VenueErrorInfo
from adapters.ccxtpro.execution import outcome, venue_failure
from adapters.ccxtpro.venue import CcxtProVenue
from events.orders import CommandAcknowledged, CommandOutcomeUnknown, CommandRejected
from kernel.errors import CredentialsRejected, VenueUnavailable

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def fb() -> AsyncIterator[FakeBinance]:
    async with fake(wallet={"USDT": D(1000)}) as venue:
        yield venue


@pytest.fixture
async def venue(fb: FakeBinance) -> AsyncIterator[CcxtProVenue]:
    async with connected(fb) as v:
        yield v


async def test_the_venues_own_rejections_carry_its_code(venue: CcxtProVenue) -> None:
    cases = [
        (place(qty="5"), "-2019"),  # 300k notional on 1000 USDT
        (place(order_type="stop", trigger_price=D(59000)), "-2021"),  # a buy stop below mark
        (place(side="sell", reduce_only=True), "-2022"),  # nothing to reduce
        (place(qty="0.001"), "-4164"),  # 60 USDT, under the 100 minimum notional
    ]
    for cmd, code in cases:
        out = await venue.place(cmd)
        assert isinstance(out, CommandRejected), (code, out)
        assert (out.command_id, out.code) == (cmd.command_id, code) and out.reason.strip()
    out = await venue.cancel(cancel("never-placed"))
    assert isinstance(out, CommandRejected) and out.code == "-2011"


async def test_a_filter_failure_and_any_other_code_are_rejections_with_the_code(
        fb: FakeBinance, venue: CcxtProVenue) -> None:
    fb.faults.fail_next(BinanceError(-1013, "Filter failure: PERCENT_PRICE"))
    out = await venue.place(place())
    assert isinstance(out, CommandRejected) and out.code == "-1013"


@pytest.mark.parametrize("error", [
    BinanceError(-1003, "Too many requests; current limit is 2400 requests per minute.", 429),
    BinanceError(-1007, "Timeout waiting for response from backend server. Send status"
                 " unknown; execution status unknown.", 408),
    BinanceError(-1001, "Service Unavailable.", 503),
])
async def test_rate_limits_and_unknown_execution_are_unknown_outcomes(
        fb: FakeBinance, venue: CcxtProVenue, error: BinanceError) -> None:
    fb.faults.fail_next(error)
    out = await venue.place(place())
    assert isinstance(out, CommandOutcomeUnknown), out


@pytest.mark.parametrize("mode", ["reset", "hang"])
async def test_a_lost_answer_is_unknown_and_the_query_resolves_it_without_a_duplicate(
        mode: str) -> None:
    settings = msgspec.structs.replace(FAST, request_timeout_s=0.5)
    async with fake(wallet={"USDT": D(1000)}) as fb, connected(fb, settings) as v:
        fb.faults.hang_s = 2.0
        fb.faults.lose_next_response(mode=mode)
        cmd = place()
        out = await v.place(cmd)
        assert isinstance(out, CommandOutcomeUnknown), out
        status = await v.order(BTC, cmd.client_order_id)  # the venue did place it
        assert status is not None and status.status == "filled"
        again = await v.place(cmd)  # a careless retry is refused, not placed twice
        assert isinstance(again, CommandRejected)
        assert sum(1 for o in fb.engine.orders.values()
                   if o.client_order_id == cmd.client_order_id) == 1


async def test_behind_the_url_override_ccxt_raises_binances_linear_classes(
        venue: CcxtProVenue) -> None:
    # ccxt picks the table by URL prefix (binance.py:get_exceptions_by_url); the adapter's
    # hook maps the overridden URL back, so the linear table applies.
    ex = venue._q().ex
    with pytest.raises(ccxt.InsufficientFunds):
        await ex.create_order(BTC, "market", "buy", "5")
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        await ex.create_order(BTC, "market", "buy", "0.002", None, {"triggerPrice": "59000"})


@pytest.mark.parametrize(("key", "secret"), [("wrong-key", None), (None, "wrong-secret")])
async def test_refused_keys_at_connect_are_fatal(fb: FakeBinance, key: str | None,
                                                 secret: str | None) -> None:
    kw = {k: v for k, v in (("key", key), ("secret", secret)) if v is not None}
    v = adapter(fb, **kw)  # type: ignore[arg-type]
    with pytest.raises(CredentialsRejected):
        await v.connect()


async def test_no_venue_is_unavailable_not_fatal() -> None:
    async with fake() as fb:
        cfg = adapter(fb)
    with pytest.raises(VenueUnavailable):  # the venue has stopped: nothing listens
        await cfg.connect()


async def test_exkernel_run_exits_77_when_the_venue_refuses_the_keys(tmp_path: Path) -> None:
    async with fake() as fb:
        config = tmp_path / "k.toml"
        config.write_text(f"""
[kernel]
state_dir = "{tmp_path / 'state'}"
[metrics]
enabled = false
[venue]
kind = "ccxtpro"
[venue.ccxtpro]
exchange = "binanceusdm"
symbols = ["BTC/USDT:USDT"]
rest_url = "{fb.rest_url}"
ws_url = "ws://127.0.0.1:{fb.port}"
[venue.ccxtpro.adapter]
rate_limit_ms = 1.0
""")
        env = {**os.environ, "EXKERNEL_API_KEY": "not-the-key", "EXKERNEL_API_SECRET": "x"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kernel.cli.main", "run", "--config", str(config),
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 77, out.decode()
    assert b"not-the-key" not in out  # the key is never logged


# -- the mapping itself, table by table ------------------------------------------------------


def annotated(exc: Exception, status: int, code: str | None) -> Exception:
    exc.kernel_venue_error = VenueErrorInfo(status=status, code=code,  # type: ignore[attr-defined]
                                            message="the venue's words")
    return exc


@pytest.mark.parametrize(("exc", "kind", "code"), [
    (annotated(ccxt.ExchangeError("x"), 400, "-2019"), CommandRejected, "-2019"),
    (annotated(ccxt.InvalidOrder("x"), 400, "-1013"), CommandRejected, "-1013"),
    (annotated(ccxt.OrderNotFound("x"), 400, "-2011"), CommandRejected, "-2011"),
    (annotated(ccxt.InvalidNonce("x"), 400, "-1021"), CommandRejected, "-1021"),
    (annotated(ccxt.RateLimitExceeded("x"), 429, "-1003"), CommandOutcomeUnknown, None),
    (annotated(ccxt.DDoSProtection("x"), 400, "-2015"), CommandOutcomeUnknown, None),
    (annotated(ccxt.ExchangeError("x"), 400, "-1007"), CommandOutcomeUnknown, None),
    (annotated(ccxt.ExchangeError("x"), 502, None), CommandOutcomeUnknown, None),
    (ccxt.RequestTimeout("x"), CommandOutcomeUnknown, None),
    (ccxt.ExchangeNotAvailable("x"), CommandOutcomeUnknown, None),
    (TimeoutError(), CommandOutcomeUnknown, None),
    (ccxt.InvalidOrder("amount must be greater than minimum"), CommandRejected, None),
    (ccxt.ExchangeError("a response ccxt could not read"), CommandOutcomeUnknown, None),
])
def test_each_failure_has_one_outcome(exc: Exception, kind: type, code: str | None) -> None:
    out = outcome(exc, "cmd-1", 5)
    assert isinstance(out, kind) and out.command_id == "cmd-1"
    if isinstance(out, CommandRejected):
        assert out.code == code


@pytest.mark.parametrize("exc", [annotated(ccxt.AuthenticationError("x"), 401, "-2015"),
                                 annotated(ccxt.ExchangeError("x"), 400, "-1022"),
                                 ccxt.PermissionDenied("x")])
def test_refused_keys_are_fatal_for_a_command_too(exc: Exception) -> None:
    with pytest.raises(CredentialsRejected):
        outcome(exc, "cmd-1", 5)


def test_a_bug_is_not_mistaken_for_the_venue() -> None:
    with pytest.raises(KeyError):
        outcome(KeyError("oops"), "cmd-1", 5)


def test_a_query_failure_is_unavailable_unless_the_keys_are_refused() -> None:
    gone = annotated(ccxt.AuthenticationError("x"), 400, "-1125")  # ccxt: AuthenticationError
    assert isinstance(venue_failure(gone, "keep-alive"), VenueUnavailable)
    assert isinstance(venue_failure(ccxt.NetworkError("x"), "q"), VenueUnavailable)
    assert isinstance(venue_failure(annotated(ccxt.AuthenticationError("x"), 401, "-2014"),
                                    "q"), CredentialsRejected)


async def test_commands_before_connect_send_nothing(fb: FakeBinance) -> None:
    v = adapter(fb)
    with pytest.raises(VenueUnavailable):
        await v.place(place())
    with pytest.raises(VenueUnavailable):
        await v.cancel(cancel("x"))
    assert fb.requests == []


async def test_an_order_is_acknowledged_with_the_venues_id(fb: FakeBinance,
                                                           venue: CcxtProVenue) -> None:
    cmd = place(order_type="limit", price=D(59000))
    out = await venue.place(cmd)
    assert isinstance(out, CommandAcknowledged)
    assert out.order_id == str(fb.order(cmd.client_order_id).order_id)
