"""(a) The fold alone: decode + fold + project, no I/O.

The pipeline is what the writer does for a batch and what a replay does (less the
projection): JSON bytes -> Event -> AccountState, and an AccountSnapshotV2 projected
with the previous one so unchanged reconcile rules are reused. Two rows: a snapshot
per event (every state settled and reconciled, as the writer did before this session),
and a snapshot per batch of `BATCH` events folded through one `kernel.state.Draft`, K's
valuations settled once for it (what `Writer.ingest` of a batch that size does and
publishes). The stages are then timed
one at a time, chunk by chunk, to show which limits the whole; the fold both ways.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench import workload
from bench.measure import Measurement, Stopwatch
from events.codec import decode_logged as decode
from events.codec import encode
from kernel.reconcile import ReconcileConfig
from kernel.snapshot import AccountSnapshotV2, project
from kernel.state import GENESIS, AccountState, Draft, fold, settled

STAGE_CHUNK = 10_000
BATCH = 1_000  # as bench.stores' batches for Writer.ingest


def encoded(n: int, seed: int) -> list[bytes]:
    return [encode(e) for e in workload.events(n, seed)]


def pipeline(blobs: Sequence[bytes], cfg: ReconcileConfig, every: int = 1) -> Measurement:
    """Decode and fold every blob; project every `every`-th state and the last."""
    watch = Stopwatch()
    state = GENESIS
    snap: AccountSnapshotV2 | None = None
    n = len(blobs)
    with watch.running():
        if every == 1:
            for seq, blob in enumerate(blobs, 1):
                state = fold(state, decode(blob), seq)
                snap = project(state, cfg, snap)
        else:  # as the writer folds a batch: one draft, settled and projected at its end
            draft = Draft(state)
            for seq, blob in enumerate(blobs, 1):
                draft.fold(decode(blob), seq)
                if seq % every == 0 or seq == n:
                    snap = project(settled(draft.state()), cfg, snap)
    assert snap is not None and snap.seq == n
    label = ("fold: decode + fold + project" if every == 1 else
             f"fold: decode + fold, project per {every:,} (published)")
    return Measurement("a", label, n, watch.wall, watch.cpu)


def stages(blobs: Sequence[bytes], cfg: ReconcileConfig) -> list[Measurement]:
    """Decode alone; fold alone (of decoded events); project alone, as the time of
    fold + project less the time of fold over the same events. No stage keeps the
    states it makes: holding thousands of them makes the cyclic GC run thousands of
    times and inflates the stage being timed."""
    decoding, folding, both, batched = Stopwatch(), Stopwatch(), Stopwatch(), Stopwatch()
    state: AccountState = GENESIS
    snap: AccountSnapshotV2 | None = None
    for lo in range(0, len(blobs), STAGE_CHUNK):
        chunk = blobs[lo : lo + STAGE_CHUNK]
        with decoding.running():
            evs = [decode(b) for b in chunk]
        start = state
        with batched.running():
            draft = Draft(state)
            for i, ev in enumerate(evs, 1):
                draft.fold(ev, draft.seq + 1)
                if i % BATCH == 0:
                    draft = Draft(settled(draft.state()))
            state = settled(draft.state())
        state = start
        with folding.running():
            for ev in evs:
                state = fold(state, ev, state.seq + 1)
        state = start  # the fold is pure: fold the chunk again, projecting each state
        with both.running():
            for ev in evs:
                state = fold(state, ev, state.seq + 1)
                snap = project(state, cfg, snap)
    n = len(blobs)
    return [
        Measurement("a", "decode alone", n, decoding.wall, decoding.cpu),
        Measurement("a", "fold alone", n, folding.wall, folding.cpu, "settled per event"),
        Measurement("a", f"fold alone, settled per {BATCH:,}", n, batched.wall, batched.cpu,
                    "as the writer and the replay fold"),
        Measurement("a", "project alone", n, both.wall - folding.wall, both.cpu - folding.cpu,
                    "(fold + project) − fold"),
    ]
