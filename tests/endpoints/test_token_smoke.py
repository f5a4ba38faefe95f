"""client_credentials through the ASGI app on both backends."""

from __future__ import annotations


def test_client_credentials_token_and_introspection(client, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api:read")
    r = client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "api:read"
    r = client.post("/introspect", data={"token": body["access_token"]}, auth=(cid, secret))
    assert r.json()["active"] is True and r.json()["sub"] == cid
