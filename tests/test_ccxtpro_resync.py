"""The adapter's REST history: paged the way Binance's limits require (7-day windows, 1000
records a call), so a restart after downtime books every payment and fill it missed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D

import pytest
from ccxtpro_support import BTC, FAST, connected, fake, place

from adapters.ccxtpro.resync import PAGE, WEEK_MS, income_pages, trade_pages, windows

NOW = 1_800_000_000_000


def test_windows_cover_the_span_in_pieces_under_seven_days() -> None:
    ws = windows(NOW - 3 * WEEK_MS - 5, NOW)
    assert ws[0][0] == NOW - 3 * WEEK_MS - 5 and ws[-1][1] == NOW
    assert all(b - a < WEEK_MS for a, b in ws)
    assert all(ws[i][1] + 1 == ws[i + 1][0] for i in range(len(ws) - 1))
    assert windows(NOW, NOW) == [(NOW, NOW)]


class History:
    """Rows as Binance serves them: a window of at most 7 days, ascending, PAGE a call;
    trades also `fromId` (no window); income also `page`."""

    def __init__(self, times: list[int]) -> None:
        self.rows = [{"id": i + 1, "tranId": 10_000 + i, "time": t}
                     for i, t in enumerate(sorted(times))]
        self.calls = 0

    async def window(self, start: int, end: int) -> list[dict[str, int]]:
        assert end - start < WEEK_MS, "Binance refuses a window of 7 days or more"
        self.calls += 1
        return [r for r in self.rows if start <= r["time"] <= end][:PAGE]

    async def after(self, trade_id: int) -> list[dict[str, int]]:
        self.calls += 1
        return [r for r in self.rows if r["id"] >= trade_id][:PAGE]

    async def page(self, start: int, end: int, number: int) -> list[dict[str, int]]:
        assert end - start < WEEK_MS
        self.calls += 1
        rows = [r for r in self.rows if start <= r["time"] <= end]
        return rows[(number - 1) * PAGE:number * PAGE]


@pytest.mark.parametrize("times", [
    [NOW - 20 * 24 * 3600 * 1000 + i * 60_000 for i in range(2500)],  # 2500 in one window
    [NOW - 1000] * 2100,  # more than two pages at one millisecond
    [NOW - k * WEEK_MS // 2 for k in range(8)],  # a few, spread over four weeks
])
async def test_every_record_is_read_once_however_they_fall(times: list[int]) -> None:
    h = History(times)
    since = NOW - 4 * WEEK_MS
    trades = await trade_pages(h.window, h.after, since, NOW)
    assert [r["id"] for r in trades] == [r["id"] for r in h.rows]
    income = await income_pages(h.page, since, NOW)
    assert [r["tranId"] for r in income] == [r["tranId"] for r in h.rows]


@pytest.fixture
async def fb() -> AsyncIterator[object]:
    async with fake(wallet={"USDT": D(100000)}) as venue:
        yield venue


async def test_more_funding_payments_than_one_page_are_all_read(fb: object) -> None:
    from fakebinance import FakeBinance

    assert isinstance(fb, FakeBinance)
    async with connected(fb) as v:
        await v.place(place(qty="0.010"))
        await v.place(place(symbol="ETH/USDT:USDT", qty="0.100"))
    fb.clock.hold()
    for _ in range(PAGE // 2 + 20):  # two symbols: more payments than a page
        fb.clock.advance(1)
        fb.engine.settle_funding("BTCUSDT", D("0.0001"))
        fb.engine.settle_funding("ETHUSDT", D("-0.0001"))
    fb.engine.user_events.clear()  # nobody was listening
    fb.clock.release()
    await asyncio.sleep(0.6)  # the venue's history is never ahead of the kernel's clock
    async with connected(fb, FAST) as v:
        funding = await v.funding_since(0)
    venue_ids = [str(i.tran_id) for i in fb.engine.book.income if i.income_type == "FUNDING_FEE"]
    assert len(venue_ids) > PAGE
    assert sorted(f.funding_id or "" for f in funding) == sorted(venue_ids)
    assert {f.symbol for f in funding} == {BTC, "ETH/USDT:USDT"}
