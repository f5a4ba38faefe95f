"""``examples/resource_server.py`` (PyJWT's PyJWKClient) against the live server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from examples.resource_server import Validator, create_app
from tests.conftest import PASSWORD
from tests.interop.conftest import Live, ServerThread, free_port

pytestmark = pytest.mark.interop


@pytest.fixture
def setup(live: Live) -> Iterator[dict[str, Any]]:
    live.make_user("alice")
    cid, secret = live.make_client(grant_types=["client_credentials", "password", "refresh_token"],
                                   redirect_uris=[], scope="openid profile email api:read")
    other_cid, other_secret = live.make_client(grant_types=["client_credentials"], redirect_uris=[],
                                               scope="api:read")
    port = free_port()
    validator = Validator(live.url, audience=cid, jwks_lifespan=300, refresh_cooldown=1)
    server = ServerThread(create_app(validator), port)
    server.start()
    try:
        yield {"rs": f"http://127.0.0.1:{port}", "cid": cid, "secret": secret,
               "other": (other_cid, other_secret)}
    finally:
        server.stop()


def token(live: Live, cid: str, secret: str, **data: str) -> dict[str, Any]:
    with live.http() as http:
        r = http.post("/token", data={"grant_type": "client_credentials", **data}, auth=(cid, secret))
    assert r.status_code == 200, r.text
    return dict(r.json())


def call(rs: str, access_token: str | None, **kw: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {access_token}"} if access_token else {}
    return httpx.get(f"{rs}/api/me", headers=headers, timeout=10, **kw)


def test_valid_token_accepted(live: Live, setup: dict[str, Any]) -> None:
    at = token(live, setup["cid"], setup["secret"])["access_token"]
    r = call(setup["rs"], at)
    assert r.status_code == 200, r.text
    assert r.json()["sub"] == setup["cid"] and r.json()["client_id"] == setup["cid"]
    assert r.json()["kid"] == live.ctx.keys.active.kid


def test_missing_or_query_token_refused(live: Live, setup: dict[str, Any]) -> None:
    at = token(live, setup["cid"], setup["secret"])["access_token"]
    r = call(setup["rs"], None)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert call(setup["rs"], None, params={"access_token": at}).status_code == 401
    assert call(setup["rs"], "not-a-jwt").status_code == 401


def test_expired_token_refused(live: Live, setup: dict[str, Any]) -> None:
    at = token(live, setup["cid"], setup["secret"])["access_token"]
    header = jwt.get_unverified_header(at)
    claims = jwt.decode(at, options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now - 900, exp=now - 300)
    pem = live.ctx.keys.active.key.as_pem(private=True)  # the server's own signing key, from the database
    assert live.ctx.keys.active.kid == header["kid"]
    expired = jwt.encode(claims, pem, algorithm="RS256", headers={"kid": header["kid"], "typ": "at+jwt"})
    # same key, same claims except exp: only the expiry check can refuse it
    claims.update(iat=now, exp=now + 300)
    fresh = jwt.encode(claims, pem, algorithm="RS256", headers={"kid": header["kid"], "typ": "at+jwt"})
    assert call(setup["rs"], fresh).status_code == 200
    r = call(setup["rs"], expired)
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert "expired" in r.headers["www-authenticate"].lower()


def test_other_audience_refused(live: Live, setup: dict[str, Any]) -> None:
    at = token(live, *setup["other"])["access_token"]
    r = call(setup["rs"], at)
    assert r.status_code == 401 and "audience" in r.headers["www-authenticate"].lower()


def test_id_token_refused_by_typ(live: Live, setup: dict[str, Any]) -> None:
    body = token(live, setup["cid"], setup["secret"], grant_type="password", username="alice",
                 password=PASSWORD, scope="openid email")
    id_token = body["id_token"]
    claims = jwt.decode(id_token, options={"verify_signature": False})
    assert claims["aud"] == setup["cid"]  # same audience: only the typ check tells them apart
    assert call(setup["rs"], body["access_token"]).status_code == 200
    r = call(setup["rs"], id_token)
    assert r.status_code == 401 and "at+jwt" in r.headers["www-authenticate"]


def test_rotated_key_verifies_after_kid_refresh(live: Live, setup: dict[str, Any]) -> None:
    first = token(live, setup["cid"], setup["secret"])["access_token"]
    assert call(setup["rs"], first).status_code == 200  # the RS now caches the one-key JWKS
    old_kid = jwt.get_unverified_header(first)["kid"]
    # key times are whole seconds: a key rotated in within the second the first one activated would tie
    # with it (the tie is broken by kid order, not age), so let that second pass first
    time.sleep(max(0.0, live.ctx.keys.active.activates_at + 1 - time.time()))
    new = live.ctx.keys.rotate(delay=0)
    time.sleep(1.1)  # the key store re-reads its directory at most once a second
    second = token(live, setup["cid"], setup["secret"])["access_token"]
    assert jwt.get_unverified_header(second)["kid"] == new.kid != old_kid
    r = call(setup["rs"], second)
    assert r.status_code == 200 and r.json()["kid"] == new.kid
    # the old key's tokens still verify while it is published
    assert call(setup["rs"], first).status_code == 200
