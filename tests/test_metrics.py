"""Prometheus metrics (docs/metrics.md), scraped from a live ``authserver serve --workers 2``.

Two set-ups. ``sqlite``: the embedded SQLite database with a Redis URL nobody listens
on, so every counter falls back to the workers' own memory (and is counted as a Redis
fallback). ``postgres``: a database of its own on the real Postgres and the real Redis
(a prefix of its own), where counters are shared and nothing falls back. The rate limit
and lockout thresholds are tiny: the requests, split over two workers, are still
refused and lock the account. Each counter must move after the real requests that
cause it, summed over both workers, on the metrics port only.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from authserver.settings import Settings, SettingsError
from tests.conftest import PG_URL, REDIS_URL, REQUIRE_SERVICES
from tests.serving import free_port, serve

pytestmark = pytest.mark.slow

PASSWORD = "a long passphrase nobody guesses"


class Live:
    def __init__(self, base: str, metrics: str, env: dict[str, str], backend: str) -> None:
        self.base, self.metrics, self.env, self.backend = base, metrics, env, backend

    def seed(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """Two clients and a user, through the services on the server's database (no CLI
        process: each costs seconds on a loaded machine)."""
        from authserver.accounts.service import create_user
        from authserver.clients.service import create_client
        from authserver.context import Context
        from authserver.db import transaction

        ctx = Context(Settings.from_env(self.env))
        try:
            with transaction(ctx.sessions) as db:
                cc = create_client(db, ctx.box, client_name="api", redirect_uris=[],
                                   grant_types=["client_credentials"], scope="api")
                app = create_client(db, ctx.box, client_name="app", redirect_uris=[],
                                    grant_types=["password", "refresh_token"], scope="openid offline_access")
                create_user(db, ctx.passwords, username="alice", email="alice@example.com", password=PASSWORD)
        finally:
            ctx.close()
        return ((cc.client.client_id, cc.client_secret or ""), (app.client.client_id, app.client_secret or ""))

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        r = httpx.get(self.metrics, timeout=10)
        assert r.status_code == 200, r.text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def own_postgres() -> Iterator[str]:
    """A database of this test's own (the live server's workers write to it)."""
    import sqlalchemy as sa

    from authserver.db import create_engine, migrate

    admin_url = sa.engine.make_url(PG_URL)
    name = f"authserver_metrics_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        if REQUIRE_SERVICES:
            pytest.fail(f"Postgres is required but unreachable: {exc}")
        pytest.skip(f"Postgres unreachable: {exc}")
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url, pool_size=1)
    migrate(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    backend = str(request.param)
    port, metrics_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("AUTHSERVER_") and name != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({
        "AUTHSERVER_DATABASE_URL": f"sqlite:///{tmp_path / 'auth.db'}", "AUTHSERVER_KEYS_DIR": str(keys),
        "AUTHSERVER_DATA_DIR": str(tmp_path / "data"), "AUTHSERVER_ISSUER": base,
        "AUTHSERVER_LOG_LEVEL": "error", "AUTHSERVER_METRICS_PORT": str(metrics_port),
        "AUTHSERVER_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nobody listens: fallbacks
        "AUTHSERVER_RATE_LIMIT_INTROSPECTION": "1/60", "AUTHSERVER_LOCKOUT_ACCOUNT_THRESHOLD": "2",
        "AUTHSERVER_ARGON2_MEMORY_COST": "8", "AUTHSERVER_ARGON2_TIME_COST": "1",
    })
    if backend == "postgres":
        env.update({
            "AUTHSERVER_DATABASE_URL": request.getfixturevalue("own_postgres"),
            "AUTHSERVER_REDIS_URL": REDIS_URL, "AUTHSERVER_REDIS_PREFIX": f"metrics-{secrets.token_hex(4)}:",
            "AUTHSERVER_SECRET_KEY": secrets.token_urlsafe(48),
        })
    with serve(port, env):
        yield Live(base, f"http://127.0.0.1:{metrics_port}/metrics", env, backend)


def test_counters_move_after_real_requests_summed_over_workers(live):
    cc_auth, app_auth = live.seed()
    before = live.scrape()

    def post(path: str, auth: tuple[str, str], **data: str) -> httpx.Response:
        return httpx.post(f"{live.base}{path}", data=data, auth=auth, timeout=10)  # a new connection each

    for _ in range(3):
        assert post("/token", cc_auth, grant_type="client_credentials").status_code == 200
    first = post("/token", app_auth, grant_type="password", username="alice", password=PASSWORD,
                 scope="openid offline_access").json()["refresh_token"]
    assert post("/token", app_auth, grant_type="refresh_token", refresh_token=first).status_code == 200
    reused = post("/token", app_auth, grant_type="refresh_token", refresh_token=first)
    assert reused.json()["error"] == "invalid_grant"
    # threshold 2 (per worker's memory when Redis is away): ten failures lock the account
    for _ in range(10):
        assert post("/token", app_auth, grant_type="password", username="alice",
                    password="wrong").status_code in (400, 429)
    statuses = [post("/introspect", cc_auth, token="x").status_code for _ in range(6)]
    assert 429 in statuses  # 1 a minute (per worker without Redis): six requests over two workers
    assert httpx.get(f"{live.base}/no/such/page-7f3a").status_code == 404
    assert httpx.get(f"{live.base}/register/some-client-9b1c").status_code == 401
    assert httpx.get(f"{live.base}/metrics").status_code == 404  # never on the public listener
    after = live.scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("authserver_tokens_issued_total", grant_type="client_credentials") == 3
    assert moved("authserver_tokens_issued_total", grant_type="password") == 1
    assert moved("authserver_tokens_issued_total", grant_type="refresh_token") == 1
    assert moved("authserver_token_reuse_detected_total", kind="refresh_token") == 1
    assert moved("authserver_lockouts_total", kind="account") >= 1
    assert moved("authserver_rate_limit_refusals_total", bucket="introspection") == statuses.count(429)
    if live.backend == "sqlite":  # Redis is away
        assert moved("authserver_redis_fallbacks_total", component="counters") >= 1
        assert moved("authserver_redis_fallbacks_total", component="token_state") >= 1
    else:  # the real Redis: nothing falls back
        assert moved("authserver_redis_fallbacks_total", component="counters") == 0
        assert moved("authserver_redis_fallbacks_total", component="token_state") == 0
    ok_tokens = moved("authserver_http_requests_total", route="/token", method="POST", status="200")
    assert ok_tokens == 5
    assert moved("authserver_http_request_duration_seconds_count", route="/token", method="POST") == 16
    assert moved("authserver_http_requests_total", route="unmatched", method="GET", status="404") == 2  # and /metrics
    assert moved("authserver_http_requests_total", route="/register/{client_id}", method="GET", status="401") == 1
    labels = {v for (_name, pairs) in after for _k, v in pairs}
    assert not any("7f3a" in v or "9b1c" in v for v in labels)  # raw paths never become labels
    assert value(after, "authserver_signing_keys", status="active") == 1
    assert 0 <= value(after, "authserver_signing_key_active_age_seconds") < 3600
    assert value(after, "authserver_signing_key_next_rotation_timestamp_seconds") > time.time()


@pytest.mark.parametrize(("name", "raw"), [("AUTHSERVER_METRICS_PORT", "70000"),
                                           ("AUTHSERVER_METRICS_HOST", "metrics.internal")])
def test_bad_metrics_settings_stop_start_up(tmp_path, name, raw):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"AUTHSERVER_KEYS_DIR": str(tmp_path), "AUTHSERVER_DATA_DIR": str(tmp_path),
                           "AUTHSERVER_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}", name: raw})
