"""Durable revocation: the database is the record, Redis (or each process) a cache.

Every test runs on SQLite without Redis (the per-process cache, polled once a
second) and on Postgres + Redis (the shared cache, at once).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from authserver.app import create_app
from authserver.context import Context
from authserver.db import transaction
from authserver.security.throttle import connect_redis
from authserver.tokens import service as tokens_service
from authserver.tokens.cache import RedisTokenState
from authserver.tokens.models import RevokedToken, TokenCutoff
from tests.account_flows import csrf, login
from tests.conftest import ISSUER
from tests.flows import bearer, introspect, refresh, tokens, unverified

POLL = 1.05  # the per-process cache's bound (one second) and a little


def settle(ctx: Context) -> None:
    """Wait out the bound of the per-process cache; with Redis there is none."""
    if ctx.redis is None:
        time.sleep(POLL)


def flush_cache(ctx: Context) -> None:
    """What a Redis restart without persistence does to our keys (only ours: db 15 is shared)."""
    if ctx.redis is not None:
        keys = list(ctx.redis.scan_iter(match=ctx.settings.redis_prefix + "*"))
        if keys:
            ctx.redis.delete(*keys)


@pytest.fixture
def other(ctx: Context) -> Iterator[Context]:
    """Another process on the same database and Redis, with its own memory."""
    context = Context(ctx.settings)
    yield context
    context.close()


@pytest.fixture
def other_client(other: Context) -> Iterator[TestClient]:
    with TestClient(create_app(other.settings, context=other), base_url=ISSUER, follow_redirects=False) as c:
        yield c


def cc_client(make_client: Any, **kw: Any) -> tuple[str, str]:
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api", **kw)
    assert secret is not None
    return cid, secret


def cc_token(client: TestClient, cid: str, secret: str) -> str:
    r = client.post("/token", data={"grant_type": "client_credentials", "scope": "api"}, auth=(cid, secret))
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def active(client: TestClient, cid: str, secret: str, token: str) -> bool:
    return bool(introspect(client, cid, secret, token)["active"])


# -- item 1: the record and the cache ------------------------------------------------


def test_revoke_writes_the_record_before_answering(client, ctx, make_client):
    cid, secret = cc_client(make_client)
    token = cc_token(client, cid, secret)
    assert active(client, cid, secret, token)  # now cached as active
    assert client.post("/revoke", data={"token": token}, auth=(cid, secret)).status_code == 200
    with transaction(ctx.sessions) as db:
        row = db.get(RevokedToken, unverified(token)["jti"])
        assert row is not None and int(row.expires_at.timestamp()) == unverified(token)["exp"]
    assert not active(client, cid, secret, token)  # this process, at once


def test_a_cache_flush_or_restart_after_revoke_loses_nothing(client, ctx, make_client, other_client):
    cid, secret = cc_client(make_client)
    token = cc_token(client, cid, secret)
    keep = cc_token(client, cid, secret)
    client.post("/revoke", data={"token": token}, auth=(cid, secret))
    flush_cache(ctx)
    assert not active(client, cid, secret, token)
    assert active(client, cid, secret, keep)
    # a process started afterwards (empty memory) reads the record
    assert not active(other_client, cid, secret, token)
    assert active(other_client, cid, secret, keep)


def test_reuse_detection_is_recorded_and_survives_a_flush(client, ctx, make_user, make_client):
    make_user()
    cid, secret = make_client()
    body = tokens(client, cid, secret)
    rotated = refresh(client, cid, secret, body["refresh_token"]).json()
    assert refresh(client, cid, secret, body["refresh_token"]).json()["error"] == "invalid_grant"  # reuse
    flush_cache(ctx)
    with transaction(ctx.sessions) as db:
        recorded = set(db.scalars(sa.select(RevokedToken.jti)))
    assert unverified(rotated["access_token"])["jti"] in recorded
    for token in (body["access_token"], rotated["access_token"]):
        assert not active(client, cid, secret, token)


def test_another_process_sees_a_revocation_within_the_bound(client, ctx, make_client, other_client):
    cid, secret = cc_client(make_client)
    token = cc_token(client, cid, secret)
    assert active(other_client, cid, secret, token)  # the other process caches "active"
    client.post("/revoke", data={"token": token}, auth=(cid, secret))
    settle(ctx)
    assert not active(other_client, cid, secret, token)


def test_without_redis_the_checks_read_the_database(ctx, make_client, client, backend):
    if backend != "postgres":
        pytest.skip("the Redis variant")
    cid, secret = cc_client(make_client)
    revoked, kept = cc_token(client, cid, secret), cc_token(client, cid, secret)
    client.post("/revoke", data={"token": revoked}, auth=(cid, secret))
    down = connect_redis("redis://127.0.0.1:1/0", timeout=0.2)  # nothing listens there; as the app connects
    cache = RedisTokenState(down, ctx.settings.redis_prefix, ctx.settings.access_token_ttl)
    with transaction(ctx.sessions) as db:
        assert cache.is_inactive(db, unverified(revoked)) is True
        assert cache.is_inactive(db, unverified(kept)) is False
        # a revocation made while Redis is away is still recorded
        tokens_service.revoke_access_token(db, cache, unverified(kept)["jti"], unverified(kept)["exp"])
    assert not active(client, cid, secret, kept)
    down.close()


def test_requests_stay_off_the_event_loop_while_redis_does_not_answer(ctx, backend, monkeypatch):
    """``bridge.loop_allowed``: cache-only requests run on the loop only on Postgres with a
    Redis that answered lately; a failed Redis call keeps them in threads for a while, so
    an outage's timeouts never stop the loop."""
    from authserver.oauth import bridge
    from authserver.tokens import cache as cache_module

    assert bridge.loop_allowed(ctx) is (backend == "postgres")
    if backend != "postgres":
        return
    down = connect_redis("redis://127.0.0.1:1/0", timeout=0.2)  # nothing listens there; as the app connects
    cache = RedisTokenState(down, ctx.settings.redis_prefix, ctx.settings.access_token_ttl)
    monkeypatch.setattr(ctx, "revoked", cache)
    assert cache.answering() and bridge.loop_allowed(ctx)
    with transaction(ctx.sessions) as db:
        cache.not_before(db, [("client", "some-client")])
    assert not cache.answering() and not bridge.loop_allowed(ctx)
    monkeypatch.setattr(cache_module, "QUIET_AFTER_FAILURE", 0.0)
    assert cache.answering()
    down.close()


# -- item 2: users and clients -------------------------------------------------------


def cli(ctx: Context, *argv: str) -> subprocess.CompletedProcess[str]:
    """The real console script: a process of its own that exits after the command."""
    s = ctx.settings
    env = {**os.environ, "AUTHSERVER_DATABASE_URL": s.database_url, "AUTHSERVER_REDIS_URL": s.redis_url or "",
           "AUTHSERVER_REDIS_PREFIX": s.redis_prefix, "AUTHSERVER_SECRET_KEY": s.secret_key.get(),
           "AUTHSERVER_ISSUER": s.issuer, "AUTHSERVER_KEYS_DIR": str(s.keys_dir), "AUTHSERVER_LOG_LEVEL": "warning"}
    script = Path(sys.executable).with_name("authserver")
    result = subprocess.run([str(script), *argv], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


def test_users_disable_in_a_cli_process_ends_tokens_without_refresh_tokens(client, ctx, make_user,
                                                                          make_client):
    make_user()
    cid, secret = make_client(grant_types=["authorization_code"])
    body = tokens(client, cid, secret, scope="openid profile")
    assert "refresh_token" not in body
    assert client.get("/userinfo", headers=bearer(body["access_token"])).status_code == 200
    assert active(client, cid, secret, body["access_token"])
    cli(ctx, "users", "disable", "alice")
    settle(ctx)
    assert not active(client, cid, secret, body["access_token"])
    assert client.get("/userinfo", headers=bearer(body["access_token"])).status_code == 401
    with transaction(ctx.sessions) as db:
        [cutoff] = db.scalars(sa.select(TokenCutoff)).all()
        assert (cutoff.subject_kind, cutoff.subject_id) == ("user", unverified(body["access_token"])["sub"])


def test_a_cutoff_spares_tokens_issued_after_it_in_the_same_second(client, ctx, make_user, make_client):
    """iat is whole seconds: the cutoff is the next second, and a token issued after
    it gets its iat lifted to the cutoff instead of being caught."""
    user = make_user()
    cid, secret = make_client()
    before = tokens(client, cid, secret, scope="openid")["access_token"]
    with transaction(ctx.sessions) as db:
        tokens_service.invalidate_subject(db, ctx.revoked, user.id)
    after = tokens(client, cid, secret, scope="openid")["access_token"]
    assert not active(client, cid, secret, before)
    assert active(client, cid, secret, after)
    with transaction(ctx.sessions) as db:
        cutoff = db.get(TokenCutoff, ("user", user.id))
        assert cutoff is not None and unverified(after)["iat"] >= cutoff.not_before > unverified(before)["iat"]
    assert client.get("/userinfo", headers=bearer(after)).status_code == 200


def test_a_client_cutoff_spares_a_client_credentials_token_of_the_same_second(backend, client, ctx, make_client,
                                                                            monkeypatch):
    """On Postgres + Redis client_credentials runs on the event loop (``bridge.call``); a
    token asked for in the second of its client's cutoff must wait for the next second,
    which the loop never does: the request runs again in a worker thread (NeedsThread)
    and its token is active."""
    from authserver.oauth import bridge

    where: list[bool] = []
    real = bridge._run_in_session

    def spy(c: Any, fn: Any) -> Any:
        where.append(bridge.on_the_loop.get())
        return real(c, fn)

    cid, secret = cc_client(make_client)
    resource, resource_secret = cc_client(make_client, introspect_any=True)
    cc_token(client, cid, secret)  # the client is cached now, as in steady use
    monkeypatch.setattr(bridge, "_run_in_session", spy)
    time.sleep(1.01 - time.time() % 1)  # the start of a second: the token is asked for in the same one
    with transaction(ctx.sessions) as db:
        tokens_service.invalidate_client(db, ctx.revoked, cid)
    token = cc_token(client, cid, secret)
    assert where == ([True, False] if backend == "postgres" else [False])
    monkeypatch.undo()
    assert active(client, resource, resource_secret, token)
    with transaction(ctx.sessions) as db:
        cutoff = db.get(TokenCutoff, ("client", cid))
        assert cutoff is not None and unverified(token)["iat"] >= cutoff.not_before


def test_rotating_a_client_secret_ends_its_access_tokens(client, ctx, make_client):
    cid, secret = cc_client(make_client)
    token = cc_token(client, cid, secret)
    resource, resource_secret = cc_client(make_client, introspect_any=True)
    assert active(client, resource, resource_secret, token)
    cli(ctx, "clients", "rotate-secret", cid)
    settle(ctx)
    assert not active(client, resource, resource_secret, token)


def test_deleting_a_client_ends_its_access_tokens(client, ctx, make_client):
    cid, secret = cc_client(make_client)
    token = cc_token(client, cid, secret)
    resource, resource_secret = cc_client(make_client, introspect_any=True)
    assert active(client, resource, resource_secret, token)
    cli(ctx, "clients", "delete", cid)
    settle(ctx)
    assert not active(client, resource, resource_secret, token)


def test_a_password_change_ends_access_tokens(app, client, ctx, make_user, make_client):
    make_user()
    cid, secret = make_client()
    token = tokens(client, cid, secret, scope="openid")["access_token"]
    client.cookies.clear()
    login(client)
    new = "a much better passphrase 42"
    r = client.post("/account/password", data={"csrf_token": csrf(client), "current_password": "correct horse "
                    "battery staple", "new_password": new, "confirm_password": new})
    assert r.headers["location"].startswith("/account?m=password_changed")
    assert not active(client, cid, secret, token)
    assert client.get("/userinfo", headers=bearer(token)).status_code == 401


def test_sign_out_everywhere_ends_access_tokens(client, ctx, make_user, make_client):
    make_user()
    cid, secret = make_client()
    token = tokens(client, cid, secret, scope="openid")["access_token"]
    client.cookies.clear()
    login(client)
    r = client.post("/account/sessions/revoke-others", data={"csrf_token": csrf(client)})
    assert r.status_code == 303
    assert not active(client, cid, secret, token)


def test_deleting_a_client_through_rfc7592_ends_its_access_tokens(client, ctx, make_user, make_client):
    from authserver.clients.registration import create_initial_access_token

    make_user()
    with transaction(ctx.sessions) as db:
        initial = create_initial_access_token(db, ctx.box, "tests", expires_in=3600)
    registered = client.post("/register", headers=bearer(initial), json={
        "client_name": "Registered App", "redirect_uris": ["https://rp.example.com/cb"],
        "grant_types": ["authorization_code"], "scope": "openid"}).json()
    cid = registered["client_id"]
    token = tokens(client, cid, registered["client_secret"], scope="openid")["access_token"]
    resource, resource_secret = cc_client(make_client, introspect_any=True)
    assert active(client, resource, resource_secret, token)
    r = client.delete(f"/register/{cid}", headers=bearer(registered["registration_access_token"]))
    assert r.status_code == 204
    assert not active(client, resource, resource_secret, token)
    assert client.get("/userinfo", headers=bearer(token)).status_code == 401
