"""Shared fixtures: every app-level test runs on SQLite and on Postgres + Redis.

* ``backend`` is parametrised ``sqlite`` / ``postgres``. The Postgres variant
  uses a database of its own (``authserver_test_<random>``) created for the
  session, migrated once with Alembic, and dropped at the end; Redis db 15 (or
  ``AUTHSERVER_TEST_REDIS_URL``) under a random key prefix, whose keys are
  deleted after each test. Nothing shared is ever flushed or stopped.
* Without Postgres/Redis the ``postgres`` variant is skipped, unless
  ``AUTHSERVER_TEST_REQUIRE_SERVICES=1`` (CI), where it fails.
* Each test starts from empty tables (rows are deleted after the test): the
  protocol tests drive concurrent requests on separate connections, which a
  rolled-back outer transaction could not show.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from starlette.testclient import TestClient

from authserver.app import create_app
from authserver.context import Context
from authserver.db import Base, create_engine, import_models, migrate, transaction
from authserver.settings import Secret, Settings

PG_URL = os.environ.get("AUTHSERVER_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("AUTHSERVER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("AUTHSERVER_TEST_REQUIRE_SERVICES") == "1"
ISSUER = "http://127.0.0.1:8000"
PASSWORD = "correct horse battery staple"

import_models()


def _unavailable(what: str, exc: Exception) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (AUTHSERVER_TEST_REQUIRE_SERVICES=1) but unreachable: {exc}")
    pytest.skip(f"{what} unreachable: {exc}")


def write_key_files(directory: Path, activates_at: int | None = None) -> str:
    """A ``<kid>.pem`` + ``<kid>.json`` pair as earlier versions kept keys; returns the kid."""
    import json

    from joserfc.jwk import RSAKey

    from authserver.keys.service import new_private_pem

    if activates_at is None:
        activates_at = int(time.time())
    pem = new_private_pem()
    kid = RSAKey.import_key(pem).thumbprint()
    fd = os.open(directory / f"{kid}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    meta = {"kid": kid, "alg": "RS256", "created_at": activates_at, "activates_at": activates_at}
    (directory / f"{kid}.json").write_text(json.dumps(meta))
    return kid


#: what names an egress proxy to the server's outbound requests (security/outbound.py)
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY",
                   "https_proxy", "http_proxy", "all_proxy", "no_proxy",
                   "REQUEST_METHOD")  # set, urllib ignores HTTP_PROXY (a CGI request could set it)


@pytest.fixture
def no_ambient_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests whose server reaches a site on this machine: no proxy of the machine's
    environment in between (a test that wants one sets it)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One key file, imported into each test's empty table by ``ensure_key`` (cheaper
    than generating an RSA key per test)."""
    path = tmp_path_factory.mktemp("keys")
    path.chmod(0o700)
    write_key_files(path)
    return path


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    engine = create_engine(url, pool_size=2)
    migrate(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    admin_url = sa.engine.make_url(PG_URL)
    name = f"authserver_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        _unavailable("Postgres", exc)
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url, pool_size=2)
    migrate(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable("Redis", exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = dict(
        issuer=ISSUER,
        secret_key=Secret("test-secret-key-" + "x" * 40),
        argon2_time_cost=1,
        argon2_memory_cost=8,
        argon2_parallelism=1,
        rate_limits=False,
        log_format="json",
        key_activation_delay=0,
        client_cache_ttl=0,  # tests change clients between requests; the cache has its own test
        maintenance_interval=0,  # no background pass racing a test; maintenance has its own tests
    )
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module (or with indirect parametrisation) to change settings."""
    return {}


@pytest.fixture
def settings(request: pytest.FixtureRequest, backend: str, keys_dir: Path, tmp_path: Path,
             settings_overrides: dict[str, Any]) -> Settings:
    if backend == "sqlite":
        db_url = request.getfixturevalue("sqlite_url")
        redis = None
    else:
        db_url = request.getfixturevalue("postgres_url")
        redis = request.getfixturevalue("redis_url")
    return make_settings(
        database_url=db_url,
        redis_url=redis,
        redis_prefix=f"authserver-test:{secrets.token_hex(6)}:",
        keys_dir=keys_dir,
        data_dir=tmp_path / "data",
        **settings_overrides,
    )


def _wipe(ctx: Context) -> None:
    """Empty every table, then restore what the migrations seed (the built-in roles)."""
    from authserver.roles.service import seed_built_in_roles

    with ctx.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    with transaction(ctx.sessions) as session:
        seed_built_in_roles(session)
    if ctx.redis is not None:
        keys = list(ctx.redis.scan_iter(match=ctx.settings.redis_prefix + "*", count=1000))
        if keys:
            ctx.redis.delete(*keys)


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = Context(settings)
    context.keys.ensure_key()
    yield context
    _wipe(context)
    context.close()


@dataclass
class Clock:
    """A stopped wall clock for ``Context.clock``: it moves only when a test says so."""

    now: float

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(ctx: Context) -> Clock:
    """The context's clock, stopped at the current second; ``clock.advance(5)``
    makes the next login five seconds later (``auth_time``, ``max_age``)."""
    ctx.clock = stopped = Clock(float(int(time.time())))
    return stopped


@pytest.fixture
def app(ctx: Context) -> Any:
    return create_app(ctx.settings, context=ctx)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url=ISSUER, follow_redirects=False) as c:
        yield c


@pytest.fixture
def db(ctx: Context) -> Iterator[Any]:
    """A session for arranging and inspecting rows (committed on exit)."""
    with transaction(ctx.sessions) as session:
        yield session


def ensure_roles(session: Any, names: list[str]) -> None:
    """Create the roles that do not exist yet (no permissions), so tests can name any role."""
    from authserver.roles.service import create_role, get_role

    for name in names:
        if get_role(session, name) is None:
            create_role(session, name, actor="test")


@pytest.fixture
def make_user(ctx: Context) -> Any:
    from authserver.accounts.service import create_user

    def make(username: str = "alice", password: str = PASSWORD, email: str | None = None,
             roles: list[str] | None = None, name: str | None = "Alice Example") -> Any:
        with transaction(ctx.sessions) as session:
            ensure_roles(session, roles or [])
            return create_user(session, ctx.passwords, username=username, password=password,
                               email=email or f"{username}@example.com", roles=roles, name=name)

    return make


@pytest.fixture
def make_client(ctx: Context) -> Any:
    """Create a client; returns ``(client_id, client_secret)`` (secret None if public)."""
    from authserver.clients.service import create_client

    def make(**kw: Any) -> tuple[str, str | None]:
        kw.setdefault("client_name", "Test App")
        kw.setdefault("redirect_uris", ["https://rp.example.com/cb"])
        kw.setdefault("grant_types", ["authorization_code", "refresh_token"])
        kw.setdefault("scope", "openid profile email offline_access roles")
        with transaction(ctx.sessions) as session:
            new = create_client(session, ctx.box, **kw)
            return new.client.client_id, new.client_secret

    return make
