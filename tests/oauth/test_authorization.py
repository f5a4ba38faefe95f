"""The authorization pipeline (``authserver.oauth.authorization``): login,
``prompt``, ``max_age`` and remembered consent, through the HTML forms."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import ISSUER
from tests.flows import (
    REDIRECT_URI,
    auth_params,
    exchange,
    follow,
    get_code,
    login_rid,
    pkce,
    query,
    tokens,
    unverified,
)


def _authorize(client, cid, **extra):
    params = auth_params(cid, pkce()[1], **extra)
    return params, client.get("/authorize", params=params)


def _goes_to(response, path) -> str:
    """``path``'s page comes next (a 303 there; the login form ``/authorize`` shows itself);
    returns the pending request's ``rid``."""
    if path == "/login" and response.request.url.path == "/authorize":
        return login_rid(response)
    assert response.status_code == 303, response.text[:300]
    assert response.headers["location"].startswith(path + "?rid=")
    return query(response.headers["location"])["rid"]


def _code_redirect(response, params):
    # 302 from GET /authorize; 303 when the login or consent POST continues the request
    # itself (a redirect after a POST must not repeat it: RFC 9700 §4.12)
    assert response.status_code == (303 if response.request.method == "POST" else 302), response.text[:300]
    q = query(response.headers["location"])
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    assert "code" in q and q["state"] == params["state"] and q["iss"] == ISSUER
    return q["code"]


def _age_session(ctx, seconds):
    """Pretend the browser session logged in ``seconds`` ago."""
    from authserver.sessions.models import BrowserSession

    with ctx.engine.begin() as conn:
        conn.execute(sa.update(BrowserSession).values(auth_time=BrowserSession.auth_time - seconds))


def test_prompt_none_without_session_gets_login_required(client, make_client):
    cid, _ = make_client()
    params, response = _authorize(client, cid, prompt="none")
    assert response.status_code == 302
    q = query(response.headers["location"])
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    assert q == {"error": "login_required", "state": params["state"], "iss": ISSUER,
                 **({"error_description": q["error_description"]} if "error_description" in q else {})}


def test_prompt_none_with_session_and_consent_issues_a_code(client, make_user, make_client):
    make_user()
    cid, _ = make_client()
    get_code(client, cid)
    params, response = _authorize(client, cid, prompt="none")
    _code_redirect(response, params)


def test_prompt_none_without_consent_gets_consent_required(client, make_user, make_client):
    make_user()
    cid, _ = make_client()
    get_code(client, cid, scope="openid")
    params, response = _authorize(client, cid, prompt="none", scope="openid email")
    assert query(response.headers["location"])["error"] == "consent_required"
    assert query(response.headers["location"])["state"] == params["state"]


def test_max_age_zero_forces_login(client, clock, make_user, make_client):
    make_user()
    cid, secret = make_client()
    first = unverified(tokens(client, cid, secret)["id_token"])
    clock.advance(100)
    verifier, challenge = pkce()
    params = auth_params(cid, challenge, max_age="0")
    response = client.get("/authorize", params=params)
    _goes_to(response, "/login")
    code = _code_redirect(follow(client, response), params)
    second = unverified(exchange(client, cid, secret, code, verifier).json()["id_token"])
    assert second["auth_time"] == first["auth_time"] + 100  # a fresh login, not the old one


def test_max_age_longer_than_session_age_needs_no_login(client, ctx, make_user, make_client):
    make_user()
    cid, _ = make_client()
    get_code(client, cid)
    _age_session(ctx, 5)
    params, response = _authorize(client, cid, max_age="3600")
    _code_redirect(response, params)
    params, response = _authorize(client, cid, max_age="2")
    _goes_to(response, "/login")


def test_prompt_login_reauthenticates_and_auth_time_advances(client, clock, make_user, make_client):
    make_user()
    cid, secret = make_client()
    first = unverified(tokens(client, cid, secret)["id_token"])
    clock.advance(100)
    verifier, challenge = pkce()
    params = auth_params(cid, challenge, prompt="login")
    response = client.get("/authorize", params=params)
    _goes_to(response, "/login")
    code = _code_redirect(follow(client, response), params)
    body = exchange(client, cid, secret, code, verifier).json()
    second = unverified(body["id_token"])
    assert second["auth_time"] == first["auth_time"] + 100  # a fresh login, not the old one
    assert unverified(body["access_token"])["auth_time"] == second["auth_time"]
    # the login loop ends: no second login page after re-authenticating
    assert second["sub"] == first["sub"]


def test_session_reused_without_prompt(client, ctx, make_user, make_client):
    make_user()
    cid, secret = make_client()
    first = unverified(tokens(client, cid, secret)["id_token"])
    _age_session(ctx, 100)
    verifier, challenge = pkce()
    params = auth_params(cid, challenge)
    code = _code_redirect(client.get("/authorize", params=params), params)
    second = unverified(exchange(client, cid, secret, code, verifier).json()["id_token"])
    # auth_time is the real login time, not the time the code was issued
    assert second["auth_time"] == first["auth_time"] - 100


# -- consent ----------------------------------------------------------------------


def test_consent_is_remembered(client, make_user, make_client):
    make_user()
    cid, _ = make_client()
    get_code(client, cid)
    params, response = _authorize(client, cid)
    _code_redirect(response, params)


def test_new_scope_asks_again(client, make_user, make_client):
    make_user()
    cid, _ = make_client()
    get_code(client, cid, scope="openid profile")
    params, response = _authorize(client, cid, scope="openid profile email")
    _goes_to(response, "/consent")
    page = client.get(response.headers["location"])
    assert "email" in page.text
    _code_redirect(follow(client, page), params)
    # now all three are remembered
    params, response = _authorize(client, cid, scope="openid email")
    _code_redirect(response, params)


def test_prompt_consent_asks_again(client, make_user, make_client):
    make_user()
    cid, _ = make_client()
    get_code(client, cid)
    params, response = _authorize(client, cid, prompt="consent")
    _goes_to(response, "/consent")
    _code_redirect(follow(client, response), params)


def test_prompt_consent_then_deny_gives_access_denied(client, make_user, make_client):
    make_user()
    cid, _ = make_client()
    get_code(client, cid)
    params, response = _authorize(client, cid, prompt="consent")
    response = follow(client, response, consent="deny")
    q = query(response.headers["location"])
    assert (q["error"], q["state"], q["iss"]) == ("access_denied", params["state"], ISSUER)


def test_skip_consent_client_never_asks(client, make_user, make_client):
    make_user()
    cid, _ = make_client(skip_consent=True)
    params, response = _authorize(client, cid)
    _goes_to(response, "/login")
    # consent=None: a consent page would be returned as is and fail here
    _code_redirect(follow(client, response, consent=None), params)
    params, response = _authorize(client, cid, scope="openid email roles")
    _code_redirect(response, params)


def test_consent_is_per_client(client, make_user, make_client):
    make_user()
    first, _ = make_client()
    second, _ = make_client()
    get_code(client, first)
    _params, response = _authorize(client, second)
    _goes_to(response, "/consent")


def test_denied_consent_is_not_remembered(client, make_user, make_client):
    make_user()
    cid, _ = make_client()
    _params, response = _authorize(client, cid)
    follow(client, response, consent="deny")
    _params, response = _authorize(client, cid)
    _goes_to(response, "/consent")


def test_prompt_login_cannot_be_skipped_by_resuming_without_logging_in(client, ctx, make_user, make_client):
    """A session whose auth_time is not older than the pending request (same
    second) must still log in again: resuming directly gets the login page."""
    make_user()
    cid, _ = make_client()
    get_code(client, cid)
    _age_session(ctx, -10)  # auth_time in the same second as (or after) the new request
    params, response = _authorize(client, cid, prompt="login")
    rid = _goes_to(response, "/login")
    resumed = client.get(f"/authorize/resume?rid={rid}")
    _goes_to(resumed, "/login")
    _code_redirect(follow(client, resumed), params)
