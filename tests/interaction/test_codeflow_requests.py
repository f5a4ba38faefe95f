"""The code flow at its floor: a user who logs in and consents reaches the client's
callback in four requests from ``/authorize`` (``/authorize`` shows the login form
itself, and the login and consent POSTs continue the pending request themselves
instead of bouncing through ``/authorize/resume``).

The browser is driven the generic way (follow each redirect inside the server, submit
each form it is shown), so a hop added anywhere shows up in the count.
"""

from __future__ import annotations

from typing import Any

import jwt

from tests.account_flows import enrol, totp_code
from tests.conftest import ISSUER, PASSWORD
from tests.flows import REDIRECT_URI, auth_params, exchange, form_value, pkce, query


def _browse(client: Any, params: dict[str, str], decision: str = "allow",
            code: Any = None) -> tuple[list[str], Any]:
    """Every request from ``GET /authorize`` until the redirect leaves the server."""
    seen = ["GET /authorize"]
    r = client.get("/authorize", params=params, headers={"accept": "text/html"})
    for _ in range(12):
        if r.status_code in (302, 303):
            location = r.headers["location"]
            if location.startswith(REDIRECT_URI):
                return seen, r
            seen.append(f"GET {location.split('?')[0]}")
            r = client.get(location, headers={"accept": "text/html"})
            continue
        assert r.status_code == 200, r.text[:300]
        html, rid = r.text, form_value(r.text, "rid")
        data = {"csrf_token": form_value(html, "csrf_token"), "rid": rid}
        if 'action="/login"' in html:
            path, data = "/login", {**data, "username": "alice", "password": PASSWORD}
        elif 'action="/login/mfa"' in html:
            path, data = "/login/mfa", {**data, "code": code()}
        else:
            assert 'action="/consent"' in html, html[:300]
            path, data = "/consent", {**data, "decision": decision}
        seen.append(f"POST {path}")
        r = client.post(path, data=data)
    raise AssertionError(f"no redirect to the client after {seen}")


def test_login_and_consent_take_four_requests(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    verifier, challenge = pkce()
    params = auth_params(cid, challenge, prompt="consent")
    seen, r = _browse(client, params)
    assert seen == ["GET /authorize", "POST /login", "GET /consent", "POST /consent"]
    # the redirect after the consent POST is a 303 (never repeats the POST) and carries
    # the code, the state and the issuer (RFC 9207 §2), like one from /authorize
    assert r.status_code == 303
    answer = query(r.headers["location"])
    assert answer["state"] == params["state"] and answer["iss"] == ISSUER
    tokens = exchange(client, cid, secret, answer["code"], verifier).json()
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["nonce"] == params["nonce"] and claims["amr"] == ["pwd"]


def test_a_refusal_goes_back_from_the_consent_post(client, make_user, make_client):
    make_user()
    cid, _ = make_client()
    _verifier, challenge = pkce()
    params = auth_params(cid, challenge)
    seen, r = _browse(client, params, decision="deny")
    assert seen[-1] == "POST /consent" and len(seen) == 4
    answer = query(r.headers["location"])
    assert answer["error"] == "access_denied" and answer["iss"] == ISSUER
    assert answer["state"] == params["state"] and "code" not in answer


def test_with_a_second_factor_the_mfa_post_leads_on_without_a_hop(client, ctx, make_user, make_client):
    user = make_user()
    secret_otp, _codes = enrol(ctx, user.id)
    cid, _ = make_client()
    _verifier, challenge = pkce()
    seen, r = _browse(client, auth_params(cid, challenge), code=lambda: totp_code(secret_otp))
    assert seen == ["GET /authorize", "POST /login", "GET /login/mfa", "POST /login/mfa",
                    "GET /consent", "POST /consent"]
    assert "code" in query(r.headers["location"])
