"""RFC 6749 §2.3: a client MUST NOT use more than one authentication method in a request."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("path", "data"), [
    ("/token", {"grant_type": "client_credentials"}),
    ("/introspect", {"token": "x"}),
    ("/revoke", {"token": "x"}),
])
def test_basic_and_body_secret_together_is_invalid_request(client, make_client, path, data):
    cid, secret = make_client(grant_types=["client_credentials"], scope="api")
    r = client.post(path, data={**data, "client_id": cid, "client_secret": secret}, auth=(cid, secret))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_request"
    assert "one client authentication method" in r.json()["error_description"]
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_one_method_still_works(client, make_client, auth_method):
    cid, secret = make_client(grant_types=["client_credentials"], scope="api",
                              token_endpoint_auth_method=auth_method)
    if auth_method == "client_secret_basic":
        r = client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))
    else:
        r = client.post("/token", data={"grant_type": "client_credentials", "client_id": cid,
                                        "client_secret": secret})
    assert r.status_code == 200, r.text


def test_basic_with_client_id_in_body_is_fine(client, make_client):
    """``client_id`` alone in the body is not a second method (RFC 6749 §4.1.3 even asks for it)."""
    cid, secret = make_client(grant_types=["client_credentials"], scope="api")
    r = client.post("/token", data={"grant_type": "client_credentials", "client_id": cid}, auth=(cid, secret))
    assert r.status_code == 200, r.text
