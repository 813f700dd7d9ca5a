"""kernel/daemon/metrics.py, scraped over real loopback HTTP and parsed as Prometheus text."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kernel.daemon.metrics import Metrics
from kernel.reconcile import Check, ReconcileResult, Rule, Verdict

FAMILIES = {
    "exkernel_events": "counter", "exkernel_dedup_skipped": "counter",
    "exkernel_conflicts": "counter", "exkernel_quarantined": "counter",
    "exkernel_queue_depth": "gauge", "exkernel_commit_batch_size": "histogram",
    "exkernel_commit_seconds": "histogram", "exkernel_fold_seconds": "histogram",
    "exkernel_reconcile_verdict": "gauge", "exkernel_venue_connected": "gauge",
    "exkernel_reconnects": "counter", "exkernel_last_venue_report_age_seconds": "gauge",
    "exkernel_last_seq": "gauge", "exkernel_last_resync_success_age_seconds": "gauge",
    "exkernel_resync_failures": "counter",
}


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    m = Metrics()
    yield m
    m.close()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.status == 200
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_every_instrument_is_exposed_with_its_type(metrics: Metrics) -> None:
    port = metrics.serve("127.0.0.1", 0)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        families = {f.name: f.type for f in text_string_to_metric_families(r.read().decode())}
    assert families.items() >= FAMILIES.items()


def test_a_scrape_reads_what_the_daemon_recorded(metrics: Metrics) -> None:
    port = metrics.serve("127.0.0.1", 0)
    assert port > 0
    metrics.events_total.labels(kind="order_filled").inc(2)
    metrics.events_total.labels(kind="mark_price").inc()
    metrics.dedup_skipped_total.inc(3)
    metrics.conflicts_total.inc()
    metrics.quarantined_total.inc(4)
    metrics.queue_depth.set(17)
    metrics.commit_batch_size.observe(10)
    metrics.commit_batch_size.observe(300)
    metrics.commit_seconds.observe(0.002)
    metrics.fold_seconds.observe(0.00003)
    metrics.venue_connected.set(1)
    metrics.reconnects_total.inc()
    metrics.last_venue_report_age_seconds.set(1.5)
    metrics.last_seq.set(12345)
    metrics.last_resync_success_age_seconds.set(0.25)
    metrics.resync_failures_total.labels(step="funding").inc(2)
    got = scrape(port)
    assert got[("exkernel_events_total", (("kind", "order_filled"),))] == 2
    assert got[("exkernel_events_total", (("kind", "mark_price"),))] == 1
    assert got[("exkernel_dedup_skipped_total", ())] == 3
    assert got[("exkernel_conflicts_total", ())] == 1
    assert got[("exkernel_quarantined_total", ())] == 4
    assert got[("exkernel_queue_depth", ())] == 17
    assert got[("exkernel_commit_batch_size_bucket", (("le", "10.0"),))] == 1
    assert got[("exkernel_commit_batch_size_bucket", (("le", "200.0"),))] == 1
    assert got[("exkernel_commit_batch_size_bucket", (("le", "500.0"),))] == 2
    assert got[("exkernel_commit_batch_size_sum", ())] == 310
    assert got[("exkernel_commit_seconds_count", ())] == 1
    assert got[("exkernel_fold_seconds_bucket", (("le", "0.0001"),))] == 1
    assert got[("exkernel_venue_connected", ())] == 1
    assert got[("exkernel_reconnects_total", ())] == 1
    assert got[("exkernel_last_venue_report_age_seconds", ())] == 1.5
    assert got[("exkernel_last_seq", ())] == 12345
    assert got[("exkernel_last_resync_success_age_seconds", ())] == 0.25
    assert got[("exkernel_resync_failures_total", (("step", "funding"),))] == 2


def _check(rule: Rule, verdict: Verdict) -> Check:
    return Check(rule=rule, subject="BTCUSDT", verdict=verdict, kernel=None, venue=None,
                 reason="test")


def test_reconcile_verdicts_are_ranked_per_rule(metrics: Metrics) -> None:
    port = metrics.serve("127.0.0.1", 0)
    metrics.record_reconcile(ReconcileResult(
        verdict=Verdict.ERROR, expires_at=None,
        r1=(_check("R1", Verdict.OK),), r2=(), r3=(_check("R3", Verdict.WARN),
                                                   _check("R3", Verdict.ERROR)),
        r4=(_check("R4", Verdict.UNKNOWN),), r5=(_check("R5", Verdict.WARN),), r6=(),
    ))
    got = scrape(port)
    ranks = {rule: got[("exkernel_reconcile_verdict", (("rule", rule),))]
             for rule in ("R1", "R2", "R3", "R4", "R5", "R6")}
    assert ranks == {"R1": 0, "R2": 0, "R3": 3, "R4": 1, "R5": 2, "R6": 0}


def test_two_daemons_in_one_process_do_not_share_a_registry() -> None:
    a, b = Metrics(), Metrics()
    a.last_seq.set(1)
    assert b.registry.get_sample_value("exkernel_last_seq") == 0
    assert a.registry.get_sample_value("exkernel_last_seq") == 1


def test_a_taken_port_raises_and_serving_twice_is_refused(metrics: Metrics) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(OSError):
            Metrics().serve("127.0.0.1", busy.getsockname()[1])
    metrics.serve("127.0.0.1", 0)
    with pytest.raises(RuntimeError):
        metrics.serve("127.0.0.1", 0)


def test_close_stops_serving(metrics: Metrics) -> None:
    port = metrics.serve("127.0.0.1", 0)
    scrape(port)
    metrics.close()
    with pytest.raises(urllib.error.URLError):
        scrape(port)


def test_an_ipv6_host_is_served(metrics: Metrics) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        port = metrics.serve("::1", 0)
    except OSError:
        pytest.skip("::1 is not configured here")
    with urllib.request.urlopen(f"http://[::1]:{port}/metrics", timeout=5) as r:
        assert r.status == 200
        assert "exkernel_last_seq" in r.read().decode()


def test_a_server_loop_that_dies_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from structlog.testing import capture_logs

    from kernel.daemon import metrics as module

    def broken(self: object, poll_interval: float = 0.5) -> None:
        raise OSError("select failed")

    monkeypatch.setattr(module._Server, "serve_forever", broken)
    m = Metrics()
    with capture_logs() as logs:
        m.serve("127.0.0.1", 0)
        assert m._thread is not None
        m._thread.join(timeout=5)
    m._server = None  # nothing to shut down: its loop is gone
    m.close()
    assert [(e["event"], e["log_level"]) for e in logs] == [("metrics server stopped", "error")]
