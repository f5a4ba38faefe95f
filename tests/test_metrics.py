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


@pytest.mark.parametrize(("name", "raw"), [("AUTHSERVER_METRICS_PORT", "70000"),
                                           ("AUTHSERVER_METRICS_HOST", "metrics.internal")])
def test_bad_metrics_settings_stop_start_up(tmp_path, name, raw):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"AUTHSERVER_KEYS_DIR": str(tmp_path), "AUTHSERVER_DATA_DIR": str(tmp_path),
                           "AUTHSERVER_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}", name: raw})
