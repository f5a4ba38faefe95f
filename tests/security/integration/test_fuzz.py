"""Arbitrary input to /token, /authorize, /introspect and /login never gives a 5xx."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NAMES = ["grant_type", "code", "redirect_uri", "client_id", "client_secret", "code_verifier", "refresh_token",
         "scope", "username", "password", "response_type", "state", "nonce", "code_challenge",
         "code_challenge_method", "prompt", "max_age", "claims", "id_token_hint", "acr_values", "token",
         "token_type_hint", "csrf_token", "rid", "request", "request_uri", "login_hint"]
VALUES = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["authorization_code", "refresh_token", "password", "client_credentials", "code",
                     "openid", "none", "S256", "plain", "login consent", "-1", "99999999999", "{}", "[]",
                     '{"id_token": {"acr": null}}', "https://rp.example.com/cb", "\x00", "%", "é" * 10]),
)
PARAMS = st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=8)
FUZZ = settings(max_examples=50, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def fuzz_client(client, make_client):
    cid, secret = make_client(grant_types=["authorization_code", "refresh_token", "password",
                                           "client_credentials"])
    return client, (cid, secret)


FORM = {"content-type": "application/x-www-form-urlencoded"}


def _post(client, path, params, **kw):
    return client.post(path, content=urlencode(params), headers=FORM, **kw)


def _check(r):
    assert r.status_code < 500, (r.status_code, r.text[:300])


@FUZZ
@given(params=PARAMS, authenticate=st.booleans())
def test_token(fuzz_client, params, authenticate):
    client, auth = fuzz_client
    _check(_post(client, "/token", params, auth=auth if authenticate else None))


@FUZZ
@given(params=PARAMS, method=st.sampled_from(["GET", "POST"]))
def test_authorize(fuzz_client, params, method):
    client, (cid, _secret) = fuzz_client
    params = [("client_id", cid), *params] if len(params) % 2 else params
    if method == "GET":
        _check(client.get("/authorize", params=params))
    else:
        _check(_post(client, "/authorize", params))


@FUZZ
@given(params=PARAMS)
def test_introspect(fuzz_client, params):
    client, auth = fuzz_client
    _check(_post(client, "/introspect", params, auth=auth))


@FUZZ
@given(params=PARAMS, body=st.binary(max_size=200))
def test_login_and_mfa(fuzz_client, params, body):
    client, _auth = fuzz_client
    _check(_post(client, "/login", params))
    _check(client.post("/login", content=body, headers=FORM))
    _check(_post(client, "/login/mfa", params))
    _check(client.get("/login", params=params))


@pytest.mark.parametrize("response_type", ["\u00e9", '"', "code\x1f"])
def test_authorize_unprintable_response_type(fuzz_client, response_type):
    client, (cid, _secret) = fuzz_client
    _check(client.get("/authorize", params={"client_id": cid, "response_type": response_type}))
