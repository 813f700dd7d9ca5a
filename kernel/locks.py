"""Margin locked by working intents, after financepype's balance locks: an intent locks
the margin and fee it needs while it works; a fill uses part of the lock (the filled
part moves into K's position margin); a cancel or completion releases the rest; an
outcome the kernel does not know yet keeps the lock frozen (it may still fill).

Locks are computed from the intent book, not kept as a ledger of their own, so they can
never drift from the working orders: `locked(state)` is Σ over working intents of what
is left to fill, valued at the intent's price (its limit price, else its trigger, else
the mark), over the symbol's leverage, plus the taker fee on it. A reduce-only intent
locks nothing (it frees margin when it fills).

`simulate(state, ...)` says what one more intent would lock and what would be left
available, without changing anything; an intent that cannot be funded is refused by
the pre-trade gate with those numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import msgspec

from events.facts import InstrumentDefined
from kernel.intents import FINAL, IntentBook, OrderIntent, OrderState
from kernel.ledger import KLedger, notional
from kernel.money import ONE, ZERO, q18
from kernel.orders import remaining
from kernel.state import AccountState


class LockConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    #: The fee rate a lock reserves on what is left to fill (the venue's taker rate).
    fee_rate: Decimal = Decimal("0.0005")


class Lock(msgspec.Struct, frozen=True, kw_only=True):
    asset: str
    margin: Decimal
    fee: Decimal

    @property
    def total(self) -> Decimal:
        return self.margin + self.fee


class Simulation(msgspec.Struct, frozen=True, kw_only=True):
    """What an intent would do to the account, were it placed now."""

    asset: str
    #: Cash out when it opens (the fee; negative) and its notional at its price.
    opening_cash_flow: Decimal
    notional: Decimal
    #: The margin and fee it would lock.
    lock: Decimal
    available_before: Decimal
    available_after: Decimal

    @property
    def fundable(self) -> bool:
        return self.available_after >= 0


def _price(k: KLedger, symbol: str, price: Decimal | None,
           trigger: Decimal | None) -> Decimal | None:
    return price if price is not None else trigger if trigger is not None \
        else k.marks.get(symbol)


def lock_for(k: KLedger, inst: InstrumentDefined, qty: Decimal,
             price: Decimal | None, reduce_only: bool, cfg: LockConfig) -> Lock:
    if reduce_only or qty <= 0 or price is None:
        return Lock(asset=inst.settle, margin=ZERO, fee=ZERO)
    n = notional(qty, inst, price)
    leverage = k.leverage.get(inst.symbol, ONE)
    return Lock(asset=inst.settle, margin=q18(n / leverage), fee=q18(n * cfg.fee_rate))


def intent_lock(book: IntentBook, instruments: dict[str, InstrumentDefined], k: KLedger,
                intent: OrderIntent, cfg: LockConfig) -> Lock:
    inst = instruments[intent.symbol]
    qty = remaining(book, intent.intent_id)
    return lock_for(k, inst, qty, _price(k, intent.symbol, intent.price, intent.trigger_price),
                    intent.reduce_only, cfg)


def locked_in(book: IntentBook, instruments: dict[str, InstrumentDefined], k: KLedger,
              cfg: LockConfig) -> dict[str, Decimal]:
    """Margin and fee locked by the working intents of `book`, per settlement asset."""
    return _sum(book, instruments, k, cfg, book.orders)


class BookLocks:
    """`locked_in` split for a reader that values one book at many marks (the API's
    snapshot encoder): an intent with a limit or trigger price locks the same whatever
    the marks, so `fixed` is computed once per book, instruments and leverage; only the
    intents valued at the mark (`at_mark`) are summed again."""

    __slots__ = ("at_mark", "fixed", "key")

    def __init__(self, book: IntentBook, instruments: dict[str, InstrumentDefined],
                 k: KLedger, cfg: LockConfig) -> None:
        self.key = (book, instruments, k.leverage, cfg)
        working = {i: o for i, o in book.orders.items() if o.status not in FINAL}
        priced = {i: o for i, o in working.items()
                  if book.intents[i].price is not None
                  or book.intents[i].trigger_price is not None}
        self.fixed = _sum(book, instruments, k, cfg, priced)
        self.at_mark = [i for i in working if i not in priced]

    def valid_for(self, book: IntentBook, instruments: dict[str, InstrumentDefined],
                  k: KLedger, cfg: LockConfig) -> bool:
        kb, ki, kl, kc = self.key
        return kb is book and ki is instruments and kl is k.leverage and kc == cfg

    def locked(self, book: IntentBook, instruments: dict[str, InstrumentDefined],
               k: KLedger, cfg: LockConfig) -> dict[str, Decimal]:
        """What `locked_in(book, instruments, k, cfg)` gives (`valid_for` must hold)."""
        out = dict(self.fixed)
        for asset, amount in _sum(book, instruments, k, cfg,
                                  {i: book.orders[i] for i in self.at_mark}).items():
            out[asset] = out.get(asset, ZERO) + amount
        return out


def _sum(book: IntentBook, instruments: dict[str, InstrumentDefined], k: KLedger,
         cfg: LockConfig, orders: Mapping[str, OrderState]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for intent_id, order in orders.items():
        if order.status in FINAL:
            continue
        lock = intent_lock(book, instruments, k, book.intents[intent_id], cfg)
        if lock.total:
            out[lock.asset] = out.get(lock.asset, ZERO) + lock.total
    return out


def locked(state: AccountState, cfg: LockConfig) -> dict[str, Decimal]:
    """Margin and fee locked by working intents, per settlement asset."""
    return locked_in(state.book, state.instruments, state.k, cfg)


def available(state: AccountState, cfg: LockConfig, asset: str) -> Decimal:
    """K's available margin in `asset` less what the kernel's own working intents lock:
    the figure a strategy can trust before the venue confirms anything."""
    k = state.k
    free = k.available_margin.get(asset, k.wallets.get(asset, ZERO))
    return free - locked(state, cfg).get(asset, ZERO)


def simulate(state: AccountState, cfg: LockConfig, symbol: str, qty: Decimal,
             price: Decimal | None, trigger_price: Decimal | None,
             reduce_only: bool) -> Simulation | None:
    """None when the symbol is unknown or the intent has no price to value it at yet."""
    inst = state.instruments.get(symbol)
    at = _price(state.k, symbol, price, trigger_price)
    if inst is None or at is None:
        return None
    lock = lock_for(state.k, inst, qty, at, reduce_only, cfg)
    before = available(state, cfg, inst.settle)
    return Simulation(asset=inst.settle, opening_cash_flow=-lock.fee,
                      notional=notional(qty, inst, at), lock=lock.total,
                      available_before=before, available_after=before - lock.total)
