"""``/revoke`` (RFC 7009): a refresh token takes its family with it."""

from __future__ import annotations

from tests.flows import introspect, refresh, tokens


def test_revoking_a_refresh_token_kills_its_family(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    body = tokens(client, cid, secret)
    rotated = refresh(client, cid, secret, body["refresh_token"]).json()
    response = client.post("/revoke", data={"token": rotated["refresh_token"],
                                            "token_type_hint": "refresh_token"}, auth=(cid, secret))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert refresh(client, cid, secret, rotated["refresh_token"]).json()["error"] == "invalid_grant"
    for token in (body["access_token"], rotated["access_token"], rotated["refresh_token"]):
        assert introspect(client, cid, secret, token) == {"active": False}


def test_revoking_does_not_touch_other_families(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    one = tokens(client, cid, secret)
    two = tokens(client, cid, secret)
    client.post("/revoke", data={"token": one["refresh_token"]}, auth=(cid, secret))
    assert introspect(client, cid, secret, two["access_token"])["active"] is True
    assert refresh(client, cid, secret, two["refresh_token"]).status_code == 200


def test_another_client_cannot_revoke(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    other, other_secret = make_client()
    body = tokens(client, cid, secret)
    for token in (body["refresh_token"], body["access_token"]):
        response = client.post("/revoke", data={"token": token}, auth=(other, other_secret))
        assert response.status_code == 200  # RFC 7009 §2.2: no oracle
    assert introspect(client, cid, secret, body["access_token"])["active"] is True
    assert refresh(client, cid, secret, body["refresh_token"]).status_code == 200


def test_unknown_token_revocation_is_200(client, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    response = client.post("/revoke", data={"token": "unknown"}, auth=(cid, secret))
    assert response.status_code == 200 and response.content == b""


def test_revocation_without_token_is_invalid_request(client, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    response = client.post("/revoke", data={}, auth=(cid, secret))
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
