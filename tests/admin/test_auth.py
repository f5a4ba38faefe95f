"""Who may call the admin API: RFC 6750 challenges, the scope, the caller's roles."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import select

from authserver.db import transaction
from authserver.oauth.vocabulary import ADMIN_SCOPE
from authserver.roles.models import ClientRole
from tests.flows import tokens

URL = "/admin/api/users"


def test_no_token_is_401_with_a_bare_challenge(client):
    response = client.get(URL)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="authserver"'
    assert response.json() == {}


@pytest.mark.parametrize("header", ["Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer a.b.c"])
def test_a_bad_token_is_401_invalid_token(client, header):
    response = client.get(URL, headers={"Authorization": header})
    assert response.status_code == 401
    if header.startswith("Bearer "):
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert response.json()["error"] == "invalid_token"


def test_a_token_in_the_query_is_ignored(client, client_token):
    response = client.get(URL, params={"access_token": client_token(roles=["admin"])})
    assert response.status_code == 401


def test_a_token_without_the_admin_scope_is_403_insufficient_scope(client, client_token):
    token = client_token(roles=["admin"], scope="api")
    response = client.get(URL, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_the_admin_scope_without_a_role_means_the_built_in_admin(client, client_token):
    response = client.get(URL, headers={"Authorization": f"Bearer {client_token()}"})
    assert response.status_code == 200


def test_a_revoked_token_is_401(ctx, client, admin):
    from joserfc import jwt

    from authserver.db import transaction
    from authserver.tokens.service import revoke_access_token

    assert client.get(URL, headers=admin).status_code == 200
    claims = jwt.decode(admin["Authorization"][7:], ctx.keys.verify_set).claims
    with transaction(ctx.sessions) as db:
        revoke_access_token(db, ctx.revoked, claims["jti"], claims["exp"])
    assert client.get(URL, headers=admin).status_code == 401


def test_an_expired_or_foreign_token_is_401(ctx, client, client_token):
    from joserfc import jwt

    good = client_token(roles=["admin"])
    claims = jwt.decode(good, ctx.keys.verify_set).claims
    key = ctx.keys.active
    for changes, typ in (({"exp": int(time.time()) - 120}, "at+jwt"), ({"iss": "https://evil.example"}, "at+jwt"),
                         ({}, "JWT")):
        forged = jwt.encode({"alg": "RS256", "kid": key.kid, "typ": typ}, {**claims, **changes}, key.key)
        response = client.get(URL, headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401, (changes, typ)


def test_a_role_taken_away_stops_working_at_once(ctx, client, client_token):
    from authserver.roles.service import update_role

    token = client_token(permissions=["admin:users:read"])
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(URL, headers=headers).status_code == 200
    with transaction(ctx.sessions) as db:
        role = db.scalars(select(ClientRole.role)).first()
        update_role(db, role, permissions=[], actor="test")
    response = client.get(URL, headers=headers)
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden",
                               "error_description": "Your roles do not grant admin:users:read."}


def _user_token(client: Any, make_client: Any, make_user: Any, roles: list[str]) -> str:
    make_user("alice", roles=roles)
    cid, secret = make_client(scope=f"openid {ADMIN_SCOPE}")
    return str(tokens(client, cid, secret, scope=f"openid {ADMIN_SCOPE}")["access_token"])


def test_a_user_with_the_admin_role_through_the_code_flow(client, make_client, make_user):
    token = _user_token(client, make_client, make_user, ["admin"])
    response = client.post(URL, headers={"Authorization": f"Bearer {token}"}, json={
        "username": "carol", "email": "carol@example.com", "password": "another long passphrase"})
    assert response.status_code == 201, response.text
    events = client.get("/admin/api/audit-events", params={"kind": "user_created", "user_id": response.json()["id"]},
                        headers={"Authorization": f"Bearer {token}"}).json()["items"]
    boss = client.get(URL, params={"q": "alice"}, headers={"Authorization": f"Bearer {token}"}).json()["items"][0]
    assert events[0]["detail"]["actor"] == boss["id"]


def test_a_user_without_an_admin_role_is_403(client, make_client, make_user):
    token = _user_token(client, make_client, make_user, [])
    response = client.get(URL, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


def test_a_disabled_user_loses_access(ctx, client, make_client, make_user):
    token = _user_token(client, make_client, make_user, ["admin"])
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(URL, headers=headers).status_code == 200
    from authserver.accounts.service import find_by_login

    with transaction(ctx.sessions) as db:
        user = find_by_login(db, "alice")
        assert user is not None
        user.disabled = True  # without disable_user's token revocation: the guard itself must refuse
    assert client.get(URL, headers=headers).status_code == 403


def test_the_admin_scope_is_an_api_scope_with_a_consent_text():
    from authserver.interaction.consent import describe
    from authserver.oauth import vocabulary

    assert describe(ADMIN_SCOPE) == vocabulary.API_SCOPE_DESCRIPTIONS[ADMIN_SCOPE]
    # never self-registered, never advertised in discovery
    assert ADMIN_SCOPE not in vocabulary.REGISTRABLE_SCOPES and ADMIN_SCOPE not in vocabulary.SCOPES
