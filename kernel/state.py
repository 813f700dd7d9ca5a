"""The fold: `fold(state, event, seq) -> state`, pure and exhaustive.

`AccountState` is everything a replay rebuilds: K, E, the instruments, and what the
reconcile rules need to remember (when K last moved per wallet and position key, the
last fill's realized PnL on both sides). It is a frozen value; checkpoints store its
msgspec encoding and a replay from a checkpoint continues bit-identically.

Callers fold only *admitted* events (`kernel.admit.admit` returned None); the fold
treats anything else as an `InvariantViolation`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import assert_never

import msgspec

from events.codec import TAGS, Event
from events.control import (
    InputQuarantined,
    ManualAdjustment,
    ResyncCompleted,
    TradingHalted,
    TradingResumed,
    VenueConnected,
    VenueDisconnected,
)
from events.facts import (
    AssetDefined,
    BalanceReported,
    FundingSettled,
    InstrumentDefined,
    LeverageSet,
    MarkPriceObserved,
    OrderFilled,
    OrderNotFound,
    OrderStatusReported,
    PositionsReported,
    TransferCompleted,
    fill_key,
    position_key,
)
from events.orders import (
    AmendOrder,
    CancelOrder,
    CommandAcknowledged,
    CommandOutcomeUnknown,
    CommandRejected,
    IntentAmended,
    IntentCanceled,
    IntentPlaced,
    PlaceOrder,
)
from kernel import intents, ledger, orders, venue
from kernel.errors import InvariantViolation
from kernel.intents import IntentBook
from kernel.ledger import KLedger
from kernel.money import round_to
from kernel.position import Entry
from kernel.venue import VenueView


class Moment(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """When K last moved: the venue's time of the fact, and the kernel's receive time."""

    venue_ts: int
    recv_ts: int


class FillCheck(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One fill's realized PnL as K computed it and as the venue reported it (rule R2)."""

    dedup_key: str
    symbol: str
    asset: str
    kernel: Decimal
    venue: Decimal | None
    #: The fill's position key and trade id: where a late fill's re-pricing finds it.
    position_key: str = ""
    trade_id: str = ""


class AccountState(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    seq: int = 0
    event_id: str = ""
    event_kind: str = ""
    event_ts: int = 0
    #: The kernel's event-time clock: the largest `recv_ts` folded so far.
    now: int = 0
    instruments: dict[str, InstrumentDefined] = {}
    #: The venue's precision per asset (`asset_defined`), for reproducing its rounding.
    assets: dict[str, AssetDefined] = {}
    k: KLedger = KLedger()
    e: VenueView = VenueView()
    wallet_moved: dict[str, Moment] = {}
    position_moved: dict[str, Moment] = {}
    #: The latest `position_moved` among the positions settled in each asset.
    asset_moved: dict[str, Moment] = {}
    last_fill: FillCheck | None = None
    #: Fills whose venue-reported realized PnL K does not reproduce (exactly, or at the
    #: venue's precision), by dedup key: kept until a re-pricing resolves them (R2).
    fill_mismatches: dict[str, FillCheck] = {}
    connected: bool | None = None
    halted: bool = False
    quarantined: int = 0
    #: Per resync stream ("fills", "funding", "transfers"): the kernel's clock when its
    #: last completed resync began (`resync_completed`): where the next one resumes.
    resync_marks: dict[str, int] = {}
    order_updates: int = 0
    intents: int = 0
    #: Every intent and the venue order working it (kernel.intents).
    book: IntentBook = IntentBook()
    commands: int = 0


GENESIS = AccountState()


def fold(state: AccountState, event: Event, seq: int, event_id: str | None = None, *,
         settle: bool = True) -> AccountState:
    """The state after `event`, logged at `seq` (which must follow `state.seq`).
    `event_id` is the event's dedup key, when the caller has it at hand.

    With `settle=False`, K's figures that depend on its present alone (valuations and
    what is summed from them: `kernel.ledger.settle`) are left for `settled` to compute
    once, after a whole batch: the state is then for folding on, not for reading, until
    `settled`. Settled after each event or after many, the state is the same."""
    s = _fold(state, event, seq, event_id)
    return settled(s) if settle else s


def settled(state: AccountState) -> AccountState:
    """`state` with K's stale figures computed (`kernel.ledger.settle`)."""
    k = state.k
    if not k.stale_assets and k.stale_symbols is not None and not k.stale_symbols:
        return state
    return msgspec.structs.replace(state, k=ledger.settle(k, state.instruments))


def _fold(state: AccountState, event: Event, seq: int, event_id: str | None) -> AccountState:
    if seq != state.seq + 1:
        raise InvariantViolation(f"fold expected seq {state.seq + 1}, got {seq}")
    # The most frequent events, fills and marks: one copy of the state, not two.
    if type(event) is OrderFilled:
        return _fill(state, event, seq, event.dedup_key if event_id is None else event_id)
    if type(event) is MarkPriceObserved:
        return msgspec.structs.replace(
            state,
            seq=seq,
            event_id=event.dedup_key if event_id is None else event_id,
            event_kind="mark_price_observed",
            event_ts=event.venue_ts,
            now=max(state.now, event.recv_ts),
            k=ledger.apply_mark(state.k, event.symbol, event.price, state.instruments),
        )
    s = msgspec.structs.replace(
        state,
        seq=seq,
        event_id=event.dedup_key if event_id is None else event_id,
        event_kind=TAGS[type(event)],
        event_ts=event.venue_ts,
        now=max(state.now, event.recv_ts),
    )
    match event:
        case OrderFilled() | MarkPriceObserved():
            raise AssertionError("folded above")
        case FundingSettled():
            k = ledger.apply_cash(s.k, event.asset, event.amount, "funding", s.instruments)
            return _moved_wallets(msgspec.structs.replace(s, k=k), event, (event.asset,))
        case TransferCompleted():
            k = ledger.apply_cash(s.k, event.asset, event.signed_amount, "transfers", s.instruments)
            return _moved_wallets(msgspec.structs.replace(s, k=k), event, (event.asset,))
        case ManualAdjustment():
            k = ledger.apply_cash(s.k, event.asset, event.amount, "adjustments", s.instruments)
            return _moved_wallets(msgspec.structs.replace(s, k=k), event, (event.asset,))
        case BalanceReported():
            return msgspec.structs.replace(s, e=venue.apply_balances(s.e, event))
        case PositionsReported():
            return msgspec.structs.replace(s, e=venue.apply_positions(s.e, event, s.instruments))
        case InstrumentDefined():
            instruments = dict(s.instruments)
            instruments[event.symbol] = event
            # New positions mapping too: rules that read instrument rules must re-run.
            k = msgspec.structs.replace(s.k, positions=dict(s.k.positions))
            k = ledger.refresh(k, instruments, touched=(), symbols=None)
            return msgspec.structs.replace(s, instruments=instruments, k=k)
        case LeverageSet():
            return msgspec.structs.replace(
                s, k=ledger.apply_leverage(s.k, event.symbol, event.leverage, s.instruments)
            )
        case OrderStatusReported():
            return msgspec.structs.replace(s, order_updates=s.order_updates + 1,
                                           book=orders.report(s.book, event))
        case OrderNotFound():
            return msgspec.structs.replace(s, book=orders.not_found(s.book, event))
        case IntentPlaced() | IntentAmended() | IntentCanceled():
            return msgspec.structs.replace(s, intents=s.intents + 1,
                                           book=intents.apply(s.book, event))
        case PlaceOrder() | AmendOrder() | CancelOrder():
            return msgspec.structs.replace(s, commands=s.commands + 1,
                                           book=orders.command(s.book, event))
        case CommandAcknowledged() | CommandRejected() | CommandOutcomeUnknown():
            return msgspec.structs.replace(s, commands=s.commands + 1,
                                           book=orders.outcome(s.book, event))
        case VenueConnected():
            return msgspec.structs.replace(s, connected=True)
        case VenueDisconnected():
            return msgspec.structs.replace(s, connected=False)
        case TradingHalted():
            return msgspec.structs.replace(s, halted=True)
        case TradingResumed():
            return msgspec.structs.replace(s, halted=False)
        case InputQuarantined():
            return msgspec.structs.replace(s, quarantined=s.quarantined + 1)
        case AssetDefined():
            assets = dict(s.assets)
            assets[event.asset] = event
            return msgspec.structs.replace(s, assets=assets)
        case ResyncCompleted():
            marks = dict(s.resync_marks)
            marks[event.stream] = max(marks.get(event.stream, 0), event.venue_ts)
            return msgspec.structs.replace(s, resync_marks=marks)
        case _:
            assert_never(event)


def _fill(s: AccountState, fill: OrderFilled, seq: int, event_id: str) -> AccountState:
    inst = s.instruments.get(fill.symbol)
    if inst is None:
        raise InvariantViolation(f"fill {event_id} for undefined instrument {fill.symbol}")
    settle = s.assets.get(inst.settle)
    k, booked = ledger.apply_fill(s.k, fill, inst, s.instruments, settle)
    moment = Moment(fill.venue_ts, fill.recv_ts)
    key = fill.symbol
    position_moved, asset_moved = s.position_moved, s.asset_moved
    if inst.instrument_kind == "spot":
        wallet_moved = _moved(s.wallet_moved, (inst.base, inst.quote, fill.fee_currency), moment)
        asset = inst.quote
    else:
        wallet_moved = _moved(s.wallet_moved, (inst.settle, fill.fee_currency), moment)
        key = position_key(fill.symbol, fill.position_side)
        position_moved = _moved(position_moved, (key,), moment)
        asset_moved = _moved(asset_moved, (inst.settle,), moment)
        asset = inst.settle
    check = FillCheck(
        dedup_key=event_id,
        symbol=fill.symbol,
        asset=asset,
        kernel=booked.realized,
        venue=fill.venue_realized_pnl,
        position_key=key,
        trade_id=fill.trade_id,
    )
    mismatches = s.fill_mismatches
    # Only a re-pricing, a mismatch still open, or a venue figure K does not match exactly
    # can change the R2 mismatches.
    if booked.repriced or mismatches or (
            check.venue is not None and check.kernel != check.venue):
        mismatches = _recheck(mismatches, check, booked.repriced, settle)
    return msgspec.structs.replace(
        s, seq=seq, event_id=event_id, event_kind="order_filled", event_ts=fill.venue_ts,
        now=max(s.now, fill.recv_ts), k=k, last_fill=check, fill_mismatches=mismatches,
        book=s.book if fill.client_order_id is None else orders.fill(s.book, fill),
        position_moved=position_moved, asset_moved=asset_moved, wallet_moved=wallet_moved)


def fill_agrees(kernel: Decimal, venue: Decimal, asset: AssetDefined | None) -> bool:
    """K's realized PnL of a fill reproduces the venue's: exactly, or once rounded the
    way the venue documents for the asset."""
    if kernel == venue:
        return True
    return asset is not None and round_to(kernel, asset.precision, asset.rounding) == venue


def _recheck(
    mismatches: dict[str, FillCheck],
    check: FillCheck,
    repriced: tuple[Entry, ...],
    asset: AssetDefined | None,
) -> dict[str, FillCheck]:
    """The unresolved R2 mismatches after booking `check`'s fill, which re-priced the
    journal entries `repriced` (of the same key): each is judged again at its new price."""
    out = mismatches
    judged = [(check.dedup_key, check)]
    for e in repriced:
        if e.venue is not None:
            judged.append((fill_key(check.symbol, e.trade_id), msgspec.structs.replace(
                check, dedup_key=fill_key(check.symbol, e.trade_id), kernel=e.realized,
                venue=e.venue, trade_id=e.trade_id)))
    for dedup_key, c in judged:
        bad = c.venue is not None and not fill_agrees(c.kernel, c.venue, asset)
        if bad or dedup_key in out:
            if out is mismatches:
                out = dict(out)
            if bad:
                out[dedup_key] = c
            else:
                del out[dedup_key]
    return out


def _moved_wallets(
    s: AccountState, event: Event, assets: tuple[str, ...]
) -> AccountState:
    moment = Moment(event.venue_ts, event.recv_ts)
    return msgspec.structs.replace(s, wallet_moved=_moved(s.wallet_moved, assets, moment))


def _moved(
    moved: dict[str, Moment], keys: tuple[str, ...], moment: Moment
) -> dict[str, Moment]:
    """`moved` with `moment` for `keys`, unless a fact with a later venue time already
    moved them: a backfilled older fill must not hide a newer unreported one. (`moved`
    itself, not a copy, when none of them moves.)"""
    out = moved
    for key in keys:
        old = out.get(key)
        if old is None or moment.venue_ts >= old.venue_ts:
            if out is moved:
                out = dict(moved)
            out[key] = moment
    return out
