"""Fixtures for tests that run several real server processes.

Each test gets the session's Postgres database (rows wiped afterwards), a Redis
server of its own and a shared ``SECRET_KEY``; nodes are ``authserver serve``
processes started by the test. ``CLUSTER_PHASE_SECONDS`` (default 2) sets how
long each load phase of the fault-injection test lasts; ``scripts/cluster``
runs the long version.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from authserver.context import Context
from authserver.db import transaction
from tests.cluster.harness import RedisServer
from tests.conftest import PASSWORD, _wipe, make_settings

PHASE_SECONDS = float(os.environ.get("CLUSTER_PHASE_SECONDS", "2"))


@dataclass
class Cluster:
    """What the nodes share: database, Redis, secret key; plus a Context to arrange rows."""

    ctx: Context
    redis: RedisServer
    database_url: str
    secret_key: str
    workdir: Path

    def env(self, *, issuer: str, database_url: str | None = None, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
        env.update({
            "AUTHSERVER_ISSUER": issuer,
            "AUTHSERVER_DATABASE_URL": database_url or self.database_url,
            "AUTHSERVER_REDIS_URL": self.redis.url,
            "AUTHSERVER_REDIS_PREFIX": self.ctx.settings.redis_prefix,
            "AUTHSERVER_SECRET_KEY": self.secret_key,
            "AUTHSERVER_ARGON2_TIME_COST": "1",
            "AUTHSERVER_ARGON2_MEMORY_COST": "8",
            "AUTHSERVER_ARGON2_PARALLELISM": "1",
            "AUTHSERVER_RATE_LIMITS": "off",
            "AUTHSERVER_LOG_LEVEL": "warning",
            "AUTHSERVER_LOG_FORMAT": "json",
        })
        env.update(extra)
        return env

    def make_user(self, username: str = "alice") -> None:
        from authserver.accounts.service import create_user

        with transaction(self.ctx.sessions) as session:
            create_user(session, self.ctx.passwords, username=username, password=PASSWORD,
                        email=f"{username}@example.com", roles=None, name="Alice Example")

    def make_client(self, **kw: Any) -> tuple[str, str]:
        from authserver.clients.service import create_client

        kw.setdefault("client_name", "Cluster RP")
        kw.setdefault("redirect_uris", ["https://rp.example.com/cb"])
        kw.setdefault("grant_types", ["authorization_code", "refresh_token", "client_credentials", "password"])
        kw.setdefault("scope", "openid profile email offline_access")
        kw.setdefault("skip_consent", True)
        with transaction(self.ctx.sessions) as session:
            new = create_client(session, self.ctx.box, **kw)
            assert new.client_secret is not None
            return new.client.client_id, new.client_secret


@pytest.fixture
def cluster(postgres_url: str, tmp_path: Path) -> Iterator[Cluster]:
    secret_key = secrets.token_urlsafe(48)
    redis = RedisServer(tmp_path)
    redis.start()
    keys_dir = tmp_path / "arrange-keys"
    keys_dir.mkdir(mode=0o700)
    settings = make_settings(
        database_url=postgres_url,
        redis_url=None,
        redis_prefix=f"authserver-cluster:{secrets.token_hex(6)}:",
        keys_dir=keys_dir,
        data_dir=tmp_path / "arrange-data",
        secret_key=make_settings().secret_key.__class__(secret_key),
    )
    ctx = Context(settings)
    try:
        yield Cluster(ctx, redis, postgres_url, secret_key, tmp_path)
    finally:
        redis.stop()
        _wipe(ctx)
        ctx.close()
