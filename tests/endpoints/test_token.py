"""``/token`` errors (RFC 6749 §5.2): status, exact JSON shape, ``no-store``,
401 + ``WWW-Authenticate`` for ``invalid_client``."""

from __future__ import annotations

import pytest

from tests.flows import exchange, get_code


def _error(response):
    body = response.json()
    assert set(body) <= {"error", "error_description", "error_uri"}
    return body["error"]


INVALID_CLIENT = {
    "wrong secret (basic)": lambda cid, secret: {"auth": (cid, "wrong-secret")},
    "unknown client (basic)": lambda cid, secret: {"auth": ("nobody", "x")},
    "wrong secret (post)": lambda cid, secret: {"data": {"client_id": cid, "client_secret": "wrong"}},
    "basic client without credentials": lambda cid, secret: {"data": {"client_id": cid}},
    "no client at all": lambda cid, secret: {},
}


@pytest.mark.parametrize("how", INVALID_CLIENT.values(), ids=INVALID_CLIENT.keys())
def test_invalid_client_is_401_with_www_authenticate(client, make_client, how):
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    kwargs = how(cid, secret)
    data = {"grant_type": "client_credentials", **kwargs.pop("data", {})}
    response = client.post("/token", data=data, **kwargs)
    assert response.status_code == 401, response.text
    assert _error(response) == "invalid_client"
    # one description whichever way it failed: the answer does not tell which client_ids exist
    assert response.json()["error_description"] == "Client authentication failed."
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("endpoint", ["/introspect", "/revoke"])
def test_invalid_client_at_introspection_and_revocation(client, make_client, endpoint):
    cid, _ = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    response = client.post(endpoint, data={"token": "x"}, auth=(cid, "wrong"))
    assert response.status_code == 401
    assert _error(response) == "invalid_client"
    assert "www-authenticate" in response.headers


TOKEN_ERRORS = {
    "missing grant_type": ({}, 400, "invalid_request"),
    "unknown grant_type": ({"grant_type": "urn:example:nope"}, 400, "unsupported_grant_type"),
    "implicit is not a grant": ({"grant_type": "implicit"}, 400, "unsupported_grant_type"),
    "grant not allowed": ({"grant_type": "password", "username": "a", "password": "b"}, 400,
                          "unauthorized_client"),
    "scope not allowed": ({"grant_type": "client_credentials", "scope": "admin"}, 400, "invalid_scope"),
    "unknown refresh token": ({"grant_type": "refresh_token", "refresh_token": "nope"}, 400, "invalid_grant"),
    "missing refresh token": ({"grant_type": "refresh_token"}, 400, "invalid_request"),
    "unknown code": ({"grant_type": "authorization_code", "code": "nope",
                      "redirect_uri": "https://rp.example.com/cb"}, 400, "invalid_grant"),
}


@pytest.mark.parametrize(("data", "status", "error"), TOKEN_ERRORS.values(), ids=TOKEN_ERRORS.keys())
def test_token_errors_are_json_and_not_stored(client, make_client, data, status, error):
    cid, secret = make_client(grant_types=["client_credentials", "authorization_code", "refresh_token"],
                              scope="api")
    response = client.post("/token", data=data, auth=(cid, secret))
    assert response.status_code == status, response.text
    assert _error(response) == error
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"


def test_token_success_is_not_stored(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    code, verifier, _ = get_code(client, cid)
    response = exchange(client, cid, secret, code, verifier)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0


def test_token_parameters_in_the_query_string_are_ignored(client, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    response = client.post("/token?grant_type=client_credentials", data={}, auth=(cid, secret))
    assert response.status_code == 400 and _error(response) == "invalid_request"


def test_token_endpoint_refuses_get(client):
    assert client.get("/token").status_code == 405
