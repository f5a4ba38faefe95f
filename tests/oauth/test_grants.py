"""Grants (``authserver.oauth.grants``) through ``/token``: PKCE verification,
code replay, refresh rotation and reuse, the password and client_credentials grants."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading

import jwt
import pytest
from starlette.testclient import TestClient

from authserver.accounts.models import TotpFactor
from tests.conftest import ISSUER, PASSWORD
from tests.flows import (
    REDIRECT_URI,
    bearer,
    exchange,
    get_code,
    introspect,
    pkce,
    refresh,
    tokens,
    unverified,
)

# -- authorization_code + PKCE -------------------------------------------------------

VERIFIER_CASES = {
    "wrong verifier": (lambda v: pkce()[0], "invalid_grant"),
    "missing verifier": (lambda v: None, "invalid_request"),
    "verifier too short": (lambda v: "a" * 42, "invalid_request"),
    "challenge as verifier": (lambda v: "CHALLENGE", "invalid_grant"),
    "verifier with a changed character": (lambda v: ("A" if v[0] != "A" else "B") + v[1:], "invalid_grant"),
}


@pytest.mark.parametrize("public", [False, True], ids=["confidential", "public"])
@pytest.mark.parametrize(("make_verifier", "error"), VERIFIER_CASES.values(), ids=VERIFIER_CASES.keys())
def test_wrong_code_verifier_is_refused(client, make_user, make_client, make_verifier, error, public):
    make_user()
    cid, secret = make_client(token_endpoint_auth_method="none" if public else "client_secret_basic")
    code, verifier, params = get_code(client, cid)
    wrong = make_verifier(verifier)
    if wrong == "CHALLENGE":
        wrong = params["code_challenge"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    if wrong is not None:
        data["code_verifier"] = wrong
    if secret is None:
        response = client.post("/token", data={**data, "client_id": cid})
    else:
        response = client.post("/token", data=data, auth=(cid, secret))
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"
    # a refused verifier burns the code: the right one no longer works
    assert exchange(client, cid, secret, code, verifier).json()["error"] == "invalid_grant"


@pytest.mark.parametrize(("field", "value", "description"), [
    ("redirect_uri", "https://rp.example.com/other", "Invalid 'redirect_uri' in request."),
    # RFC 6749 §4.1.3: required (and identical) when the authorization request had one
    ("redirect_uri", None, "Invalid 'redirect_uri' in request."),
    ("code", "not-a-code", "Invalid 'code' in request."),
])
def test_code_exchange_with_wrong_parameters_is_invalid_grant(client, make_user, make_client, field, value,
                                                              description):
    make_user()
    cid, secret = make_client()
    code, verifier, _ = get_code(client, cid)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}
    if value is None:
        del data[field]
    else:
        data[field] = value
    response = client.post("/token", data=data, auth=(cid, secret))
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": description}


def test_code_of_another_client_is_invalid_grant(client, make_user, make_client):
    make_user()
    cid, _ = make_client()
    other, other_secret = make_client(skip_consent=True)
    code, verifier, _ = get_code(client, cid)
    response = exchange(client, other, other_secret, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_code_replay_revokes_everything_the_code_issued(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    code, verifier, _ = get_code(client, cid)
    first = exchange(client, cid, secret, code, verifier)
    assert first.status_code == 200
    body = first.json()
    assert introspect(client, cid, secret, body["access_token"])["active"] is True
    assert client.get("/userinfo", headers=bearer(body["access_token"])).status_code == 200

    replay = exchange(client, cid, secret, code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert replay.headers["cache-control"] == "no-store"
    assert "access_token" not in replay.json()

    assert introspect(client, cid, secret, body["access_token"]) == {"active": False}
    assert introspect(client, cid, secret, body["refresh_token"]) == {"active": False}
    assert refresh(client, cid, secret, body["refresh_token"]).json()["error"] == "invalid_grant"
    assert client.get("/userinfo", headers=bearer(body["access_token"])).status_code == 401


def test_code_replay_after_rotation_revokes_the_rotated_tokens(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    code, verifier, _ = get_code(client, cid)
    body = exchange(client, cid, secret, code, verifier).json()
    rotated = refresh(client, cid, secret, body["refresh_token"]).json()
    assert exchange(client, cid, secret, code, verifier).json()["error"] == "invalid_grant"
    assert introspect(client, cid, secret, rotated["refresh_token"]) == {"active": False}
    assert introspect(client, cid, secret, rotated["access_token"]) == {"active": False}


def at_hash(access_token: str, alg: str) -> str:
    """OIDC Core §3.1.3.6, computed here rather than by the server's helper: the
    left-most half of the hash (the one of the ID token's ``alg``) of the ASCII
    access token, base64url without padding."""
    digest = {"RS256": hashlib.sha256, "RS384": hashlib.sha384, "RS512": hashlib.sha512}[alg](
        access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:len(digest) // 2]).rstrip(b"=").decode()


def test_id_token_carries_nonce_and_at_hash(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    body = tokens(client, cid, secret)
    claims = unverified(body["id_token"])
    alg = jwt.get_unverified_header(body["id_token"])["alg"]
    assert alg == "RS256"
    assert claims["nonce"] == body["_params"]["nonce"]
    assert claims["at_hash"] == at_hash(body["access_token"], alg)
    assert claims["iss"] == ISSUER and claims["aud"] == cid and claims["azp"] == cid
    assert claims["amr"] == ["pwd"] and isinstance(claims["auth_time"], int) and claims["sid"]


# -- refresh_token -------------------------------------------------------------------


def test_refresh_rotates(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    body = tokens(client, cid, secret)
    response = refresh(client, cid, secret, body["refresh_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    rotated = response.json()
    assert rotated["refresh_token"] != body["refresh_token"]
    assert rotated["scope"] == body["scope"]
    # OIDC Core §12.2: the same sign-in, so the same subject, session, time and methods
    first, again_id = unverified(body["id_token"]), unverified(rotated["id_token"])
    same = ("sub", "sid", "auth_time", "amr")
    assert [again_id[k] for k in same] == [first[k] for k in same]
    assert unverified(rotated["access_token"])["auth_time"] == unverified(body["access_token"])["auth_time"]
    # the new one works, the old one is gone
    assert introspect(client, cid, secret, body["refresh_token"]) == {"active": False}
    again = refresh(client, cid, secret, rotated["refresh_token"])
    assert again.status_code == 200


def test_refresh_reuse_kills_the_family(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    body = tokens(client, cid, secret)
    rotated = refresh(client, cid, secret, body["refresh_token"]).json()
    reuse = refresh(client, cid, secret, body["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert reuse.headers["cache-control"] == "no-store"
    # the legitimate holder's token died with the family, and its access token
    assert refresh(client, cid, secret, rotated["refresh_token"]).json()["error"] == "invalid_grant"
    assert introspect(client, cid, secret, rotated["access_token"]) == {"active": False}
    assert introspect(client, cid, secret, rotated["refresh_token"]) == {"active": False}


def test_refresh_reuse_does_not_touch_other_families(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    one = tokens(client, cid, secret)
    two = tokens(client, cid, secret)
    refresh(client, cid, secret, one["refresh_token"])
    refresh(client, cid, secret, one["refresh_token"])
    assert refresh(client, cid, secret, two["refresh_token"]).status_code == 200


def test_concurrent_refreshes_one_wins_and_the_family_dies(app, client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    body = tokens(client, cid, secret)
    n = 8
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        own = TestClient(app, base_url=ISSUER, follow_redirects=False)
        barrier.wait()
        results[i] = refresh(own, cid, secret, body["refresh_token"])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [400] * (n - 1), [r.text for r in results]
    assert all(r.json()["error"] == "invalid_grant" for r in results if r.status_code == 400)
    winner = next(r.json() for r in results if r.status_code == 200)
    assert refresh(client, cid, secret, winner["refresh_token"]).json()["error"] == "invalid_grant"
    assert introspect(client, cid, secret, winner["access_token"]) == {"active": False}


SCOPE_CASES = {
    "narrower": ("openid profile", 200, "openid profile"),
    "same": ("openid profile email offline_access", 200, "openid profile email offline_access"),
    "wider (client may have it)": ("openid profile roles", 400, "invalid_scope"),
    "unknown scope": ("openid admin", 400, "invalid_scope"),
}


@pytest.mark.parametrize(("scope", "status", "expected"), SCOPE_CASES.values(), ids=SCOPE_CASES.keys())
def test_refresh_may_narrow_but_not_widen_scope(client, make_user, make_client, scope, status, expected):
    make_user()
    cid, secret = make_client()
    body = tokens(client, cid, secret)
    response = refresh(client, cid, secret, body["refresh_token"], scope=scope)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["scope"] == expected
        assert unverified(response.json()["access_token"])["scope"] == expected
    else:
        assert response.json()["error"] == expected
        # a refused scope does not burn the token
        assert refresh(client, cid, secret, body["refresh_token"]).status_code == 200


def test_refresh_after_narrowing_keeps_the_original_scope(client, make_user, make_client):
    """RFC 6749 §6: a new refresh token has the scope of the one it replaces, so a
    narrowed access token does not narrow the family."""
    make_user()
    cid, secret = make_client()
    body = tokens(client, cid, secret)
    narrow = refresh(client, cid, secret, body["refresh_token"], scope="openid offline_access").json()
    assert narrow["scope"] == "openid offline_access"
    wider = refresh(client, cid, secret, narrow["refresh_token"], scope="openid profile")
    assert wider.status_code == 200 and wider.json()["scope"] == "openid profile"
    beyond = refresh(client, cid, secret, wider.json()["refresh_token"], scope="openid roles")
    assert beyond.status_code == 400 and beyond.json()["error"] == "invalid_scope"


def test_refresh_with_another_clients_credentials_is_invalid_grant(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    other, other_secret = make_client()
    body = tokens(client, cid, secret)
    response = refresh(client, other, other_secret, body["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert refresh(client, cid, secret, body["refresh_token"]).status_code == 200


def test_public_client_gets_refresh_token_only_with_offline_access(client, make_user, make_client):
    make_user()
    cid, _ = make_client(token_endpoint_auth_method="none")
    without = tokens(client, cid, None, scope="openid profile")
    assert "refresh_token" not in without
    with_offline = tokens(client, cid, None, scope="openid offline_access")
    assert "refresh_token" in with_offline
    assert refresh(client, cid, None, with_offline["refresh_token"]).status_code == 200


def test_client_without_refresh_grant_gets_no_refresh_token(client, make_user, make_client):
    make_user()
    cid, secret = make_client(grant_types=["authorization_code"])
    assert "refresh_token" not in tokens(client, cid, secret)


# -- password ----------------------------------------------------------------------


def _password(client, cid, secret, username="alice", password=PASSWORD, **extra):
    data = {"grant_type": "password", "username": username, "password": password, **extra}
    return client.post("/token", data=data, auth=(cid, secret))


def test_password_grant_for_a_confidential_client(client, make_user, make_client):
    user = make_user()
    cid, secret = make_client(grant_types=["password", "refresh_token"])
    response = _password(client, cid, secret, scope="openid email")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["scope"] == "openid email"
    claims = unverified(body["access_token"])
    assert claims["sub"] == user.id and claims["client_id"] == cid and claims["amr"] == ["pwd"]
    assert "id_token" in body and "refresh_token" in body
    assert refresh(client, cid, secret, body["refresh_token"]).status_code == 200


PASSWORD_FAILURES = {
    "wrong password": ({"password": "wrong password entirely"}, "invalid_grant"),
    "unknown user": ({"username": "nobody"}, "invalid_grant"),
    "empty password": ({"password": ""}, "invalid_grant"),
}


@pytest.mark.parametrize(("change", "error"), PASSWORD_FAILURES.values(), ids=PASSWORD_FAILURES.keys())
def test_password_grant_bad_credentials_are_invalid_grant(client, make_user, make_client, change, error):
    make_user()
    cid, secret = make_client(grant_types=["password"])
    response = _password(client, cid, secret, **change)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert "access_token" not in response.json()
    assert response.headers["cache-control"] == "no-store"


def test_password_grant_missing_password_is_invalid_request(client, make_user, make_client):
    make_user()
    cid, secret = make_client(grant_types=["password"])
    response = client.post("/token", data={"grant_type": "password", "username": "alice"}, auth=(cid, secret))
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_password_grant_refused_to_a_client_not_allowed_it(client, make_user, make_client):
    make_user()
    cid, secret = make_client()  # authorization_code + refresh_token only
    response = _password(client, cid, secret)
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_password_grant_refused_to_a_public_client(client, make_user, make_client):
    make_user()
    cid, _ = make_client(token_endpoint_auth_method="none")
    response = client.post("/token", data={"grant_type": "password", "username": "alice",
                                           "password": PASSWORD, "client_id": cid})
    _assert_public_client_refused(response)


def _assert_public_client_refused(response):
    """The password and client_credentials grants accept only client secrets, so a
    public client fails client authentication (RFC 6749 §5.2 invalid_client: 401 with
    a challenge) before its grant types are looked at."""
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert "access_token" not in response.json()


def test_password_grant_refused_for_a_user_with_totp(client, ctx, make_user, make_client):
    user = make_user()
    with ctx.sessions.begin() as session:
        session.add(TotpFactor(user_id=user.id, secret_encrypted="sealed",
                               confirmed_at=dt.datetime.now(dt.UTC)))
    cid, secret = make_client(grant_types=["password"])
    response = _password(client, cid, secret)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "access_token" not in response.json()


def test_password_grant_allowed_with_unconfirmed_totp(client, ctx, make_user, make_client):
    user = make_user()
    with ctx.sessions.begin() as session:
        session.add(TotpFactor(user_id=user.id, secret_encrypted="sealed", confirmed_at=None))
    cid, secret = make_client(grant_types=["password"])
    assert _password(client, cid, secret).status_code == 200


# -- client_credentials --------------------------------------------------------------


def test_client_credentials_sub_is_client_id_and_no_refresh_token(client, make_client):
    cid, secret = make_client(grant_types=["client_credentials", "refresh_token"], redirect_uris=[],
                              scope="api:read api:write")
    response = client.post("/token", data={"grant_type": "client_credentials", "scope": "api:read"},
                           auth=(cid, secret))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["scope"] == "api:read"
    claims = unverified(body["access_token"])
    assert claims["sub"] == cid and claims["client_id"] == cid
    assert "auth_time" not in claims and "amr" not in claims


def test_client_credentials_refused_to_a_public_client(client, make_client):
    cid, _ = make_client(token_endpoint_auth_method="none")
    response = client.post("/token", data={"grant_type": "client_credentials", "client_id": cid})
    _assert_public_client_refused(response)


@pytest.mark.parametrize("settings_overrides", [{"client_cache_ttl": 30}])
def test_client_cache_serves_within_ttl_and_expires(client, ctx, make_client, monkeypatch):
    """The per-process client cache: a rotated secret applies after the TTL, not before."""
    import time as _time

    from authserver.clients.service import rotate_secret
    from authserver.db import transaction

    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    assert client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret)).status_code == 200
    with transaction(ctx.sessions) as session:
        new_secret = rotate_secret(session, ctx.box, cid, revoked=ctx.revoked, actor="test")
    # still cached: the old secret works for up to CLIENT_CACHE_TTL seconds
    assert client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret)).status_code == 200
    later = _time.monotonic() + 31
    monkeypatch.setattr(ctx.oauth, "clock", lambda: later)
    r = client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))
    assert r.status_code == 401
    r = client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, new_secret))
    assert r.status_code == 200


@pytest.mark.parametrize("cut_at", ["before_the_insert", "before_the_release"])
def test_a_connection_lost_after_the_refresh_claim_answers_503_and_keeps_the_token(
        backend, ctx, client, make_user, make_client, monkeypatch, cut_at):
    """The database connection is cut from outside after the refresh token's claim:
    before the new token's insert (the claim is undone with the transaction), or before
    the release of a claim whose request then fails (a wider scope: the release's own
    statement finds the connection gone). Either way 503 (retry), never a 500
    (``errors.database_unavailable``), and the token is still usable."""
    if backend != "postgres":
        pytest.skip("Postgres cuts the connection itself (pg_terminate_backend)")
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from authserver.tokens import service as token_service

    make_user()
    cid, secret = make_client()
    body = tokens(client, cid, secret)
    name, extra = {"before_the_insert": ("store_refresh_token", {}),
                   "before_the_release": ("claim_live_refresh_token", {"scope": "openid admin"})}[cut_at]
    real = getattr(token_service, name)
    outside = sa.create_engine(ctx.settings.database_url, poolclass=NullPool)

    def cut_connection(db):
        pid = db.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with outside.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    def store_on_a_cut_connection(db, **values):
        cut_connection(db)
        return real(db, **values)

    def claim_then_cut(db, token_hash, client_id):
        row = real(db, token_hash, client_id)
        cut_connection(db)
        return row

    monkeypatch.setattr(token_service, name,
                        store_on_a_cut_connection if cut_at == "before_the_insert" else claim_then_cut)
    try:
        response = refresh(client, cid, secret, body["refresh_token"], **extra)
    finally:
        outside.dispose()
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable" and response.headers["retry-after"] == "1"
    monkeypatch.setattr(token_service, name, real)
    assert refresh(client, cid, secret, body["refresh_token"]).status_code == 200
