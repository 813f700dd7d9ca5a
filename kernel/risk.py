"""Pre-trade limits an intent passes before it is logged (beyond the venue's own rules in
`kernel.intents.check`): the largest order, the largest position, how many intents may
work at once, and whether the account can fund it. Each refusal names the rule and the
numbers. Nothing is ever rounded into a different order here: an intent passes as it is,
or is refused.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from events.orders import IntentAmended, IntentPlaced
from kernel.intents import FINAL
from kernel.ledger import notional
from kernel.locks import LockConfig, simulate
from kernel.money import ZERO
from kernel.state import AccountState


class RiskConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    #: Per symbol: the largest quantity of one intent, and the largest position an intent
    #: may lead to (|position ± qty|), in contracts. A symbol not named is not limited.
    max_order_qty: dict[str, Decimal] = {}
    max_position: dict[str, Decimal] = {}
    #: The largest notional of one intent, in its settlement asset (None: no limit).
    max_order_notional: Decimal | None = None
    #: How many intents may work at once (None: no limit).
    max_open_intents: int | None = None
    #: Refuse an intent whose margin and fee K's available margin, less what working
    #: intents already lock, cannot cover (kernel.locks.simulate).
    require_funding: bool = True
    locks: LockConfig = LockConfig()


def check(state: AccountState, event: IntentPlaced | IntentAmended, cfg: RiskConfig
          ) -> tuple[str, str] | None:
    """None, or (field, reason) for the first limit `event` breaks."""
    if isinstance(event, IntentPlaced):
        symbol, side, qty, price, trigger = (event.symbol, event.side, event.qty, event.price,
                                             event.trigger_price)
        reduce_only, extra = event.reduce_only, event.qty
        working = sum(o.status not in FINAL for o in state.book.orders.values())
        if cfg.max_open_intents is not None and working >= cfg.max_open_intents:
            return "intent_id", (f"{working} intents are working: the limit is"
                                 f" {cfg.max_open_intents} (risk.max_open_intents)")
    else:
        old = state.book.intents[event.intent_id]
        symbol, side, reduce_only = old.symbol, old.side, old.reduce_only
        qty = event.qty if event.qty is not None else old.qty
        price = event.price if event.price is not None else old.price
        trigger = event.trigger_price if event.trigger_price is not None else old.trigger_price
        extra = max(qty - old.qty, ZERO)  # what the amend adds to lock and to the position
    limit = cfg.max_order_qty.get(symbol)
    if limit is not None and qty > limit:
        return "qty", f"qty {qty} is above the limit {limit} for {symbol} (risk.max_order_qty)"
    inst = state.instruments.get(symbol)
    at = price if price is not None else trigger if trigger is not None \
        else state.k.marks.get(symbol)
    if inst is not None and at is not None and cfg.max_order_notional is not None:
        n = notional(qty, inst, at)
        if n > cfg.max_order_notional:
            return "qty", (f"notional {_plain(n)} {inst.settle} is above the limit"
                           f" {cfg.max_order_notional} (risk.max_order_notional)")
    cap = cfg.max_position.get(symbol)
    if cap is not None and not reduce_only:
        held = sum((p.qty for p in state.k.positions.values() if p.symbol == symbol), ZERO)
        after = held + (qty if side == "buy" else -qty)
        if abs(after) > cap:
            return "qty", (f"the position in {symbol} would be {_plain(after)}, beyond the limit"
                           f" {cap} (risk.max_position)")
    if cfg.require_funding and not reduce_only and extra > 0:
        sim = simulate(state, cfg.locks, symbol, extra, price, trigger, False)
        if sim is not None and not sim.fundable:
            return "qty", (f"cannot be funded: it locks {_plain(sim.lock)} {sim.asset} and"
                           f" {_plain(sim.available_before)} is available after the working"
                           " intents' locks")
    return None


def _plain(x: Decimal) -> str:
    """A computed figure in a message: its value, without trailing zeros."""
    return f"{x.normalize():f}"
