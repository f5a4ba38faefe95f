"""``/health``: ok on both backends; Redis down is "degraded" (200) and the
server keeps working on in-process counters; no database is 503."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from authserver.app import create_app
from authserver.context import Context
from tests.conftest import ISSUER

CLOSED_PORT = "redis://127.0.0.1:1/0"


def test_health_ok(client, settings):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    expected_redis = "ok" if settings.redis_url else "not_configured"
    assert r.json() == {"status": "ok", "database": "ok", "redis": expected_redis}


@pytest.fixture
def degraded(settings: Any) -> Iterator[tuple[Context, TestClient]]:
    context = Context(dataclasses.replace(settings, redis_url=CLOSED_PORT))
    context.keys.ensure_key()
    with TestClient(create_app(context.settings, context=context), base_url=ISSUER) as test_client:
        yield context, test_client


def test_redis_down_is_degraded_not_fatal(degraded):
    _, test_client = degraded
    r = test_client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "degraded", "database": "ok", "redis": "unavailable"}
    r = test_client.get("/jwks.json")
    assert r.status_code == 200 and r.json()["keys"]
    r = test_client.get("/.well-known/openid-configuration")
    assert r.status_code == 200


def test_lockout_falls_back_to_process_counters(degraded, settings):
    context, _ = degraded
    assert context.lockout.register_failure("x", "1.2.3.4") == 0
    assert context.counters.degraded is True
    for _ in range(settings.lockout_account_threshold - 2):
        context.lockout.register_failure("x", "1.2.3.4")
    assert context.lockout.register_failure("x", "1.2.3.4") > 0  # still protected while degraded
    assert context.lockout.check("x", "1.2.3.4") > 0


def test_token_endpoint_works_with_redis_down(degraded, make_client):
    _, test_client = degraded
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    r = test_client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))
    assert r.status_code == 200, r.text


def test_database_down_is_503(settings):
    broken = dataclasses.replace(settings, database_url="postgresql+psycopg://postgres@127.0.0.1:1/none")
    context = Context(broken)  # no key either: keys live in the unreachable database
    with TestClient(create_app(broken, context=context), base_url=ISSUER) as test_client:
        r = test_client.get("/health")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable" and r.json()["database"] == "unavailable"
