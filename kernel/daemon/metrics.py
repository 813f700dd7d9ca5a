"""Prometheus metrics: one `Metrics` per daemon, with its own registry.

The daemon updates the instruments from its event loop; `serve()` exposes them over HTTP
from a background thread (prometheus_client's WSGI app and threading server), so a scrape
never waits on the loop and the loop never waits on a scrape. Names are prefixed
`exkernel_`.

The thread is ours rather than `start_http_server`'s so that it polls for shutdown every
`POLL_S`, not every 0.5 s: `close()` waits for that poll, and so does the daemon's exit.
"""

from __future__ import annotations

import socket
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from kernel.reconcile import ReconcileResult

_log = structlog.get_logger("exkernel.metrics")

#: Events per commit: 1 when idle, up to kernel.batch_max under load.
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
#: Seconds, from a tenth of a millisecond (a small commit) to seconds (a stalled disk).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5, 5.0)
#: How often the server's thread looks for a shutdown (the longest `close()` waits).
POLL_S = 0.05


class _Server(ThreadingWSGIServer):
    address_family = socket.AF_INET


class _Server6(ThreadingWSGIServer):
    address_family = socket.AF_INET6


def _serve(server: WSGIServer) -> None:
    """The server's loop, which says so if it dies: scrapes then fail, the daemon runs on
    (its metrics are not worth stopping trading for)."""
    try:
        server.serve_forever(poll_interval=POLL_S)
    except Exception:
        _log.error("metrics server stopped", exc_info=True)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """A scrape is not worth a line on stderr (the daemon's log is on stdout)."""


class Metrics:
    """The daemon's instruments. `reconcile_verdict{rule}` is the worst verdict's rank:
    0 OK, 1 UNKNOWN, 2 WARN, 3 ERROR (`Verdict.rank`)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        p = "exkernel_"
        self.events_total = Counter(p + "events", "Events committed to the log, by kind",
                                    ["kind"], registry=r)
        self.dedup_skipped_total = Counter(p + "dedup_skipped",
                                           "Facts already in the log, skipped", registry=r)
        self.conflicts_total = Counter(p + "conflicts", "Facts with a known dedup key but a"
                                       " different payload", registry=r)
        self.quarantined_total = Counter(p + "quarantined", "Payloads quarantined as invalid",
                                         registry=r)
        self.queue_depth = Gauge(p + "queue_depth", "Events waiting for the writer",
                                 registry=r)
        self.commit_batch_size = Histogram(p + "commit_batch_size", "Events per commit",
                                           buckets=BATCH_BUCKETS, registry=r)
        self.commit_seconds = Histogram(p + "commit_seconds", "Seconds per batch: append,"
                                        " commit and fold", buckets=LATENCY_BUCKETS, registry=r)
        self.fold_seconds = Histogram(p + "fold_seconds", "Seconds spent folding a batch",
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.reconcile_verdict = Gauge(p + "reconcile_verdict", "Worst verdict of each rule:"
                                       " 0 OK, 1 UNKNOWN, 2 WARN, 3 ERROR", ["rule"], registry=r)
        self.venue_connected = Gauge(p + "venue_connected", "1 while the venue session is up",
                                     registry=r)
        self.reconnects_total = Counter(p + "reconnects", "Venue disconnections followed by a"
                                        " reconnect attempt", registry=r)
        self.last_venue_report_age_seconds = Gauge(
            p + "last_venue_report_age_seconds",
            "Seconds since the venue last reported balances or positions", registry=r)
        self.last_resync_success_age_seconds = Gauge(
            p + "last_resync_success_age_seconds",
            "Seconds since a resync with the venue last completed", registry=r)
        self.resync_failures_total = Counter(p + "resync_failures", "Resyncs that failed,"
                                             " by the step that failed", ["step"], registry=r)
        self.last_seq = Gauge(p + "last_seq", "Sequence number of the last committed event",
                              registry=r)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def record_reconcile(self, result: ReconcileResult) -> None:
        """Set `reconcile_verdict{rule}` for R1–R7: the worst check's rank, 0 with none."""
        for rule, checks in result.by_rule:
            rank = max((c.verdict.rank for c in checks), default=0)
            self.reconcile_verdict.labels(rule=rule).set(rank)

    def serve(self, host: str = "127.0.0.1", port: int = 9464) -> int:
        """Serve /metrics on host:port from a daemon thread; return the bound port (an
        ephemeral one for port 0). Raises OSError if the address is taken. Once only."""
        if self._server is not None:
            raise RuntimeError("metrics are already being served")
        server_class = _Server6 if ":" in host else _Server
        server = make_server(host, port, make_wsgi_app(self.registry), server_class,
                             handler_class=_Quiet)
        thread = threading.Thread(target=_serve, args=(server,), name="metrics", daemon=True)
        thread.start()
        self._server, self._thread = server, thread
        return int(server.server_port)

    def close(self) -> None:
        """Stop serving (no-op if not serving)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
