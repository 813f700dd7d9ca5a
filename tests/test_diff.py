"""The intent reconciler's pure core: `diff(state)` and the order-state fold
(kernel/diff.py, kernel/orders.py), table by table, and a property: random intent
sequences against a fault-free model venue converge in a bounded number of rounds,
nothing is ever placed twice, and the diff of a converged state is empty."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal as D
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from events.codec import Event
from events.facts import InstrumentDefined, OrderFilled, OrderNotFound, OrderStatusReported
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
from kernel.admit import admit
from kernel.diff import (
    Amend,
    Cancel,
    DiffConfig,
    Fail,
    Place,
    Query,
    client_order_id,
    command_event,
    diff,
)
from kernel.intents import FINAL
from kernel.state import GENESIS, AccountState, fold

S = 1_000_000_000
CFG = DiffConfig(prefix="ek")
BTC = InstrumentDefined(venue_ts=0, symbol="BTCUSDT", instrument_kind="linear", base="BTC",
                        quote="USDT", settle="USDT", tick_size=D("0.1"), lot_size=D("0.001"),
                        min_notional=D("0"))
_t = itertools.count(1)


def fold_all(state: AccountState, *events: Event) -> AccountState:
    for e in events:
        t = next(_t) * S
        e = msgspec.structs.replace(e, venue_ts=e.venue_ts or t, recv_ts=e.recv_ts or t)
        assert admit(state, e) is None, admit(state, e)
        state = fold(state, e, state.seq + 1)
    return state


def placed(intent_id: str = "i-1", **kw: Any) -> IntentPlaced:
    fields: dict[str, Any] = {"venue_ts": 0, "intent_id": intent_id, "symbol": "BTCUSDT",
                              "side": "buy", "order_type": "limit", "qty": D("0.010"),
                              "price": D("60000.0")}
    fields.update(kw)
    return IntentPlaced(**fields)


def start(*events: Event) -> AccountState:
    return fold_all(GENESIS, BTC, *events)


def act(state: AccountState, cfg: DiffConfig = CFG) -> tuple[AccountState, list[Any]]:
    """Log the command of every action (write-ahead), as the shell does."""
    actions = diff(state, cfg)
    cmds = [command_event(state, a, 0) for a in actions if not isinstance(a, Query)]
    return fold_all(state, *cmds), actions


def status(state: AccountState, intent_id: str = "i-1") -> str:
    return state.book.orders[intent_id].status


def report(cid: str, status: str, filled: str = "0", qty: str = "0.010",
           price: str = "60000.0") -> OrderStatusReported:
    return OrderStatusReported(venue_ts=0, symbol="BTCUSDT", order_id="v1", status=status,  # type: ignore[arg-type]
                               side="buy", order_type="limit", qty=D(qty), filled_qty=D(filled),
                               client_order_id=cid, price=D(price))


def filled(cid: str, qty: str, trade: str, price: str = "60000.0") -> OrderFilled:
    return OrderFilled(venue_ts=0, symbol="BTCUSDT", trade_id=trade, order_id="v1",
                       side="buy", qty=D(qty), price=D(price), fee=D(0), fee_currency="USDT",
                       client_order_id=cid)


CID = "ek-i-1-0"


# --- client order ids --------------------------------------------------------------------


def test_client_order_ids_are_deterministic_and_within_the_venues_rules() -> None:
    assert client_order_id(CFG, "i-1", 0) == "ek-i-1-0"
    long = client_order_id(CFG, "x" * 100, 3)
    assert long == client_order_id(CFG, "x" * 100, 3) and len(long) <= 36
    assert long.startswith("ek-") and long.endswith("-3")
    odd = client_order_id(CFG, "grid #1 (buy)", 0)
    assert odd != "ek-grid #1 (buy)-0" and len(odd) <= 36


# --- the life of one intent ------------------------------------------------------------


def test_place_ack_fill_completes_and_the_diff_is_then_empty() -> None:
    s, actions = act(start(placed()))
    assert [type(a) for a in actions] == [Place]
    assert (status(s), s.book.orders["i-1"].client_order_id) == ("SUBMITTING", CID)
    assert diff(s, CFG) == []  # the command is in flight: nothing is sent twice
    s = fold_all(s, CommandAcknowledged(venue_ts=0, command_id=f"{CID}:place",
                                        order_id="v1"))
    assert status(s) == "ACTIVE" and diff(s, CFG) == []
    s = fold_all(s, filled(CID, "0.004", "t1"), filled(CID, "0.006", "t2", "60001.0"))
    o = s.book.orders["i-1"]
    assert (o.status, o.filled_qty, o.avg_fill_price) == ("COMPLETED", D("0.010"),
                                                          D("60000.6"))
    assert diff(s, CFG) == []


def test_a_timeout_is_unknown_then_resolved_by_query_never_by_a_second_place() -> None:
    s, _ = act(start(placed()))
    s = fold_all(s, CommandOutcomeUnknown(venue_ts=0, command_id=f"{CID}:place",
                                          reason="no answer in 5 s"))
    assert status(s) == "RECONCILING"
    [q] = diff(s, CFG)
    assert isinstance(q, Query) and q.client_order_id == CID
    s = fold_all(s, report(CID, "new"))  # the query found it: the place took effect
    assert status(s) == "ACTIVE" and diff(s, CFG) == []


def test_a_place_never_found_fails_only_after_the_venues_window() -> None:
    s, _ = act(start(placed()))
    s = fold_all(s, CommandOutcomeUnknown(venue_ts=0, command_id=f"{CID}:place",
                                          reason="timeout"))
    for _ in range(CFG.not_found_max):
        s = fold_all(s, OrderNotFound(venue_ts=0, symbol="BTCUSDT", client_order_id=CID))
    # five not-found answers within seconds of the place are not evidence: keep asking
    assert [type(a) for a in diff(s, CFG)] == [Query]
    flight = s.book.orders["i-1"].in_flight
    assert flight is not None
    late = flight.sent_ts + CFG.place_window_ns + S
    s = fold_all(s, OrderNotFound(venue_ts=late, recv_ts=late, symbol="BTCUSDT",
                                  client_order_id=CID))
    [f] = diff(s, CFG)
    assert isinstance(f, Fail)
    s, _ = act(s)
    assert status(s) == "FAILED" and "never acknowledged" in (s.book.orders["i-1"].error or "")


def test_amend_by_edit_keeps_the_client_order_id() -> None:
    s, _ = act(start(placed()))
    s = fold_all(s, CommandAcknowledged(venue_ts=0, command_id=f"{CID}:place", order_id="v1"),
                 IntentAmended(venue_ts=0, intent_id="i-1", revision=1, price=D("60010.0")))
    s, [a] = act(s)
    assert isinstance(a, Amend) and (a.client_order_id, a.price) == (CID, D("60010.0"))
    s = fold_all(s, CommandAcknowledged(venue_ts=0, command_id=a.command_id))
    o = s.book.orders["i-1"]
    assert (o.status, o.order_revision, o.client_order_id) == ("ACTIVE", 1, CID)
    assert diff(s, CFG) == []


def test_amend_by_cancel_then_replace_supersedes_the_old_leg() -> None:
    cfg = msgspec.structs.replace(CFG, venue_edits=False)
    s, _ = act(start(placed()), cfg)
    s = fold_all(s, CommandAcknowledged(venue_ts=0, command_id=f"{CID}:place", order_id="v1"),
                 filled(CID, "0.004", "t1"),
                 IntentAmended(venue_ts=0, intent_id="i-1", revision=1, price=D("60010.0")))
    s, [c] = act(s, cfg)
    assert isinstance(c, Cancel) and c.purpose == "replace"
    s = fold_all(s, CommandAcknowledged(venue_ts=0, command_id=c.command_id))
    assert status(s) == "PENDING"
    s, [p] = act(s, cfg)
    assert isinstance(p, Place) and p.client_order_id == "ek-i-1-1"
    assert p.qty == D("0.006")  # what the first leg left
    o = s.book.orders["i-1"]
    assert (o.client_order_id, o.superseded) == ("ek-i-1-1", (CID,))
    # a late report that the old leg was canceled changes nothing of the new one
    s = fold_all(s, CommandAcknowledged(venue_ts=0, command_id=p.command_id, order_id="v2"),
                 report(CID, "canceled", filled="0.004"))
    assert status(s) == "ACTIVE" and s.book.orders["i-1"].client_order_id == "ek-i-1-1"
    # but a late fill of the old leg is the intent's fill
    s = fold_all(s, filled(CID, "0.001", "t9"))
    assert s.book.orders["i-1"].filled_qty == D("0.005")


def test_a_venue_that_refuses_an_edit_gets_cancel_then_replace() -> None:
    s, _ = act(start(placed()))
    s = fold_all(s, CommandAcknowledged(venue_ts=0, command_id=f"{CID}:place", order_id="v1"),
                 IntentAmended(venue_ts=0, intent_id="i-1", revision=1, qty=D("0.020")))
    s, [a] = act(s)
    s = fold_all(s, CommandRejected(venue_ts=0, command_id=a.command_id,
                                    reason="edit not supported", code="-4028"))
    [c] = diff(s, CFG)
    assert isinstance(c, Cancel) and c.purpose == "replace"


def test_a_cancel_that_races_a_fill_completes_the_intent_and_says_so() -> None:
    s, _ = act(start(placed()))
    s = fold_all(s, CommandAcknowledged(venue_ts=0, command_id=f"{CID}:place", order_id="v1"),
                 IntentCanceled(venue_ts=0, intent_id="i-1"))
    s, [c] = act(s)
    assert isinstance(c, Cancel) and c.purpose == "cancel"
    s = fold_all(s, filled(CID, "0.010", "t1"),
                 CommandRejected(venue_ts=0, command_id=c.command_id, reason="Unknown order",
                                 code="-2011"))
    o = s.book.orders["i-1"]
    assert (o.status, o.error) == ("COMPLETED", "filled before the cancel took effect")
    assert diff(s, CFG) == []


def test_a_cancel_the_venue_cannot_place_is_resolved_by_query() -> None:
    s, _ = act(start(placed()))
    s = fold_all(s, CommandAcknowledged(venue_ts=0, command_id=f"{CID}:place", order_id="v1"),
                 IntentCanceled(venue_ts=0, intent_id="i-1"))
    s, [c] = act(s)
    s = fold_all(s, CommandRejected(venue_ts=0, command_id=c.command_id, reason="Unknown order",
                                    code="-2011"))
    [q] = diff(s, CFG)
    assert isinstance(q, Query)
    s = fold_all(s, report(CID, "canceled"))
    assert status(s) == "CANCELED" and diff(s, CFG) == []


def test_a_cancel_that_never_reached_the_venue_is_sent_again() -> None:
    s, _ = act(start(placed()))
    s = fold_all(s, CommandAcknowledged(venue_ts=0, command_id=f"{CID}:place", order_id="v1"),
                 IntentCanceled(venue_ts=0, intent_id="i-1"))
    s, [c] = act(s)
    # The daemon died after logging the cancel: its next life marks it unknown and asks.
    s = fold_all(s, CommandOutcomeUnknown(venue_ts=0, command_id=c.command_id,
                                          reason="no answer was logged"))
    [q] = diff(s, CFG)
    assert isinstance(q, Query)
    s = fold_all(s, report(CID, "new"))  # still there: the cancel never took effect
    s, [again] = act(s)
    assert isinstance(again, Cancel) and again.command_id == f"{CID}:cancel:2"
    s = fold_all(s, CommandAcknowledged(venue_ts=0, command_id=again.command_id))
    assert status(s) == "CANCELED" and diff(s, CFG) == []


def test_oco_a_partial_fill_cancels_the_other_member() -> None:
    s = start(placed("a", oco_group="g"), placed("b", side="sell", price=D("61000.0"),
                                                 oco_group="g"))
    s, _ = act(s)
    s = fold_all(s, CommandAcknowledged(venue_ts=0, command_id="ek-a-0:place", order_id="v1"),
                 CommandAcknowledged(venue_ts=0, command_id="ek-b-0:place", order_id="v2"),
                 filled("ek-a-0", "0.001", "t1"))
    [c] = diff(s, CFG)
    assert isinstance(c, Cancel) and (c.intent_id, c.purpose) == ("b", "oco")
    s, _ = act(s)
    s = fold_all(s, CommandAcknowledged(venue_ts=0, command_id=c.command_id))
    o = s.book.orders["b"]
    assert (o.status, o.error) == ("CANCELED",
                                   "canceled: another intent of its OCO group filled")
    assert status(s, "a") == "ACTIVE"  # the filled member keeps working its remainder


def test_a_halt_cancels_working_orders_and_places_nothing() -> None:
    from events.control import TradingHalted

    s, _ = act(start(placed("a")))
    s = fold_all(s, CommandAcknowledged(venue_ts=0, command_id="ek-a-0:place", order_id="v1"),
                 placed("b"), TradingHalted(venue_ts=0, reason="test"))
    [c] = diff(s, CFG)
    assert isinstance(c, Cancel) and (c.intent_id, c.purpose) == ("a", "halt")


def test_the_venue_canceling_an_ioc_leaves_the_intent_canceled_with_the_reason() -> None:
    s, _ = act(start(placed(time_in_force="IOC")))
    s = fold_all(s, CommandAcknowledged(venue_ts=0, command_id=f"{CID}:place", order_id="v1"),
                 report(CID, "expired"))
    o = s.book.orders["i-1"]
    assert (o.status, o.error) == ("CANCELED", "canceled by the venue (expired)")


def test_a_report_of_an_unknown_client_order_id_changes_nothing() -> None:
    s = start(placed())
    assert fold_all(s, report("someone-else", "new")).book == s.book


# --- the property -------------------------------------------------------------------------


class ModelVenue:
    """A slow venue: a command takes effect and its answer comes at once, a round later,
    or never (a timeout: the kernel logs an unknown outcome); or the command never
    reaches it (the daemon died between logging and sending it, or the connection
    dropped first): the outcome is unknown and nothing happened. Some working orders get
    part fills each round. Its books count every order placed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.placed: list[str] = []
        self.open: dict[str, tuple[D, D]] = {}  # cid -> (qty, filled)
        self.trades = itertools.count(1)
        self.late: list[Event] = []
        self.closed: dict[str, str] = {}  # cid -> "canceled" | "filled"
        self.prices: dict[str, D | None] = {}

    def execute(self, cmd: Event) -> list[Event]:
        if isinstance(cmd, PlaceOrder | AmendOrder | CancelOrder) and self.rng.random() < 0.1:
            return [CommandOutcomeUnknown(venue_ts=0, command_id=cmd.command_id,
                                          reason="never sent")]
        answers = self._execute(cmd)
        roll = self.rng.random()
        if roll < 0.2:
            self.late += answers
            return []
        if roll < 0.3 and not isinstance(cmd, CommandRejected):
            return [CommandOutcomeUnknown(venue_ts=0, command_id=cmd.command_id,  # type: ignore[union-attr]
                                          reason="no answer in time")]
        return answers

    def due(self) -> list[Event]:
        out, self.late = self.late, []
        return out

    def _execute(self, cmd: Event) -> list[Event]:
        match cmd:
            case PlaceOrder():
                self.placed.append(cmd.client_order_id)
                self.open[cmd.client_order_id] = (cmd.qty, D(0))
                self.prices[cmd.client_order_id] = cmd.price
                return [CommandAcknowledged(venue_ts=0, command_id=cmd.command_id,
                                            order_id=cmd.client_order_id)]
            case AmendOrder():
                if cmd.client_order_id not in self.open:  # filled or canceled meanwhile
                    return [CommandRejected(venue_ts=0, command_id=cmd.command_id,
                                            reason="Unknown order", code="-2011")]
                qty, done = self.open[cmd.client_order_id]
                self.open[cmd.client_order_id] = (max(cmd.qty or qty, done), done)
                if cmd.price is not None:
                    self.prices[cmd.client_order_id] = cmd.price
                return [CommandAcknowledged(venue_ts=0, command_id=cmd.command_id)]
            case CancelOrder():
                if self.open.pop(cmd.client_order_id, None) is not None:
                    self.closed[cmd.client_order_id] = "canceled"
                else:
                    return [CommandRejected(venue_ts=0, command_id=cmd.command_id,
                                            reason="Unknown order", code="-2011")]
                return [CommandAcknowledged(venue_ts=0, command_id=cmd.command_id)]
            case CommandRejected():
                return []
        raise AssertionError(cmd)

    def trade(self) -> list[Event]:
        out: list[Event] = []
        for cid, (qty, done) in sorted(self.open.items()):
            if self.rng.random() < 0.3:
                q = min(qty - done, D("0.001") * self.rng.randint(1, 10))
                if q > 0:
                    out.append(filled(cid, str(q), f"t{next(self.trades)}"))
                    done += q
                    self.open[cid] = (qty, done)
                if done >= qty:
                    del self.open[cid]
                    self.closed[cid] = "filled"
        return out

    def query(self, cid: str) -> Event:
        if cid in self.open:
            return report(cid, "new", qty=str(self.open[cid][0]),
                          price=str(self.prices[cid]))
        if cid in self.closed:
            return report(cid, self.closed[cid])
        return OrderNotFound(venue_ts=0, symbol="BTCUSDT", client_order_id=cid)


@st.composite
def scripts(draw: st.DrawFn) -> list[tuple[str, int, int]]:
    """(what, intent number, amount) steps: place, amend, cancel."""
    return draw(st.lists(st.tuples(st.sampled_from(["place", "place", "amend", "cancel"]),
                                   st.integers(0, 5), st.integers(1, 20)), max_size=40))


@settings(max_examples=200, deadline=None)
@given(scripts(), st.integers(0, 2**32), st.booleans())
def test_random_intents_converge_and_nothing_is_placed_twice(
    script: list[tuple[str, int, int]], seed: int, edits: bool
) -> None:
    cfg = msgspec.structs.replace(CFG, venue_edits=edits)
    rng = random.Random(seed)
    venue = ModelVenue(rng)
    s = start()
    for what, n, amount in script:
        intent_id = f"i{n}"
        intent = s.book.intents.get(intent_id)
        ev: Event | None = None
        if what == "place" and intent is None:
            ev = placed(intent_id, qty=D("0.001") * amount, price=D("60000.0") + amount)
        elif what == "amend" and intent is not None:
            order = s.book.orders[intent_id]
            if not intent.cancel_requested and order.status not in FINAL and \
                    D("0.001") * (amount + 10) > order.filled_qty:
                ev = IntentAmended(venue_ts=0, intent_id=intent_id,
                                   revision=intent.revision + 1, qty=D("0.001") * (amount + 10))
        elif what == "cancel" and intent is not None and not intent.cancel_requested:
            ev = IntentCanceled(venue_ts=0, intent_id=intent_id)
        if ev is not None and admit(s, ev) is None:
            s = fold_all(s, ev)
        s = round_trip(s, venue, cfg)
    # Bounded: every intent converges within a few rounds, but a place lost on the way
    # waits out the venue's window (`place_window_ns`: 60 rounds at a second of event
    # time each) before it fails.
    for _ in range(80):
        s = round_trip(s, venue, cfg, trade=False)
    assert diff(s, cfg) == []
    assert len(venue.placed) == len(set(venue.placed))  # no client order id placed twice
    for intent_id, order in s.book.orders.items():
        intent = s.book.intents[intent_id]
        assert order.status in FINAL or (order.status == "ACTIVE"
                                         and order.order_revision == intent.revision), order
        if intent.cancel_requested:  # or its place never reached the venue
            assert order.status in ("CANCELED", "COMPLETED", "FAILED")
    # the kernel's view of each live order is the venue's
    live = {o.client_order_id for o in s.book.orders.values() if o.status == "ACTIVE"}
    assert live == set(venue.open)


def round_trip(s: AccountState, venue: ModelVenue, cfg: DiffConfig, trade: bool = True
               ) -> AccountState:
    for action in diff(s, cfg):
        if isinstance(action, Query):
            s = fold_all(s, venue.query(action.client_order_id))
            continue
        cmd = command_event(s, action, 0)
        s = fold_all(s, cmd)  # logged before it is sent
        s = fold_all(s, *venue.execute(cmd))
    s = fold_all(s, *venue.due())
    if trade:
        s = fold_all(s, *venue.trade())
    return s
