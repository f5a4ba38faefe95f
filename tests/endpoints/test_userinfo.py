"""``/userinfo`` (OIDC Core §5.3): GET and POST with a Bearer header only;
RFC 6750 §3 challenges; claims released by scope."""

from __future__ import annotations

import pytest

from tests.flows import bearer, tokens


@pytest.fixture
def alice(make_user):
    return make_user(roles=["admin", "staff"])


@pytest.fixture
def app_client(make_client):
    return make_client(skip_consent=True)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo_with_bearer_header(client, alice, app_client, method):
    cid, secret = app_client
    body = tokens(client, cid, secret, scope="openid email")
    response = client.request(method, "/userinfo", headers=bearer(body["access_token"]))
    assert response.status_code == 200
    assert response.json() == {"sub": alice.id, "email": "alice@example.com",
                               "email_verified": alice.email_verified}
    assert response.headers["cache-control"] == "no-store"


SCOPE_CLAIMS = {
    "openid": ("openid", {"sub"}),
    # locale: the language of the sign-in that issued the token (docs/i18n.md, "Claims")
    "profile": ("openid profile", {"sub", "preferred_username", "name", "locale", "updated_at"}),
    "email": ("openid email", {"sub", "email", "email_verified"}),
    "roles": ("openid roles", {"sub", "roles"}),
    "all": ("openid profile email roles",
            {"sub", "preferred_username", "name", "locale", "updated_at", "email", "email_verified", "roles"}),
}


@pytest.mark.parametrize(("scope", "claims"), SCOPE_CLAIMS.values(), ids=SCOPE_CLAIMS.keys())
def test_claims_follow_the_scope(client, alice, app_client, scope, claims):
    cid, secret = app_client
    body = tokens(client, cid, secret, scope=scope)
    result = client.get("/userinfo", headers=bearer(body["access_token"])).json()
    assert set(result) == claims
    if "roles" in claims:
        assert sorted(result["roles"]) == ["admin", "staff"]
    if "preferred_username" in claims:
        assert result["preferred_username"] == "alice" and result["name"] == "Alice Example"
        assert result["locale"] == "en"


BAD_TOKENS = {
    "garbage": "garbage",
    "three parts": "a.b.c",
    "tampered": None,  # a real token with a changed signature
}


@pytest.mark.parametrize("token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_token_is_401_invalid_token(client, alice, app_client, token):
    if token is None:
        cid, secret = app_client
        real = tokens(client, cid, secret)["access_token"]
        token = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    response = client.get("/userinfo", headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.headers["www-authenticate"].startswith("Bearer ")


def test_id_token_is_not_an_access_token(client, alice, app_client):
    cid, secret = app_client
    body = tokens(client, cid, secret)
    response = client.get("/userinfo", headers=bearer(body["id_token"]))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_client_credentials_token_is_refused(client, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="openid api")
    token = client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret)).json()
    response = client.get("/userinfo", headers=bearer(token["access_token"]))
    # a valid token without the openid scope: RFC 6750 §3.1 insufficient_scope
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_token_in_the_query_is_ignored(client, alice, app_client):
    cid, secret = app_client
    token = tokens(client, cid, secret)["access_token"]
    response = client.get("/userinfo", params={"access_token": token})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert "error=" not in response.headers["www-authenticate"]  # RFC 6750 §3.1: no credentials
    response = client.post("/userinfo?access_token=" + token)
    assert response.status_code == 401


def test_token_in_the_form_body_is_ignored(client, alice, app_client):
    cid, secret = app_client
    token = tokens(client, cid, secret)["access_token"]
    response = client.post("/userinfo", data={"access_token": token})
    assert response.status_code == 401


def test_no_credentials_is_401_without_error(client):
    response = client.get("/userinfo")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
