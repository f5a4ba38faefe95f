"""Regressions for the findings of the security review (each failed before its fix)."""

from __future__ import annotations

import json
import threading

import jwt
import pytest

from authserver.consents import service as consents
from authserver.db import transaction
from tests.flows import REDIRECT_URI, auth_params, exchange, get_code, pkce, query


def test_claims_parameter_cannot_widen_the_granted_scope(client, make_user, make_client):
    make_user(roles=["admin"])
    cid, secret = make_client(scope="openid")
    claims = json.dumps({"userinfo": {"email": None, "roles": None},
                         "id_token": {"email": None, "preferred_username": None}})
    code, verifier, _ = get_code(client, cid, scope="openid", claims=claims)
    body = exchange(client, cid, secret, code, verifier).json()
    id_token = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert "email" not in id_token and "preferred_username" not in id_token
    info = client.get("/userinfo", headers={"authorization": f"Bearer {body['access_token']}"}).json()
    assert set(info) == {"sub"}


def test_unknown_only_scope_still_needs_consent(client, make_user, make_client):
    make_user()
    other, _ = make_client()
    get_code(client, other)  # logged in, consented to another client only
    cid, _ = make_client()
    _verifier, challenge = pkce()
    r = client.get("/authorize", params=auth_params(cid, challenge, scope="foo", prompt="none"))
    q = query(r.headers["location"])
    assert r.headers["location"].startswith(REDIRECT_URI)
    assert q["error"] == "consent_required" and "code" not in q


@pytest.mark.parametrize("public", [False, True])
def test_narrowed_refresh_keeps_the_family_scope(client, make_user, make_client, public):
    make_user()
    kw = {"token_endpoint_auth_method": "none"} if public else {}
    cid, secret = make_client(**kw)
    code, verifier, _ = get_code(client, cid)
    body = exchange(client, cid, secret, code, verifier).json()

    def refresh(token, scope=None):
        data = {"grant_type": "refresh_token", "refresh_token": token}
        if scope:
            data["scope"] = scope
        if secret is None:
            data["client_id"] = cid
            return client.post("/token", data=data)
        return client.post("/token", data=data, auth=(cid, secret))

    narrowed = refresh(body["refresh_token"], "openid")
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "openid"
    assert "refresh_token" in narrowed.json()  # RFC 6749 §6: same scope as the old one
    wide = refresh(narrowed.json()["refresh_token"], "openid email offline_access")
    assert wide.status_code == 200, wide.text


@pytest.mark.parametrize("header", ["Basic !!!", "Basic " + "x" * 5])
@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
def test_undecodable_basic_credentials_are_invalid_client(client, header, path):
    r = client.post(path, data={"grant_type": "client_credentials", "token": "x"},
                    headers={"authorization": header})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
def test_basic_credentials_not_utf8_are_invalid_request(client, path):
    """Base64 that decodes to bytes that are not UTF-8: refused by the input edge (issue 10)."""
    r = client.post(path, data={"grant_type": "client_credentials", "token": "x"},
                    headers={"authorization": "Basic //8="})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


@pytest.mark.parametrize("params", [{"max_age": "\u00b2"}, {"claims": "[" * 3000}, {"max_age": "-1"}])
def test_odd_authorization_parameters_are_invalid_request(client, make_user, make_client, params):
    make_user()
    cid, _ = make_client()
    get_code(client, cid)  # a session, so max_age is evaluated
    _verifier, challenge = pkce()
    r = client.post("/authorize", data=auth_params(cid, challenge, **params))
    assert r.status_code == 302, r.text
    assert query(r.headers["location"])["error"] == "invalid_request"


def test_concurrent_first_consents_merge(ctx, make_user, make_client):
    user = make_user()
    cid, _ = make_client()
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def grant(scopes):
        try:
            with transaction(ctx.sessions) as db:
                barrier.wait(timeout=5)
                consents.grant(db, user.id, cid, scopes)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=grant, args=(s,)) for s in (["openid"], ["email"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with transaction(ctx.sessions) as db:
        assert consents.granted_scopes(db, user.id, cid) == {"openid", "email"}
