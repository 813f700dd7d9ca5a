"""Human-readable text for operators: one line per event, a snapshot summary, intents."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from events.codec import Event
from kernel.public import IntentOut, OrderOut
from kernel.snapshot import AccountSnapshotV2

_SKIP = {"kind", "venue_ts", "recv_ts"}


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")


def event_line(seq: int, event: Event) -> str:
    """`seq  venue time  kind  field=value ...`, None fields left out."""
    fields = msgspec.to_builtins(event)
    parts = []
    for name, value in fields.items():
        if name in _SKIP or value is None or value == [] or value is False:
            continue
        if isinstance(value, list | tuple | dict):
            value = msgspec.json.encode(value).decode()
        parts.append(f"{name}={value}")
    kind = type(event).__struct_config__.tag
    return f"{seq:>8}  {iso(event.venue_ts)}  {kind:<24} {' '.join(parts)}"


def _d(v: Decimal | None) -> str:
    """A venue figure, `?` when never reported."""
    return "?" if v is None else f"{v.normalize():f}" if v else "0"


def _value(v: Decimal | str | None) -> str:
    return v if isinstance(v, str) else _d(v)


def _k(m: dict[str, Decimal], key: str) -> str:
    """A kernel figure: K computes every value, so an absent key is zero."""
    return _d(m.get(key, Decimal(0)))


def snapshot_summary(snap: AccountSnapshotV2) -> str:
    k, e, r = snap.k, snap.e, snap.reconcile
    out = [
        f"seq {snap.seq}  after {snap.event_kind or '-'} {snap.source_event_id or ''}".rstrip(),
        f"event time {iso(snap.event_ts)}  verdict {r.verdict.value}"
        f"  connected {'?' if snap.connected is None else snap.connected}"
        f"  halted {snap.halted}  quarantined {snap.quarantined}",
        "",
        "K (kernel ledger)",
    ]
    for a in sorted(k.wallets.keys() | k.unrealized_pnl.keys()):
        out.append(
            f"  {a:<6} capital {_k(k.wallets, a)}  realized {_k(k.realized_pnl, a)}"
            f"  fees {_k(k.fees, a)}  funding {_k(k.funding, a)}"
            f"  unrealized {_k(k.unrealized_pnl, a)}  equity {_k(k.equity, a)}"
            f"  used margin {_k(k.used_margin, a)}  available {_k(k.available_margin, a)}"
            f"  drawdown {_k(k.drawdown, a)}"
        )
    for key, p in k.positions.items():
        lev = k.leverage.get(p.symbol, Decimal(1))
        out.append(f"  position {key}  qty {_d(p.qty)}  avg {_d(p.avg_open)}"
                   f"  mark {_d(k.marks.get(p.symbol))}  leverage {_d(lev)}")
    for sym, h in k.holdings.items():
        out.append(f"  holding {sym}  qty {_d(h.qty)}  avg cost {_d(h.avg_open)}")
    out.append("")
    out.append("E (venue reports)")
    if e.balances is None:
        out.append("  balances: not reported yet")
    else:
        for a, b in e.balances.items():
            out.append(f"  {a:<6} wallet {_d(b.wallet)}  available {_d(b.available)}")
        if e.margin is not None:
            m = e.margin
            out.append(f"  margin ({m.asset}) used {_d(m.used)}  maintenance {_d(m.maintenance)}"
                       f"  available {_d(m.available)}")
    if e.positions is None:
        out.append("  positions: not reported yet")
    else:
        for key, rp in e.positions.items():
            out.append(f"  position {key}  qty {_d(rp.qty)}  entry {_d(rp.entry_price)}"
                       f"  mark {_d(rp.mark_price)}  unrealized {_d(rp.unrealized_pnl)}")
    out.append("")
    out.append("Reconcile")
    for c in r.checks:
        out.append(f"  {c.rule} {c.subject:<22} {c.verdict.value:<7} {c.reason:<24}"
                   f" K {_value(c.kernel)}  E {_value(c.venue)}")
    if not r.checks:
        out.append("  nothing to compare yet")
    return "\n".join(out) + "\n"


def _opt(v: Decimal | None) -> str:
    return "-" if v is None else f"{v:f}"


def intent_line(i: IntentOut) -> str:
    """`grid-1  ACTIVE  BTCUSDT buy limit 0.010 @ 60000.0  rev 0  strategy grid ...`."""
    at = f" @ {i.price:f}" if i.price is not None else ""
    trigger = f" trigger {i.trigger_price:f}" if i.trigger_price is not None else ""
    flags = "".join(f" {name}" for name, on in (("reduce-only", i.reduce_only),
                                                ("post-only", i.post_only)) if on)
    oco = f" oco {i.oco_group}" if i.oco_group else ""
    return (f"{i.intent_id:<24} {i.status:<11} {i.symbol} {i.side} {i.order_type}"
            f" {i.qty:f}{at}{trigger} {i.time_in_force}{flags}{oco}  rev {i.revision}"
            f"  strategy {i.strategy}  updated {iso(i.updated_ts)}")


def order_line(o: OrderOut) -> str:
    """The venue order working an intent, indented under it."""
    return (f"    order {o.client_order_id}  venue {o.venue_order_id or '-'}"
            f" {o.venue_status or '-'}  filled {o.filled_qty:f}"
            f" avg {_opt(o.avg_fill_price)}" + (f"  error {o.error}" if o.error else ""))
