"""The fold: `fold(state, event, seq) -> state`, pure and exhaustive.

`AccountState` is everything a replay rebuilds: K, E, the instruments, and what the
reconcile rules need to remember (when K last moved per wallet and position key, the
last fill's realized PnL on both sides). It is a frozen value; checkpoints store its
msgspec encoding and a replay from a checkpoint continues bit-identically.

A run of events folds through a `Draft`, which copies each mapping once per batch instead
of once per event and gives the same states; `fold` is a draft of one event, so there is
one implementation of each fact's effect.

Callers fold only *admitted* events (`kernel.admit.admit` returned None); the fold
treats anything else as an `InvariantViolation`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, assert_never

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
from kernel.ledger import KLedger, LedgerDraft
from kernel.money import round_to
from kernel.position import Entry, Position
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

    def holds(self, symbol: str) -> bool:
        """A position or a spot holding in `symbol` is open."""
        return _holds(self.k.positions, self.k.holdings, symbol)


GENESIS = AccountState()


def _holds(positions: dict[str, Position], holdings: dict[str, Position], symbol: str) -> bool:
    return any(p.symbol == symbol for p in positions.values()) or symbol in holdings


def fold(state: AccountState, event: Event, seq: int, event_id: str | None = None, *,
         settle: bool = True) -> AccountState:
    """The state after `event`, logged at `seq` (which must follow `state.seq`).
    `event_id` is the event's dedup key, when the caller has it at hand.

    With `settle=False`, K's figures that depend on its present alone (valuations and
    what is summed from them: `kernel.ledger.settle`) are left for `settled` to compute
    once, after a whole batch: the state is then for folding on, not for reading, until
    `settled`. Settled after each event or after many, the state is the same.

    A run of events folds faster through one `Draft` (what the writer and the replay
    do); the states are the same: this is a draft of one event."""
    draft = Draft(state)
    draft.fold(event, seq, event_id)
    s = draft.state(last=True)
    return settled(s) if settle else s


def settled(state: AccountState) -> AccountState:
    """`state` with K's stale figures computed (`kernel.ledger.settle`)."""
    k = state.k
    if not k.stale_assets and k.stale_symbols is not None and not k.stale_symbols:
        return state
    return msgspec.structs.replace(state, k=ledger.settle(k, state.instruments))


_UNSET: Any = object()
#: The state's fields a `Draft` keeps as attributes (read and written by the most
#: frequent events); the rest it keeps in `_changes` once changed.
_HOT = ("instruments", "assets", "book", "last_fill", "fill_mismatches", "wallet_moved",
        "position_moved", "asset_moved")


class Draft:
    """A state being folded: `fold(event, seq, event_id)` for each event of a run, then
    `state()`, the AccountState after them, unsettled (as `fold(..., settle=False)`).

    Each mapping an event changes is copied on its first write in the draft and then
    changed in place (K's through a `LedgerDraft`); the others keep the state's own. So
    a batch copies a mapping once, not once per event, and builds one AccountState, not
    one per event. The state the draft started from, and every state `state()` gave,
    are never written to: after `state()` the draft goes on from that state, copying
    afresh. A fold that raises leaves the draft unusable: drop it.

    `instruments`, `book` and `holds` are what admission reads (`kernel.admit`)."""

    __slots__ = ("_base", "_changes", "_mine", "event_id", "event_kind", "event_ts", "k",
                 "now", "seq", *_HOT)
    instruments: dict[str, InstrumentDefined]
    assets: dict[str, AssetDefined]
    book: IntentBook
    last_fill: FillCheck | None
    fill_mismatches: dict[str, FillCheck]
    wallet_moved: dict[str, Moment]
    position_moved: dict[str, Moment]
    asset_moved: dict[str, Moment]

    def __init__(self, state: AccountState) -> None:
        self._start(state)
        self.k = LedgerDraft(state.k)

    def _start(self, state: AccountState) -> None:
        self._base = state
        #: The other fields this draft changed, by name, with their new values.
        self._changes: dict[str, Any] = {}
        #: The moved-mappings that are the draft's own copies, changed in place.
        self._mine: set[str] = set()
        self.seq, self.event_id, self.event_kind = state.seq, state.event_id, state.event_kind
        self.event_ts, self.now = state.event_ts, state.now
        self.instruments, self.assets, self.book = state.instruments, state.assets, state.book
        self.last_fill, self.fill_mismatches = state.last_fill, state.fill_mismatches
        self.wallet_moved, self.position_moved = state.wallet_moved, state.position_moved
        self.asset_moved = state.asset_moved

    def _get(self, name: str) -> Any:
        v = self._changes.get(name, _UNSET)
        return getattr(self._base, name) if v is _UNSET else v

    def holds(self, symbol: str) -> bool:
        """A position or a spot holding in `symbol` is open."""
        return _holds(self.k.get("positions"), self.k.get("holdings"), symbol)

    def state(self, *, last: bool = False) -> AccountState:
        """The state after every event folded so far (unsettled). With `last`, the draft
        is done: it need not ready itself to go on (`fold`'s one-event draft)."""
        k = self.k.freeze(last=last)
        s = self._base
        changes = self._changes
        for name in _HOT:
            v = getattr(self, name)
            if v is not getattr(s, name):
                changes[name] = v
        if self.seq == s.seq and k is s.k and not changes:
            return s
        s = msgspec.structs.replace(
            s, seq=self.seq, event_id=self.event_id, event_kind=self.event_kind,
            event_ts=self.event_ts, now=self.now, k=k, **changes)
        if not last:
            self._start(s)
        return s

    def fold(self, event: Event, seq: int, event_id: str | None = None) -> None:
        """Fold one admitted `event`, logged at `seq` (which must follow the last)."""
        if seq != self.seq + 1:
            raise InvariantViolation(f"fold expected seq {self.seq + 1}, got {seq}")
        self.seq = seq
        self.event_id = event.dedup_key if event_id is None else event_id
        self.event_ts = event.venue_ts
        if event.recv_ts > self.now:
            self.now = event.recv_ts
        # The most frequent events first: fills, marks and the venue's order reports.
        if type(event) is OrderFilled:
            self.event_kind = "order_filled"
            self._fill(event)
            return
        if type(event) is MarkPriceObserved:
            self.event_kind = "mark_price_observed"
            self.k.mark(event.symbol, event.price)
            return
        self.event_kind = TAGS[type(event)]
        match event:
            case OrderFilled() | MarkPriceObserved():
                raise AssertionError("folded above")
            case OrderStatusReported():
                self._changes["order_updates"] = self._get("order_updates") + 1
                self.book = orders.report(self.book, event)
            case FundingSettled():
                self.k.cash(event.asset, event.amount, "funding")
                self._moved("wallet_moved", (event.asset,), Moment(event.venue_ts, event.recv_ts))
            case TransferCompleted():
                self.k.cash(event.asset, event.signed_amount, "transfers")
                self._moved("wallet_moved", (event.asset,), Moment(event.venue_ts, event.recv_ts))
            case ManualAdjustment():
                self.k.cash(event.asset, event.amount, "adjustments")
                self._moved("wallet_moved", (event.asset,), Moment(event.venue_ts, event.recv_ts))
            case BalanceReported():
                self._changes["e"] = venue.apply_balances(self._get("e"), event)
            case PositionsReported():
                self._changes["e"] = venue.apply_positions(self._get("e"), event, self.instruments)
            case InstrumentDefined():
                instruments = dict(self.instruments)
                instruments[event.symbol] = event
                self.instruments = instruments
                self.k.instruments_changed()
            case LeverageSet():
                self.k.set_leverage(event.symbol, event.leverage)
            case OrderNotFound():
                self.book = orders.not_found(self.book, event)
            case IntentPlaced() | IntentAmended() | IntentCanceled():
                self._changes["intents"] = self._get("intents") + 1
                self.book = intents.apply(self.book, event)
            case PlaceOrder() | AmendOrder() | CancelOrder():
                self._changes["commands"] = self._get("commands") + 1
                self.book = orders.command(self.book, event)
            case CommandAcknowledged() | CommandRejected() | CommandOutcomeUnknown():
                self._changes["commands"] = self._get("commands") + 1
                self.book = orders.outcome(self.book, event)
            case VenueConnected():
                self._changes["connected"] = True
            case VenueDisconnected():
                self._changes["connected"] = False
            case TradingHalted():
                self._changes["halted"] = True
            case TradingResumed():
                self._changes["halted"] = False
            case InputQuarantined():
                self._changes["quarantined"] = self._get("quarantined") + 1
            case AssetDefined():
                assets = dict(self.assets)
                assets[event.asset] = event
                self.assets = assets
            case ResyncCompleted():
                marks = dict(self._get("resync_marks"))
                marks[event.stream] = max(marks.get(event.stream, 0), event.venue_ts)
                self._changes["resync_marks"] = marks
            case _:
                assert_never(event)

    def _fill(self, fill: OrderFilled) -> None:
        inst = self.instruments.get(fill.symbol)
        if inst is None:
            raise InvariantViolation(
                f"fill {self.event_id} for undefined instrument {fill.symbol}")
        settle = self.assets.get(inst.settle)
        booked = self.k.fill(fill, inst, settle)
        moment = Moment(fill.venue_ts, fill.recv_ts)
        key = fill.symbol
        if inst.instrument_kind == "spot":
            self._moved("wallet_moved", (inst.base, inst.quote, fill.fee_currency), moment)
            asset = inst.quote
        else:
            self._moved("wallet_moved", (inst.settle, fill.fee_currency), moment)
            key = position_key(fill.symbol, fill.position_side)
            self._moved("position_moved", (key,), moment)
            self._moved("asset_moved", (inst.settle,), moment)
            asset = inst.settle
        check = FillCheck(
            dedup_key=self.event_id,
            symbol=fill.symbol,
            asset=asset,
            kernel=booked.realized,
            venue=fill.venue_realized_pnl,
            position_key=key,
            trade_id=fill.trade_id,
        )
        self.last_fill = check
        mismatches = self.fill_mismatches
        # Only a re-pricing, a mismatch still open, or a venue figure K does not match
        # exactly can change the R2 mismatches.
        if booked.repriced or mismatches or (
                check.venue is not None and check.kernel != check.venue):
            found = _recheck(mismatches, check, booked.repriced, settle)
            if found is not mismatches:
                self.fill_mismatches = found
        if fill.client_order_id is not None:
            self.book = orders.fill(self.book, fill)

    def _moved(self, name: str, keys: tuple[str, ...], moment: Moment) -> None:
        """`moment` for `keys` in the mapping `name`, unless a fact with a later venue
        time already moved them: a backfilled older fill must not hide a newer
        unreported one. (The mapping is copied only when one of them moves.)"""
        moved: dict[str, Moment] = getattr(self, name)
        for key in keys:
            old = moved.get(key)
            if old is None or moment.venue_ts >= old.venue_ts:
                if name not in self._mine:
                    moved = dict(moved)
                    setattr(self, name, moved)
                    self._mine.add(name)
                moved[key] = moment


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
