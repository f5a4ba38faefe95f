"""Nothing is stored for a browser that has not signed in (docs/decisions.md): its pending
authorization requests travel in its sealed, size-capped session cookie."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select

from authserver.db import transaction
from authserver.sessions import service as sessions
from authserver.sessions.models import BrowserSession
from tests.account_flows import login
from tests.flows import auth_params, follow, form_value, login_rid, pkce, query


def _rows(ctx) -> int:
    with transaction(ctx.sessions) as db:
        return int(db.scalar(select(func.count()).select_from(BrowserSession)))


def _cookie(client, ctx) -> str:
    return client.cookies[sessions.cookie_name(ctx.settings)]


def test_cookieless_authorize_requests_store_nothing(client, ctx, make_client):
    cid, _ = make_client()
    _verifier, challenge = pkce()
    for _ in range(25):
        client.cookies.clear()
        r = client.get("/authorize", params=auth_params(cid, challenge, state="s" * 1500,
                                                         login_hint="alice@example.com"))
        login_rid(r)  # the login form, shown at once
        assert f"Max-Age={sessions.ANONYMOUS_TTL};" in r.headers["set-cookie"]
        # the pending request is in the cookie, sealed: not readable, not over the cap
        value = _cookie(client, ctx)
        assert "alice" not in value and len(value) <= sessions.MAX_ANONYMOUS_COOKIE
        assert 'value="alice@example.com"' in r.text
    assert _rows(ctx) == 0


def test_a_request_too_large_for_the_cookie_is_refused_and_not_stored(client, ctx, make_client):
    cid, _ = make_client()
    _verifier, challenge = pkce()
    r = client.get("/authorize", params=auth_params(cid, challenge, state=secrets.token_hex(15000)))
    assert r.status_code == 400  # here, or at the input edge's caps: either way nothing is kept
    assert sessions.cookie_name(ctx.settings) not in client.cookies
    assert _rows(ctx) == 0


def test_flow_from_a_cookieless_request_through_login_and_consent(client, ctx, make_user, make_client):
    make_user()
    cid, _ = make_client()
    _verifier, challenge = pkce()
    params = auth_params(cid, challenge)
    r = follow(client, client.get("/authorize", params=params))
    # the consent POST answers with the redirect itself: 303, never repeating the POST (RFC 9700 §4.12)
    assert r.status_code == 303 and query(r.headers["location"])["state"] == params["state"]
    assert "code" in query(r.headers["location"])
    assert _rows(ctx) == 1  # the session written at login


def test_two_tabs_pending_at_once_both_finish(client, ctx, make_user, make_client):
    make_user()
    cid, _ = make_client(skip_consent=True)
    _verifier, challenge = pkce()
    first, second = auth_params(cid, challenge), auth_params(cid, challenge)
    rid1 = login_rid(client.get("/authorize", params=first))
    rid2 = login_rid(client.get("/authorize", params=second))
    # the login continues the first request itself; the second is resumed afterwards
    r = login(client, rid=rid1)
    assert r.status_code == 303 and query(r.headers["location"])["state"] == first["state"]
    r = client.get(f"/authorize/resume?rid={rid2}")
    assert r.status_code == 302 and query(r.headers["location"])["state"] == second["state"]


def test_older_pending_requests_give_way_when_the_cookie_is_full(client, ctx, make_client):
    cid, _ = make_client()
    _verifier, challenge = pkce()
    rids = [login_rid(client.get("/authorize", params=auth_params(cid, challenge, state="x" * 1000)))
            for _ in range(4)]
    assert len(_cookie(client, ctx)) <= sessions.MAX_ANONYMOUS_COOKIE
    assert client.get(f"/login?rid={rids[-1]}").status_code == 200
    assert "expired" in client.get(f"/login?rid={rids[0]}").text
    assert _rows(ctx) == 0


def test_a_forged_or_foreign_cookie_is_no_session(client, ctx, make_client):
    cid, _ = make_client()
    _verifier, challenge = pkce()
    page = client.get("/authorize", params=auth_params(cid, challenge))
    rid, csrf = login_rid(page), form_value(page.text, "csrf_token")
    value = _cookie(client, ctx)
    tampered = value[:-8] + ("AAAAAAAA" if not value.endswith("AAAAAAAA") else "BBBBBBBB")
    client.cookies.clear()
    client.cookies.set(sessions.cookie_name(ctx.settings), tampered)
    assert "expired" in client.get(f"/login?rid={rid}").text
    r = client.post("/login", data={"csrf_token": csrf, "rid": rid, "username": "a", "password": "b"})
    assert r.status_code == 400 and _rows(ctx) == 0
