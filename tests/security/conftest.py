"""Fixtures for the security modules: fast Argon2 settings and counter stores.

The ``redis`` store uses ``AUTHSERVER_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/15``) under a random key prefix and deletes only its
own keys. It is skipped when Redis is unreachable, unless
``AUTHSERVER_TEST_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
import redis

from authserver.security.throttle import CounterStore, MemoryStore, RedisStore
from authserver.settings import Secret, Settings

REDIS_URL = os.environ.get("AUTHSERVER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("AUTHSERVER_TEST_REQUIRE_SERVICES") == "1"


@pytest.fixture
def settings() -> Settings:
    return Settings(
        secret_key=Secret("s" * 48),
        argon2_time_cost=1,
        argon2_memory_cost=8,
        argon2_parallelism=1,
    )


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis at {REDIS_URL} is required but unreachable: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable")
    yield client
    client.close()


@pytest.fixture
def redis_store(redis_client: redis.Redis) -> Iterator[RedisStore]:
    prefix = f"authserver-test:{secrets.token_hex(8)}:"
    yield RedisStore(redis_client, prefix)
    keys = list(redis_client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> CounterStore:
    if request.param == "memory":
        return MemoryStore()
    return request.getfixturevalue("redis_store")
