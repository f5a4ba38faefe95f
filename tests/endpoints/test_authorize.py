"""The authorization endpoint through the browser forms: errors that go back to
the client carry ``error``, ``state`` and ``iss``; errors whose redirect URI
cannot be trusted get an HTML page and never a redirect."""

from __future__ import annotations

import pytest

from tests.conftest import ISSUER
from tests.flows import REDIRECT_URI, auth_params, exchange, follow, form_value, get_code, login_rid, pkce, query


def _assert_error_redirect(response, params, error, status=302):
    assert response.status_code == status, response.text[:300]
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    q = query(location)
    assert q["error"] == error
    assert q["state"] == params["state"]
    assert q["iss"] == ISSUER
    assert "code" not in q


def _assert_error_page(response):
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


# -- PKCE at the authorization endpoint (RFC 7636, RFC 9700 §2.1.1) -------------

PKCE_CASES = {
    "no challenge": {"code_challenge": "", "code_challenge_method": ""},
    "plain": {"code_challenge_method": "plain"},
    "plain with verifier-like challenge": {"code_challenge": "a" * 43, "code_challenge_method": "plain"},
    "missing method": {"code_challenge_method": ""},
    "lower-case s256": {"code_challenge_method": "s256"},
    "method without challenge": {"code_challenge": ""},
    "challenge too short": {"code_challenge": "abc"},
}


@pytest.mark.parametrize("public", [False, True], ids=["confidential", "public"])
@pytest.mark.parametrize("case", PKCE_CASES.values(), ids=PKCE_CASES.keys())
def test_pkce_downgrade_or_absence_is_refused(client, make_user, make_client, case, public):
    make_user()
    cid, _ = make_client(token_endpoint_auth_method="none" if public else "client_secret_basic")
    _verifier, challenge = pkce()
    params = auth_params(cid, challenge, **case)
    response = follow(client, client.get("/authorize", params=params))
    _assert_error_redirect(response, params, "invalid_request")


# -- redirect URI: exact match or an HTML page --------------------------------

BAD_REDIRECTS = {
    "other host": "https://evil.example.com/cb",
    "different query": REDIRECT_URI + "?next=1",
    "different path": "https://rp.example.com/cb2",
    "path prefix": "https://rp.example.com/cb/x",
    "trailing slash": REDIRECT_URI + "/",
    "fragment": REDIRECT_URI + "#frag",
    "empty fragment": REDIRECT_URI + "#",
    "http scheme": "http://rp.example.com/cb",
    "upper-case host": "https://RP.example.com/cb",
    "port": "https://rp.example.com:443/cb",
    "userinfo": "https://rp.example.com@evil.example.com/cb",
}


@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "logged-in"])
@pytest.mark.parametrize("redirect_uri", BAD_REDIRECTS.values(), ids=BAD_REDIRECTS.keys())
def test_unregistered_redirect_uri_never_receives_a_redirect(client, make_user, make_client,
                                                             redirect_uri, logged_in):
    make_user()
    cid, _secret = make_client()
    if logged_in:
        get_code(client, cid)
    _verifier, challenge = pkce()
    # an error in the request too: it must still not be redirected anywhere
    for extra in ({}, {"response_type": "token"}, {"prompt": "none"}):
        params = auth_params(cid, challenge, redirect_uri=redirect_uri, **extra)
        _assert_error_page(client.get("/authorize", params=params))


def test_missing_redirect_uri_with_several_registered_gets_a_page(client, make_client):
    cid, _ = make_client(redirect_uris=[REDIRECT_URI, "https://rp.example.com/other"])
    params = auth_params(cid, pkce()[1])
    del params["redirect_uri"]
    _assert_error_page(client.get("/authorize", params=params))


@pytest.mark.parametrize("client_id", ["unknown-client", "", "x" * 200])
def test_unknown_client_gets_an_html_page(client, client_id):
    params = auth_params(client_id, pkce()[1])
    _assert_error_page(client.get("/authorize", params=params))


def test_client_without_authorization_code_grant_is_refused(client, make_client):
    cid, _ = make_client(grant_types=["client_credentials"], redirect_uris=[REDIRECT_URI], scope="api")
    params = auth_params(cid, pkce()[1], scope="api")
    response = client.get("/authorize", params=params)
    # the client and redirect URI are valid, so the error goes back to the client (RFC 6749 §4.1.2.1)
    assert response.status_code == 302
    q = query(response.headers["location"])
    assert "code" not in q
    assert (q["error"], q["state"], q["iss"]) == ("unauthorized_client", params["state"], ISSUER)


# -- errors redirected to the client ---------------------------------------------

REDIRECTED_ERRORS = {
    "request object": ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    "request_uri": ({"request_uri": "https://rp.example.com/req.jwt"}, "request_uri_not_supported"),
    "registration": ({"registration": "{}"}, "registration_not_supported"),
    "unsupported response_type": ({"response_type": "token"}, "unsupported_response_type"),
    "prompt none with login": ({"prompt": "none login"}, "invalid_request"),
    "bad max_age": ({"max_age": "-1"}, "invalid_request"),
    "bad claims": ({"claims": "not json"}, "invalid_request"),
    "bad id_token_hint": ({"id_token_hint": "a.b.c"}, "invalid_request"),
}


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("extra", "error"), REDIRECTED_ERRORS.values(), ids=REDIRECTED_ERRORS.keys())
def test_request_errors_are_redirected_with_state_and_iss(client, make_user, make_client, extra, error,
                                                          method):
    make_user()
    cid, _ = make_client()
    params = auth_params(cid, pkce()[1], **extra)
    response = client.get("/authorize", params=params) if method == "GET" else client.post("/authorize", data=params)
    response = follow(client, response)
    _assert_error_redirect(response, params, error)


def test_an_unsupported_response_type_is_described(client, make_user, make_client):
    make_user()
    cid, _ = make_client()
    params = auth_params(cid, pkce()[1], response_type="token")
    q = query(follow(client, client.get("/authorize", params=params)).headers["location"])
    assert q["error_description"] == "Only response_type 'code' is supported."


def test_authorization_request_as_form_post(client, make_user, make_client):
    """OIDC Core §3.1.2.1: the authorization endpoint accepts POST."""
    make_user()
    cid, secret = make_client()
    verifier, challenge = pkce()
    params = auth_params(cid, challenge)
    response = follow(client, client.post("/authorize", data=params))
    q = query(response.headers["location"])
    assert q["state"] == params["state"] and q["iss"] == ISSUER
    token = exchange(client, cid, secret, q["code"], verifier)
    assert token.status_code == 200, token.text


def test_deny_gives_access_denied_with_state_and_iss(client, make_user, make_client):
    make_user()
    cid, _ = make_client()
    params = auth_params(cid, pkce()[1])
    response = follow(client, client.get("/authorize", params=params), consent="deny")
    # straight from the consent POST: 303 (RFC 9700 §4.12)
    _assert_error_redirect(response, params, "access_denied", status=303)


def test_consent_post_without_csrf_token_is_refused(client, make_user, make_client):
    make_user()
    cid, _ = make_client()
    params = auth_params(cid, pkce()[1])
    page = follow(client, client.get("/authorize", params=params), consent=None)
    assert 'action="/consent"' in page.text
    rid = form_value(page.text, "rid")
    response = client.post("/consent", data={"rid": rid, "decision": "allow"})
    assert response.status_code == 400 and "location" not in response.headers


def test_login_post_without_csrf_token_is_refused(client, make_user, make_client):
    make_user()
    cid, _ = make_client()
    rid = login_rid(client.get("/authorize", params=auth_params(cid, pkce()[1])))
    response = client.post("/login", data={"rid": rid, "username": "alice",
                                           "password": "correct horse battery staple"})
    assert response.status_code == 400 and "location" not in response.headers


def test_client_id_with_a_nul_byte_is_an_unknown_client(client):
    """Postgres text refuses NUL: the lookup must not reach it (found by test_fuzz)."""
    response = client.get("/authorize", params={"client_id": "\x00", "response_type": "code"})
    assert response.status_code == 400 and "location" not in response.headers


def test_the_login_form_is_shown_by_authorize_itself(client, make_user, make_client):
    """A GET that needs a login gets the login form in the answer to ``/authorize``, not a
    303 to ``/login``: a page like the others (not cached, not framed), in the request's
    ``ui_locales``, whose form posts to ``/login`` for the pending request."""
    make_user()
    cid, _ = make_client(skip_consent=True)
    params = auth_params(cid, pkce()[1], login_hint="alice", ui_locales="de")
    page = client.get("/authorize", params=params)
    rid = login_rid(page)
    assert '<html lang="de"' in page.text and 'value="alice"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"  # the URL holds the request's parameters
    assert f'name="next" value="/login?rid={rid}"' in page.text  # the switcher keeps this request
    r = client.post("/login", data={"csrf_token": form_value(page.text, "csrf_token"), "rid": rid,
                                     "username": "alice", "password": "correct horse battery staple"})
    assert r.status_code == 303 and query(r.headers["location"])["state"] == params["state"]


@pytest.mark.parametrize("how", ["POST", "pushed"])
def test_a_post_or_a_pushed_request_goes_to_a_login_page_that_can_be_reloaded(client, make_user, make_client,
                                                                               how):
    """A POST to ``/authorize`` keeps its 303 (a reload must not resubmit it), and so does a
    pushed request (RFC 9126 §4): its ``request_uri`` is spent, so only ``/login?rid=…``
    can be reloaded; reloading it shows the same form."""
    make_user()
    cid, secret = make_client(skip_consent=True)
    params = auth_params(cid, pkce()[1])
    if how == "POST":
        r = client.post("/authorize", data=params)
    else:
        pushed = client.post("/par", data=params, auth=(cid, secret)).json()["request_uri"]
        r = client.get("/authorize", params={"client_id": cid, "request_uri": pushed})
    assert r.status_code == 303 and r.headers["location"].startswith("/login?rid=")
    assert login_rid(client.get(r.headers["location"])) == login_rid(client.get(r.headers["location"]))
    assert query(follow(client, client.get(r.headers["location"])).headers["location"])["state"] == params["state"]
