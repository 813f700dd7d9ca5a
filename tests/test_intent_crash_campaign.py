"""`kill -9` the daemon at random moments while a strategy works hundreds of intents,
restart it, many times over (issue 8). The sim venue runs in its own process
(`adapters.sim.server`), so its account and orders outlive every crash, as a real venue's
do. A driver in this process places, amends and cancels intents through the API
(`kernel.client`) while the daemon lives; then the daemon is killed mid-flight.

Afterwards, against the venue's own books:

* no venue order is duplicated (the sim refuses a client order id used before, so a
  second place would be a `DUPLICATE_CLIENT_ORDER_ID` rejection in the log: there is
  none) and none is lost (the venue's open orders are exactly the kernel's ACTIVE ones);
* every fill is booked once (K's positions and wallets are the venue's);
* every intent converges (final, or ACTIVE at its own revision, and the diff is empty);
* the locks add up to the working orders.

EXKERNEL_INTENT_CRASH_ROUNDS (default 6) and EXKERNEL_INTENT_CRASH_SEED (default 3).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from kernel.client import ApiError, Client, ClientError
from tests.campaign_support import ROOT, ask, exk, start_daemon, wait_ready

ROUNDS = int(os.environ.get("EXKERNEL_INTENT_CRASH_ROUNDS", "6"))
SEED = int(os.environ.get("EXKERNEL_INTENT_CRASH_SEED", "3"))
TOKEN = "campaign-token"

CONFIG = """
[kernel]
state_dir = "{state}"
resync_every_s = 0.5
status_every_s = 0.5
checkpoint_every = 300

[metrics]
enabled = false

[venue]
kind = "sim-remote"
url = "{url}"

[venue.sim]
seed = {seed}
tick_s = 0.05
funding_interval_s = 3600.0

[venue.sim.trader]
enabled = false

[reconciler]
tick_s = 0.1
command_timeout_s = 2.0
orders_per_s = 200.0
burst = 200

[reconciler.diff]
place_window_ns = 3_000_000_000

[reconciler.kill_switch]
halt_on_rules = []
"""










async def drive(sock: Path, rng: random.Random, round_: int, seconds: float) -> int:
    """Place, amend and cancel intents through the API for `seconds` (the daemon may die
    under it at any moment); return how many calls went through."""
    done = 0
    try:
        async with Client.connect(unix_path=sock, token=TOKEN, reconnect=False) as client:
            snap = await client.get_snapshot()
            mark = snap.k.marks.get("BTCUSDT", Decimal(60000))
            end = time.monotonic() + seconds
            n = 0
            while time.monotonic() < end:
                n += 1
                intent_id = f"r{round_}-{n}"
                roll = rng.random()
                try:
                    if roll < 0.15:
                        await client.place_intent(intent_id=intent_id, symbol="BTCUSDT",
                                                  side=rng.choice(["buy", "sell"]),
                                                  order_type="market", qty="0.001")
                    else:
                        side = rng.choice(["buy", "sell"])
                        off = Decimal(rng.randint(1, 40))
                        price = mark - off if side == "buy" else mark + off
                        await client.place_intent(intent_id=intent_id, symbol="BTCUSDT",
                                                  side=side, order_type="limit",
                                                  qty="0.002", price=str(price))
                    listed = await client.list_intents(("ACTIVE",))
                    if listed.intents and rng.random() < 0.5:
                        target = rng.choice(listed.intents)
                        if rng.random() < 0.5:
                            await client.cancel_intent(target.intent_id)
                        else:
                            p = (target.price or mark) + rng.choice([-3, 3])
                            await client.amend_intent(target.intent_id, target.revision + 1,
                                                      price=str(p))
                    done += 1
                except ApiError:
                    pass  # a refusal (a stale revision, a conflict) is the kernel's to make
    except (ClientError, OSError):
        pass  # the daemon was killed under us
    return done


def test_kill_9_while_intents_are_worked_places_nothing_twice_and_loses_nothing(
    tmp_path: Path
) -> None:
    cfg = tmp_path / "kernel.toml"
    cfg.write_text(CONFIG.format(state=tmp_path / "state", url="ws://127.0.0.1:1", seed=SEED))
    server = subprocess.Popen([sys.executable, "-m", "adapters.sim.server", "--config",
                               str(cfg)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("listening "), line
        url = f"ws://127.0.0.1:{line.split()[1]}"
        cfg.write_text(CONFIG.format(state=tmp_path / "state", url=url, seed=SEED))
        campaign(tmp_path, cfg, url)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)


def campaign(tmp_path: Path, cfg: Path, url: str) -> None:
    db, sock = tmp_path / "state" / "events.db", tmp_path / "state" / "api.sock"
    rng = random.Random(SEED)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    calls = 0
    for round_ in range(ROUNDS):
        daemon = start_daemon(cfg, notify, EXKERNEL_API_TOKEN=TOKEN)
        wait_ready(notify, timeout=30)
        life = rng.uniform(0.5, 2.5)
        driver = asyncio.run(asyncio.wait_for(drive(sock, rng, round_, life), life + 10))
        calls += driver
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
        check = exk("verify", "--db", db)
        assert check.returncode == 0, f"round {round_} (seed {SEED}): {check.stdout}"
    assert calls > 50, calls

    # the last life: cancel everything still working, let it converge, stop cleanly
    daemon = start_daemon(cfg, notify, EXKERNEL_API_TOKEN=TOKEN)
    wait_ready(notify, timeout=30)

    async def wind_down() -> None:
        async with Client.connect(unix_path=sock, token=TOKEN) as client:
            for _ in range(100):
                listed = await client.list_intents()
                working = [i for i in listed.intents
                           if i.status not in ("FAILED", "COMPLETED", "CANCELED")]
                for i in working:
                    if i.status == "ACTIVE":
                        await client.cancel_intent(i.intent_id)
                if not working:
                    return
                await asyncio.sleep(0.2)
            raise AssertionError(f"intents did not converge: {working}")

    asyncio.run(wind_down())
    asyncio.run(ask(url, "quiet"))
    time.sleep(1.5)  # resyncs after the venue went quiet
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=20) == 0
    notify.close()

    snap = json.loads(exk("snapshot", "--db", db, "--json").stdout)
    truth = asyncio.run(ask(url, "truth"))
    orders = truth["orders"]
    assert isinstance(orders, list) and len(orders) == len(set(orders)), "a cid placed twice"
    log = exk("tail", "--db", db, "--json", "--kind", "command_rejected", "-n", "100000").stdout
    assert "DUPLICATE_CLIENT_ORDER_ID" not in log
    assert truth["open_orders"] == [], "a venue order the kernel lost track of"
    statuses = {i["status"] for i in snap["intents"]}
    assert statuses <= {"FAILED", "COMPLETED", "CANCELED"}, statuses
    assert len(snap["intents"]) > 50
    placed = {o["client_order_id"] for o in snap["orders"] if o["client_order_id"]}
    placed |= {c for o in snap["orders"] for c in o["superseded"]}
    assert set(orders) <= placed, "the venue has an order of ours the log never recorded"
    k = snap["k"]
    rounding = {a: Decimal(v) for a, v in truth["rounding"].items()}  # type: ignore[attr-defined]
    assert {a: Decimal(v["capital"]) + rounding.get(a, Decimal(0))
            for a, v in k["assets"].items() if Decimal(v["capital"])} == {
        a: Decimal(v) for a, v in truth["wallets"].items() if Decimal(v)}  # type: ignore[attr-defined]
    assert {s: [Decimal(p["qty"]), Decimal(p["avg_open"])] for s, p in k["positions"].items()} \
        == {s: [Decimal(q), Decimal(a)] for s, (q, a) in truth["positions"].items()}  # type: ignore[attr-defined]
    assert truth["fills"] > 0
    bad = [c for c in snap["reconcile"]["checks"] if c["verdict"] != "OK"]
    assert not bad, bad
