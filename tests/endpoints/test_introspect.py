"""``/introspect`` (RFC 7662): a client sees its own tokens only, unless it is a
resource server registered with ``introspect_any``."""

from __future__ import annotations

import pytest

from tests.flows import introspect, tokens


@pytest.fixture
def issued(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    return cid, secret, tokens(client, cid, secret)


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
def test_own_token_is_active(client, issued, kind):
    cid, secret, body = issued
    result = introspect(client, cid, secret, body[kind])
    assert result["active"] is True
    assert result["client_id"] == cid and result["scope"] == body["scope"]


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
def test_another_clients_token_is_exactly_inactive(client, make_client, issued, kind):
    _cid, _secret, body = issued
    other, other_secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    response = client.post("/introspect", data={"token": body[kind]}, auth=(other, other_secret))
    assert response.status_code == 200
    assert response.json() == {"active": False}
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
def test_resource_server_can_introspect_any_token(client, make_client, issued, kind):
    cid, _secret, body = issued
    rs, rs_secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api",
                                introspect_any=True)
    result = introspect(client, rs, rs_secret, body[kind])
    assert result["active"] is True and result["client_id"] == cid


def test_revoked_jwt_is_inactive(client, issued):
    cid, secret, body = issued
    response = client.post("/revoke", data={"token": body["access_token"]}, auth=(cid, secret))
    assert response.status_code == 200
    assert introspect(client, cid, secret, body["access_token"]) == {"active": False}
    assert client.get("/userinfo", headers={"authorization": f"Bearer {body['access_token']}"}).status_code == 401


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "", "x" * 600])
def test_unknown_or_malformed_token(client, make_client, token):
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    response = client.post("/introspect", data={"token": token}, auth=(cid, secret))
    if token:
        assert response.status_code == 200 and response.json() == {"active": False}
    else:
        assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_public_client_introspects_its_own_token(client, make_user, make_client):
    make_user()
    cid, _ = make_client(token_endpoint_auth_method="none")
    body = tokens(client, cid, None, scope="openid offline_access")
    response = client.post("/introspect", data={"token": body["access_token"], "client_id": cid})
    assert response.status_code == 200 and response.json()["active"] is True
