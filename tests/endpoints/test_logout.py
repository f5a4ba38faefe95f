"""RP-Initiated Logout 1.0 at ``/logout``: redirect only to a registered
``post_logout_redirect_uri`` named with a valid ``id_token_hint``."""

from __future__ import annotations

import pytest

from tests.conftest import ISSUER
from tests.flows import auth_params, pkce, query, tokens

LOGGED_OUT = "https://rp.example.com/logged-out"


@pytest.fixture
def rp(make_user, make_client):
    make_user()
    return make_client(post_logout_redirect_uris=[LOGGED_OUT])


def _prompt_none(client, cid):
    params = auth_params(cid, pkce()[1], prompt="none")
    return params, query(client.get("/authorize", params=params).headers["location"])


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_logout_with_valid_hint_redirects_with_state(client, rp, method):
    cid, secret = rp
    body = tokens(client, cid, secret)
    params = {"id_token_hint": body["id_token"], "post_logout_redirect_uri": LOGGED_OUT, "state": "s-123"}
    response = client.get("/logout", params=params) if method == "GET" else client.post("/logout", data=params)
    assert response.status_code == 303
    assert response.headers["location"] == LOGGED_OUT + "?state=s-123"
    # the session is over: prompt=none now needs a login
    auth, q = _prompt_none(client, cid)
    assert (q["error"], q["state"], q["iss"]) == ("login_required", auth["state"], ISSUER)


BAD_LOGOUTS = {
    "bad hint": lambda body: {"id_token_hint": "a.b.c", "post_logout_redirect_uri": LOGGED_OUT},
    "access token as hint": lambda body: {"id_token_hint": body["access_token"],
                                          "post_logout_redirect_uri": LOGGED_OUT},
    "unregistered uri": lambda body: {"id_token_hint": body["id_token"],
                                      "post_logout_redirect_uri": "https://evil.example.com/"},
    "registered uri with extra query": lambda body: {"id_token_hint": body["id_token"],
                                                     "post_logout_redirect_uri": LOGGED_OUT + "?x=1"},
    "uri without hint": lambda body: {"post_logout_redirect_uri": LOGGED_OUT},
    "client_id disagrees with hint": lambda body: {"id_token_hint": body["id_token"], "client_id": "other",
                                                   "post_logout_redirect_uri": LOGGED_OUT},
}


@pytest.mark.parametrize("make_params", BAD_LOGOUTS.values(), ids=BAD_LOGOUTS.keys())
def test_doubtful_logout_never_redirects(client, rp, make_params):
    cid, secret = rp
    body = tokens(client, cid, secret)
    response = client.get("/logout", params={**make_params(body), "state": "s"})
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    # nothing happened to the session
    _auth, q = _prompt_none(client, cid)
    assert "code" in q


def test_logout_without_hint_asks_to_confirm(client, rp):
    cid, secret = rp
    tokens(client, cid, secret)
    page = client.get("/logout")
    assert page.status_code == 200 and 'name="csrf_token"' in page.text
    import re

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    # a forged POST without the CSRF token does not log out
    client.post("/logout", data={"confirm": "yes"})
    assert "code" in _prompt_none(client, cid)[1]
    response = client.post("/logout", data={"confirm": "yes", "csrf_token": csrf})
    assert response.status_code == 200 and "location" not in response.headers
    assert _prompt_none(client, cid)[1]["error"] == "login_required"
