"""Prometheus metrics (docs/metrics.md): off unless ``METRICS_PORT`` is set.

The code records through :data:`record`, a :class:`Recorder` whose methods do
nothing until :func:`enable` replaces it with :class:`PrometheusRecorder`; the
hot paths therefore pay one attribute lookup and one empty call when metrics
are off. ``authserver serve`` with ``METRICS_PORT`` puts ``prometheus_client``
in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, one set of memory-mapped
files per worker) before any worker starts, and serves the sum over every
worker on ``METRICS_HOST:METRICS_PORT`` from the supervising process
(:func:`serve`), a listener separate from the public one. The signing-key
gauges are read from the database at each scrape (:class:`KeyCollector`), so
they are exact whatever worker rotated.

Labels are bounded: the route is the matched path template (``/register/{client_id}``),
never the raw URL (an unknown path is ``unmatched``); grant types, buckets and
components come from our own vocabulary.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"


class Recorder:
    """Does nothing: metrics are off."""

    enabled = False

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request answered (``route`` is the path template)."""

    def token_issued(self, grant_type: str) -> None:
        """A token response (RFC 6749 §5.1) for ``grant_type``."""

    def reuse_detected(self, kind: str) -> None:
        """A refresh token reused (RFC 9700 §4.14.2) or a code replayed (RFC 6749 §4.1.2)."""

    def lockout(self, kind: str) -> None:
        """An account or an address was locked (``kind``: ``account`` or ``ip``)."""

    def rate_limited(self, bucket: str) -> None:
        """A request refused with 429 by a budget (``bucket``)."""

    def redis_fallback(self, component: str) -> None:
        """Redis could not be reached and ``component`` was served without it."""


class PrometheusRecorder(Recorder):
    enabled = True

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.requests = Counter("authserver_http_requests", "HTTP requests answered, by route template and status",
                                ["route", "method", "status"])
        self.latency = Histogram("authserver_http_request_duration_seconds",
                                 "Time to answer an HTTP request, by route template",
                                 ["route", "method"], buckets=LATENCY_BUCKETS)
        self.tokens = Counter("authserver_tokens_issued", "Token responses, by grant type", ["grant_type"])
        self.reuse = Counter("authserver_token_reuse_detected",
                             "Refresh tokens reused or authorization codes replayed (the family is revoked)",
                             ["kind"])
        self.lockouts = Counter("authserver_lockouts", "Accounts or addresses locked after failed logins",
                                ["kind"])
        self.refusals = Counter("authserver_rate_limit_refusals", "Requests refused with 429, by budget",
                                ["bucket"])
        self.fallbacks = Counter("authserver_redis_fallbacks",
                                 "Operations served without Redis because it could not be reached",
                                 ["component"])
        # labels() takes a lock and builds a tuple; the children of a route are few, keep them
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._grants: dict[str, Any] = {}

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route, method))
            if len(self._children) < 10_000:
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def token_issued(self, grant_type: str) -> None:
        child = self._grants.get(grant_type)
        if child is None:
            child = self._grants[grant_type] = self.tokens.labels(grant_type)  # grant types are few
        child.inc()

    def reuse_detected(self, kind: str) -> None:
        self.reuse.labels(kind).inc()

    def lockout(self, kind: str) -> None:
        self.lockouts.labels(kind).inc()

    def rate_limited(self, bucket: str) -> None:
        self.refusals.labels(bucket).inc()

    def redis_fallback(self, component: str) -> None:
        self.fallbacks.labels(component).inc()


record: Recorder = Recorder()
_enable_lock = threading.Lock()


def enable() -> Recorder:
    """Record from now on in this process (idempotent). In multiprocess mode
    :data:`MULTIPROC_ENV` must be set before this first imports ``prometheus_client``."""
    global record
    with _enable_lock:
        if not record.enabled:
            record = PrometheusRecorder()
    return record


def prepare_multiprocess_dir() -> Path:
    """Before the workers start: a fresh directory for their metric files.

    ``PROMETHEUS_MULTIPROC_DIR`` when the operator set it (emptied of earlier runs'
    ``*.db`` files, as ``prometheus_client`` requires), else a private temporary one,
    removed at exit. Must run before anything imports ``prometheus_client``."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return path
    path = Path(tempfile.mkdtemp(prefix="authserver-metrics."))
    os.environ[MULTIPROC_ENV] = str(path)
    import atexit

    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


class KeyCollector:
    """Signing-key rotation state, read from ``signing_keys`` at each scrape (no
    private key is decrypted): the active key's age, when the next key activates
    (a pending key) or when staged rotation will add one, and the count by status."""

    def __init__(self, engine: Engine, *, rotation_interval: int, publish_delay: int, retain_seconds: int) -> None:
        self.engine = engine
        self.rotation_interval = rotation_interval
        self.publish_delay = publish_delay
        self.retain_seconds = retain_seconds

    def collect(self) -> Iterator[Any]:
        import sqlalchemy as sa
        from prometheus_client.core import GaugeMetricFamily

        from authserver.keys.models import StoredKey

        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                rows = [(int(c.timestamp()), int(a.timestamp())) for c, a in conn.execute(
                    sa.select(StoredKey.created_at, StoredKey.activates_at))]
        except sa.exc.SQLAlchemyError:
            up = GaugeMetricFamily("authserver_signing_keys_readable", "1 when the keys table could be read")
            up.add_metric([], 0)
            yield up
            return
        now = time.time()
        rows.sort(key=lambda r: (r[1], r[0]))
        started = [r for r in rows if r[1] <= now]
        active = started[-1] if started else None
        pending = [r for r in rows if r[1] > now]
        by_status = {"active": 1 if active else 0, "pending": len(pending),
                     "published": 0}
        for index, row in enumerate(rows):
            if row is active or row in pending:
                continue
            successor = rows[index + 1] if index + 1 < len(rows) else None
            if successor is not None and now < successor[1] + self.retain_seconds:
                by_status["published"] += 1
        up = GaugeMetricFamily("authserver_signing_keys_readable", "1 when the keys table could be read")
        up.add_metric([], 1)
        yield up
        keys = GaugeMetricFamily("authserver_signing_keys", "Signing keys by status", labels=["status"])
        for status, count in by_status.items():
            keys.add_metric([status], count)
        yield keys
        if active is not None:
            age = GaugeMetricFamily("authserver_signing_key_active_age_seconds",
                                    "Seconds since the active signing key began to sign")
            age.add_metric([], now - active[1])
            yield age
        nxt = self._next_rotation(active, pending)
        if nxt is not None:
            gauge = GaugeMetricFamily(
                "authserver_signing_key_next_rotation_timestamp_seconds",
                "When the signing key changes next: a pending key activates, or staged rotation adds one")
            gauge.add_metric([], nxt)
            yield gauge

    def _next_rotation(self, active: tuple[int, int] | None, pending: list[tuple[int, int]]) -> float | None:
        if pending:
            return float(pending[0][1])
        if active is None or self.rotation_interval <= 0:
            return None
        # KeyStore.rotate_if_due adds a key once this is reached (a maintenance pass later at most)
        return float(active[1] + self.rotation_interval - self.publish_delay)


def registry(collectors: Iterable[Any] = ()) -> Any:
    """The scrape registry: every worker's files summed, plus ``collectors``."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    reg = CollectorRegistry()
    MultiProcessCollector(reg)  # type: ignore[no-untyped-call]
    for collector in collectors:
        reg.register(collector)
    return reg


def serve(host: str, port: int, collectors: Iterable[Any] = ()) -> Any:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread of this process."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=registry(collectors))
    return server
