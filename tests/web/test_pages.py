"""The form-page pattern (authserver/web/pages.py): every browser form refuses a POST
without this session's CSRF token, and every page names an expired sign-in request
the same way."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from authserver.web.pages import CSRF_FAILED, SIGN_IN_EXPIRED
from tests.account_flows import csrf, login
from tests.conftest import ISSUER, PASSWORD
from tests.flows import auth_params, form_value, login_rid, pkce

NEW_PASSWORD = "a much longer new passphrase"

#: every POST form of the browser pages, with a form that would be acted on if the token matched
FORMS = [
    ("/login", {"username": "alice", "password": PASSWORD, "rid": ""}),
    ("/login/mfa", {"code": "123456", "rid": ""}),
    ("/consent", {"decision": "allow", "rid": "x"}),
    ("/signup", {"username": "bob", "email": "bob@example.com", "password": NEW_PASSWORD, "rid": ""}),
    ("/signup/verify", {"code": "12345678", "rid": ""}),
    ("/password/reset", {"email": "alice@example.com"}),
    ("/password/reset/confirm", {"code": "12345678", "new_password": NEW_PASSWORD}),
    ("/account/sessions/revoke", {"sid": "x"}),
    ("/account/sessions/revoke-others", {}),
    ("/account/consents/revoke", {"client_id": "x"}),
    ("/account/mfa/enrol", {}),
    ("/account/mfa/confirm", {"code": "123456"}),
    ("/account/mfa/disable", {"code": "123456"}),
    ("/account/mfa/backup-codes", {}),
    ("/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
]


def _other_browsers_token(app: object) -> str:
    with TestClient(app, base_url=ISSUER, follow_redirects=False) as other:  # type: ignore[arg-type]
        return form_value(other.get("/login").text, "csrf_token")


@pytest.mark.parametrize("token", ["missing", "wrong", "another session's"])
@pytest.mark.parametrize(("path", "form"), FORMS, ids=[path for path, _ in FORMS])
def test_post_without_this_sessions_csrf_token_is_refused(app, client, make_user, path, form, token):
    make_user()
    login(client)
    values = dict(form)
    if token == "wrong":
        values["csrf_token"] = "0" * 64
    elif token == "another session's":
        values["csrf_token"] = _other_browsers_token(app)
    response = client.post(path, data=values)
    assert response.status_code == 400
    assert CSRF_FAILED in response.text
    assert "location" not in response.headers and "set-cookie" not in response.headers
    assert client.get("/account").status_code == 200  # still signed in: nothing was done


def test_logout_confirmation_needs_the_csrf_token(app, client, make_user):
    """Logout accepts a relying party's POST (RP-Initiated Logout §2), so an unchecked
    confirmation is not refused: it is not taken as the user's answer either."""
    make_user()
    login(client)
    response = client.post("/logout", data={"confirm": "yes", "csrf_token": _other_browsers_token(app)})
    assert response.status_code == 200 and 'name="confirm"' in response.text
    assert client.get("/account").status_code == 200
    response = client.post("/logout", data={"confirm": "yes", "csrf_token": csrf(client)})
    assert "set-cookie" in response.headers
    assert client.get("/account").headers["location"] == "/login"


def _pending_rid(client, make_client) -> str:
    cid, _ = make_client()
    return login_rid(client.get("/authorize", params=auth_params(cid, pkce()[1])))


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/login?rid=unknown"),
    ("POST", "/login"),
    ("GET", "/consent?rid=unknown"),
    ("POST", "/consent"),
    ("GET", "/authorize/resume?rid=unknown"),
])
def test_an_expired_sign_in_request_is_named_the_same_everywhere(client, make_user, make_client, method, path):
    make_user()
    rid = _pending_rid(client, make_client)
    login(client, rid=rid)
    if method == "GET":
        response = client.get(path, headers={"accept": "text/html"})
    else:
        data = {"csrf_token": csrf(client, "/account"), "rid": "unknown", "decision": "allow",
                "username": "alice", "password": "wrong password"}
        response = client.post(path, data=data)
    assert response.status_code == 400 and "location" not in response.headers
    assert SIGN_IN_EXPIRED in response.text
    resumed = client.get(f"/authorize/resume?rid={rid}")  # the real request is still pending
    assert resumed.status_code == 303 and resumed.headers["location"] == f"/consent?rid={rid}"
