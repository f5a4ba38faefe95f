"""Pushed authorization requests (RFC 9126): the whole code flow through ``/par`` and the
browser forms, on both backends, and every refusal."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jwt as pyjwt
import pytest
import sqlalchemy as sa

from authserver.clients.models import PushedAuthorizationRequest
from authserver.db import transaction
from tests.conftest import ISSUER
from tests.flows import REDIRECT_URI, auth_params, exchange, follow, pkce, query
from tests.oauth.test_private_key_jwt import ASSERTION_TYPE, Signer, jwks

URN = "urn:ietf:params:oauth:request_uri:"


def push(client: Any, params: dict[str, str], auth: Any = None, **extra: str) -> Any:
    return client.post("/par", data={**params, **extra}, auth=auth)


def authorize(client: Any, client_id: str, request_uri: str, **extra: str) -> Any:
    return client.get("/authorize", params={"client_id": client_id, "request_uri": request_uri, **extra})


def code_from(client: Any, response: Any) -> dict[str, str]:
    response = follow(client, response)
    assert response.status_code in (302, 303), response.text[:300]
    return query(response.headers["location"])


def test_code_flow_through_par(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    verifier, challenge = pkce()
    params = auth_params(cid, challenge)
    r = push(client, params, auth=(cid, secret))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["request_uri"].startswith(URN) and body["expires_in"] == 60
    assert r.headers["cache-control"] == "no-store" and r.headers["content-type"] == "application/json"
    # only client_id is read beside request_uri: these are ignored (RFC 9126 §4)
    q = code_from(client, authorize(client, cid, body["request_uri"], redirect_uri="https://evil.example/cb",
                                    scope="openid", state="forged", nonce="forged"))
    assert q["state"] == params["state"] and q["iss"] == ISSUER
    r = exchange(client, cid, secret, q["code"], verifier)
    assert r.status_code == 200, r.text
    tokens = r.json()
    claims = pyjwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["nonce"] == params["nonce"] and claims["aud"] == cid
    assert set(tokens["scope"].split()) == set(params["scope"].split())
    # single use
    r = authorize(client, cid, body["request_uri"])
    assert r.status_code == 400 and "invalid_request_uri" in r.text


def test_a_client_authenticated_by_basic_may_leave_client_id_out_of_the_push(client, make_user, make_client):
    """RFC 9126 §2.1: the client is the authenticated one; the stored request names it."""
    make_user()
    cid, secret = make_client(require_pushed_authorization_requests=True)
    verifier, challenge = pkce()
    params = {k: v for k, v in auth_params(cid, challenge).items() if k != "client_id"}
    r = push(client, params, auth=(cid, secret))
    assert r.status_code == 201, r.text
    q = code_from(client, authorize(client, cid, r.json()["request_uri"]))
    assert q["state"] == params["state"]
    assert exchange(client, cid, secret, q["code"], verifier).status_code == 200


def test_private_key_jwt_client_pushes_and_redeems(client, make_user, make_client):
    make_user()
    signer = Signer("ES256")
    cid, _ = make_client(token_endpoint_auth_method="private_key_jwt", jwks=jwks(signer))
    verifier, challenge = pkce()
    params = auth_params(cid, challenge)
    par_aud = f"{ISSUER}/par"
    r = push(client, params, client_assertion_type=ASSERTION_TYPE, client_assertion=signer.assertion(cid, aud=par_aud))
    assert r.status_code == 201, r.text
    q = code_from(client, authorize(client, cid, r.json()["request_uri"]))
    r = client.post("/token", data={"grant_type": "authorization_code", "code": q["code"],
                                    "redirect_uri": REDIRECT_URI, "code_verifier": verifier,
                                    "client_assertion_type": ASSERTION_TYPE,
                                    "client_assertion": signer.assertion(cid)})
    assert r.status_code == 200, r.text
    # a forged assertion at /par
    r = push(client, params, client_assertion_type=ASSERTION_TYPE, client_assertion=Signer().assertion(cid))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_public_client_pushes_with_its_client_id(client, make_user, make_client):
    make_user()
    cid, _ = make_client(token_endpoint_auth_method="none")
    verifier, challenge = pkce()
    r = push(client, auth_params(cid, challenge))
    assert r.status_code == 201, r.text
    q = code_from(client, authorize(client, cid, r.json()["request_uri"]))
    assert exchange(client, cid, None, q["code"], verifier).status_code == 200


def test_expired_foreign_or_unknown_request_uri_gets_a_page(ctx, client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    other, _ = make_client()
    _verifier, challenge = pkce()
    request_uri = push(client, auth_params(cid, challenge), auth=(cid, secret)).json()["request_uri"]
    for client_id, uri in ((other, request_uri), (cid, URN + "unknown")):
        r = authorize(client, client_id, uri)
        assert r.status_code == 400 and "invalid_request_uri" in r.text and "location" not in r.headers
    r = client.get("/authorize", params={"request_uri": request_uri})
    assert r.status_code == 400 and "invalid_request" in r.text
    assert "&#39;client_id&#39; is required with &#39;request_uri&#39; (RFC 9126, section 4)." in r.text
    # the foreign attempt did not use it up; expiry does
    with transaction(ctx.sessions) as db:
        row = db.scalar(sa.select(PushedAuthorizationRequest))
        row.expires_at -= dt.timedelta(seconds=61)
    r = authorize(client, cid, request_uri)
    assert r.status_code == 400 and "invalid_request_uri" in r.text


def test_pushed_parameters_are_sealed_and_the_uri_hashed(ctx, client, make_client):
    cid, secret = make_client()
    _verifier, challenge = pkce()
    params = auth_params(cid, challenge)
    request_uri = push(client, params, auth=(cid, secret)).json()["request_uri"]
    with transaction(ctx.sessions) as db:
        row = db.scalar(sa.select(PushedAuthorizationRequest))
        assert row.request_hash != request_uri and request_uri.rsplit(":", 1)[1] not in row.request_hash
        assert params["state"] not in row.sealed_params and params["nonce"] not in row.sealed_params
        assert (row.expires_at - row.created_at).total_seconds() <= 60


@pytest.mark.parametrize(("change", "status", "error", "description"), [
    ({"redirect_uri": "https://evil.example/cb"}, 400, "invalid_request",
     "Redirect URI https://evil.example/cb is not supported by client."),
    ({"code_challenge": ""}, 400, "invalid_request", "'code_challenge' (PKCE, S256) is required."),
    ({"response_type": "token"}, 400, "unsupported_response_type", "Only response_type 'code' is supported."),
    ({"response_type": ""}, 400, "invalid_request", "Missing 'response_type'."),
    ({"request_uri": URN + "x"}, 400, "invalid_request", "'request_uri' cannot be pushed (RFC 9126, section 2.1)."),
    ({"request": "eyJhbGciOiJub25lIn0.e30."}, 400, "request_not_supported",
     "The 'request' parameter is not supported."),
    ({"prompt": "none login"}, 400, "invalid_request", "'prompt=none' cannot be combined with other values."),
    ({"claims": "[1]"}, 400, "invalid_request", "'claims' must be a JSON object."),
    ({"client_id": "someone-else"}, 400, "invalid_request",
     "'client_id' is not the authenticated client (RFC 9126, section 2.1)."),
    ({"state": "s" * 2048, "acr_values": "a" * 500, "scope": "openid " + "x" * 2000}, 400, "invalid_request",
     "The pushed request is larger than 4000 characters."),
    # Authlib would quote the URI in its description, which may not carry "é" (RFC 6749 §5.2)
    ({"redirect_uri": "https://rp.example.com/caf\u00e9"}, 400, "invalid_request",
     "The request contains characters that are not allowed."),
])
def test_push_validates_like_authorize(ctx, client, make_client, change, status, error, description):
    cid, secret = make_client()
    _verifier, challenge = pkce()
    params = {k: v for k, v in {**auth_params(cid, challenge), **change}.items() if v != ""}
    r = push(client, params, auth=(cid, secret))
    assert r.status_code == status and r.json() == {"error": error, "error_description": description}, r.text
    assert r.headers["cache-control"] == "no-store" and "location" not in r.headers
    with transaction(ctx.sessions) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(PushedAuthorizationRequest)) == 0


def test_push_needs_client_authentication(client, make_client):
    cid, _secret = make_client()
    _verifier, challenge = pkce()
    params = auth_params(cid, challenge)
    r = push(client, params)  # a confidential client without credentials
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = push(client, params, auth=(cid, "wrong"))
    assert r.status_code == 401
    assert client.get("/par").status_code == 405


def test_client_flag_requires_par(client, make_user, make_client):
    make_user()
    cid, secret = make_client(require_pushed_authorization_requests=True)
    verifier, challenge = pkce()
    params = auth_params(cid, challenge)
    r = client.get("/authorize", params=params)
    assert r.status_code == 302
    q = query(r.headers["location"])
    assert q["error"] == "invalid_request" and "pushed" in q["error_description"] and q["state"] == params["state"]
    # through PAR, including the login and consent pages in between (the pending request stays "pushed")
    request_uri = push(client, params, auth=(cid, secret)).json()["request_uri"]
    q = code_from(client, authorize(client, cid, request_uri))
    assert exchange(client, cid, secret, q["code"], verifier).status_code == 200
    # other clients are not held to it
    free, _free_secret = make_client()
    q = code_from(client, client.get("/authorize", params=auth_params(free, challenge)))
    assert "code" in q


@pytest.mark.parametrize("settings_overrides", [{"require_pushed_authorization_requests": True}])
def test_global_setting_requires_par(client, make_user, make_client, settings_overrides):
    make_user()
    cid, secret = make_client()
    verifier, challenge = pkce()
    params = auth_params(cid, challenge)
    r = client.get("/authorize", params=params)
    assert r.status_code == 302 and query(r.headers["location"])["error"] == "invalid_request"
    request_uri = push(client, params, auth=(cid, secret)).json()["request_uri"]
    q = code_from(client, authorize(client, cid, request_uri))
    assert exchange(client, cid, secret, q["code"], verifier).status_code == 200
    meta = client.get("/.well-known/openid-configuration").json()
    assert meta["require_pushed_authorization_requests"] is True


def test_discovery_names_the_par_endpoint(client):
    meta = client.get("/.well-known/openid-configuration").json()
    assert meta["pushed_authorization_request_endpoint"] == f"{ISSUER}/par"
    assert meta["require_pushed_authorization_requests"] is False
