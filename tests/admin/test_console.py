"""The admin console through the ASGI app: the guard, CSRF, and every write.

Each write is checked where it lands (the row, the audit event naming the
administrator as ``actor``), not only by the page it returns.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from authserver.accounts.models import User
from authserver.audit.models import AuditEvent
from authserver.clients.models import Client
from authserver.db import transaction
from authserver.sessions.models import BrowserSession
from tests.account_flows import enrol, login, totp_code
from tests.conftest import ISSUER
from tests.flows import form_value


def _browser(app: Any) -> TestClient:
    return TestClient(app, base_url=ISSUER, follow_redirects=False)


def _mfa(client: TestClient, secret: str) -> Any:
    page = client.get("/login/mfa")
    return client.post("/login/mfa", data={"csrf_token": form_value(page.text, "csrf_token"),
                                           "code": totp_code(secret)})


@pytest.fixture
def admin(ctx: Any, make_user: Any) -> User:
    user: User = make_user("root", roles=["admin"])
    return user


@pytest.fixture
def console(app: Any, ctx: Any, admin: User) -> Any:
    """A browser signed in as an administrator with TOTP."""
    secret, _codes = enrol(ctx, admin.id)
    with _browser(app) as browser:
        assert login(browser, "root").status_code == 303
        assert _mfa(browser, secret).status_code == 303
        yield browser


def _csrf(client: TestClient, path: str = "/account") -> str:
    return form_value(client.get(path).text, "csrf_token")


def _events(ctx: Any, event: str) -> list[AuditEvent]:
    with transaction(ctx.sessions) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == event)))


# -- the guard ---------------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"admin_require_mfa": False}])
def test_anonymous_visit_goes_to_login_and_comes_back(client, admin):
    r = client.get("/admin/users?q=ro")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    r = login(client, "root")
    assert r.status_code == 303 and r.headers["location"] == "/admin/users?q=ro"
    assert client.get(r.headers["location"]).status_code == 200
    # the way back is used once: the next login goes to the account page
    assert login(client, "root").headers["location"] == "/account"


def test_admin_with_mfa_comes_back_after_the_second_factor(client, admin, ctx):
    secret, _ = enrol(ctx, admin.id)
    assert client.get("/admin/clients").headers["location"] == "/login"
    assert login(client, "root").headers["location"] == "/admin/clients"
    assert client.get("/admin/clients").headers["location"] == "/login/mfa"
    r = _mfa(client, secret)
    assert r.status_code == 303 and r.headers["location"] == "/admin/clients"
    assert client.get("/admin/clients").status_code == 200


def test_non_admin_gets_403(client, make_user):
    make_user("alice")
    login(client, "alice")
    for path in ("/admin/users", "/admin/clients", "/admin/keys", "/admin/audit", "/admin/enrol"):
        r = client.get(path, headers={"accept": "text/html"})
        assert r.status_code == 403, path
        assert "administrator" in r.text


def test_disabled_admin_is_sent_to_login(app, console, ctx, admin):
    with transaction(ctx.sessions) as db:
        db.get(User, admin.id).disabled = True
    assert console.get("/admin/users").headers["location"] == "/login"


def test_admin_without_mfa_is_sent_to_enrol(client, admin):
    login(client, "root")
    r = client.get("/admin/users")
    assert r.status_code == 303 and r.headers["location"] == "/admin/enrol"
    r = client.get("/admin/enrol")
    assert r.status_code == 200 and 'action="/account/mfa/enrol"' in r.text
    # a write is refused the same way, before it happens
    csrf = form_value(r.text, "csrf_token")
    r = client.post("/admin/keys/rotate", data={"csrf_token": csrf})
    assert r.headers["location"] == "/admin/enrol"
    assert client.post("/account/mfa/enrol", data={"csrf_token": csrf}).headers["location"] == "/account/mfa/enrol"


@pytest.mark.parametrize("settings_overrides", [{"admin_require_mfa": False}])
def test_admin_mfa_can_be_switched_off(client, admin):
    login(client, "root")
    assert client.get("/admin/users").status_code == 200
    assert client.get("/admin/enrol").headers["location"] == "/admin"


def test_auditor_reads_but_cannot_write(app, ctx, make_user, admin):
    auditor = make_user("eve", roles=["auditor"])
    secret, _ = enrol(ctx, auditor.id)
    with _browser(app) as browser:
        login(browser, "eve")
        _mfa(browser, secret)
        page = browser.get(f"/admin/users/{admin.id}")
        assert page.status_code == 200 and 'id="disable"' not in page.text
        assert browser.get("/admin/clients/new").status_code == 403
        csrf = _csrf(browser, "/account")  # the auditor's pages have no form
        r = browser.post(f"/admin/users/{admin.id}/disable", data={"csrf_token": csrf})
        assert r.status_code == 403
        assert browser.post("/admin/keys/rotate", data={"csrf_token": csrf}).status_code == 403
    with transaction(ctx.sessions) as db:
        assert not db.get(User, admin.id).disabled


# -- CSRF --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/admin/users/{user}/disable", "/admin/users/{user}/enable", "/admin/clients",
    "/admin/clients/{client}", "/admin/clients/{client}/rotate-secret", "/admin/keys/rotate",
])
@pytest.mark.parametrize("token", [None, "forged"])
def test_every_form_needs_the_csrf_token(console, ctx, make_user, make_client, path, token):
    user = make_user("bob")
    cid, _ = make_client()
    with transaction(ctx.sessions) as db:
        before = db.get(Client, cid).client_secret_hash
    data = {"client_name": "x", "redirect_uris": "https://x.example/cb", "grant_type_authorization_code": "on",
            "scope": "openid", "token_endpoint_auth_method": "client_secret_basic"}
    if token:
        data["csrf_token"] = token
    r = console.post(path.format(user=user.id, client=cid), data=data, headers={"accept": "text/html"})
    assert r.status_code == 400 and "expired" in r.text
    with transaction(ctx.sessions) as db:
        assert not db.get(User, user.id).disabled
        assert db.get(Client, cid).client_secret_hash == before
        assert db.get(Client, cid).client_name == "Test App"
        assert db.scalar(select(Client).where(Client.client_name == "x")) is None
    assert not _events(ctx, "key_rotated") and not _events(ctx, "client_updated")


# -- users -------------------------------------------------------------------------------


def test_user_search_and_pagination(console, make_user):
    for n in range(27):
        make_user(f"user{n:02d}", name=None)
    first = console.get("/admin/users?q=user")
    assert first.status_code == 200
    assert first.text.count('href="/admin/users/') == 25 and "root@example.com" not in first.text
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = console.get("/admin/users?q=user&page=2")
    assert second.text.count('href="/admin/users/') == 2 and "user26" in second.text
    assert 'rel="next"' not in second.text and 'href="/admin/users?q=user&amp;page=1"' in second.text
    one = console.get("/admin/users?q=USER07%40")
    assert "user07@example.com" in one.text and one.text.count('href="/admin/users/') == 1
    # LIKE wildcards are literal
    assert console.get("/admin/users?q=%25").text.count('href="/admin/users/') == 0
    assert console.get("/admin/users?page=x").status_code == 200


def test_user_detail_shows_sessions_consents_mfa_and_trail(console, ctx, admin, make_user, make_client):
    from authserver.consents import service as consents

    bob = make_user("bob")
    cid, _ = make_client(client_name="Shop")
    with transaction(ctx.sessions) as db:
        consents.grant(db, bob.id, cid, ["openid", "email"])
    page = console.get(f"/admin/users/{bob.id}")
    assert page.status_code == 200
    assert "Shop" in page.text and "openid email" in page.text
    assert re.search(r'id="mfa">off', page.text)
    assert "consent_granted" in page.text and "user_created" in page.text
    mine = console.get(f"/admin/users/{admin.id}").text
    assert re.search(r'id="mfa">on', mine) and "pwd + otp" in mine and 'id="disable"' not in mine
    assert console.get("/admin/users/nobody").status_code == 404


def test_disable_and_enable_a_user(app, console, ctx, admin, make_user):
    bob = make_user("bob")
    with _browser(app) as other:
        login(other, "bob")
        csrf = _csrf(console, f"/admin/users/{bob.id}")
        r = console.post(f"/admin/users/{bob.id}/disable", data={"csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == f"/admin/users/{bob.id}?m=disabled"
        assert other.get("/account").headers["location"] == "/login"  # the session ended
    with transaction(ctx.sessions) as db:
        assert db.get(User, bob.id).disabled
        assert not db.scalars(select(BrowserSession).where(BrowserSession.user_id == bob.id)).all()
    [event] = _events(ctx, "user_disabled")
    assert event.user_id == bob.id and event.detail["actor"] == admin.id
    assert 'id="state">disabled' in console.get(f"/admin/users/{bob.id}").text
    r = console.post(f"/admin/users/{bob.id}/enable", data={"csrf_token": csrf})
    assert r.status_code == 303
    with transaction(ctx.sessions) as db:
        assert not db.get(User, bob.id).disabled
    [event] = _events(ctx, "user_enabled")
    assert event.detail["actor"] == admin.id


def test_an_admin_cannot_disable_themselves(console, ctx, admin):
    r = console.post(f"/admin/users/{admin.id}/disable", data={"csrf_token": _csrf(console)},
                     headers={"accept": "text/html"})
    assert r.status_code == 400
    with transaction(ctx.sessions) as db:
        assert not db.get(User, admin.id).disabled


# -- clients -----------------------------------------------------------------------------


FORM = {"client_name": "Billing", "redirect_uris": "https://billing.example/cb\n",
        "post_logout_redirect_uris": "", "grant_type_authorization_code": "on",
        "grant_type_refresh_token": "on", "scope": "openid profile",
        "token_endpoint_auth_method": "client_secret_basic"}


def _create(console: TestClient, **changes: str) -> Any:
    return console.post("/admin/clients", data={**FORM, "csrf_token": _csrf(console), **changes})


def test_create_a_client_shows_its_secret_once(console, ctx, admin):
    r = _create(console)
    assert r.status_code == 303 and r.headers["location"] == "/admin/clients/secret"
    page = console.get("/admin/clients/secret")
    secret = re.search(r'id="client_secret">([^<]+)<', page.text).group(1)
    client_id = re.search(r'id="client_id">([^<]+)<', page.text).group(1)
    assert page.headers["cache-control"] == "no-store"
    assert console.get("/admin/clients/secret").headers["location"] == "/admin/clients"  # once
    with transaction(ctx.sessions) as db:
        client = db.get(Client, client_id)
        assert client.client_secret_hash == ctx.box.keyed_hash(secret)
        assert client.redirect_uris == ["https://billing.example/cb"]
        assert client.grant_types == ["authorization_code", "refresh_token"]
        sealed = [s.data for s in db.scalars(select(BrowserSession))]
    assert secret not in str(sealed)
    [event] = _events(ctx, "client_created")
    assert event.client_id == client_id and event.detail["actor"] == admin.id
    listing = console.get("/admin/clients?q=bill")
    assert client_id in listing.text and console.get("/admin/clients?q=zzz").text.count(client_id) == 0


def test_create_a_public_client_and_refusals(console, ctx):
    r = _create(console, token_endpoint_auth_method="none", client_name="SPA")
    assert r.status_code == 303 and r.headers["location"].endswith("?m=created")
    r = _create(console, redirect_uris="http://evil.example/cb")
    assert r.status_code == 400 and "https" in r.text and "http://evil.example/cb" in r.text  # values kept
    r = _create(console, grant_type_authorization_code="", grant_type_refresh_token="")
    assert r.status_code == 400 and "grant type" in r.text
    assert len(_events(ctx, "client_created")) == 1


def test_edit_a_client_in_place(console, ctx, admin, make_client):
    cid, secret = make_client(client_name="Shop", redirect_uris=["https://shop.example/cb"])
    page = console.get(f"/admin/clients/{cid}")
    assert page.status_code == 200 and "https://shop.example/cb" in page.text
    data = {**FORM, "csrf_token": form_value(page.text, "csrf_token"), "client_name": "Shop",
            "redirect_uris": "https://shop.example/cb\nhttps://shop.example/cb2",
            "grant_type_client_credentials": "on", "scope": "openid orders:read",
            "token_endpoint_auth_method": "client_secret_post"}
    r = console.post(f"/admin/clients/{cid}", data=data)
    assert r.status_code == 303 and r.headers["location"] == f"/admin/clients/{cid}?m=saved"
    with transaction(ctx.sessions) as db:
        client = db.get(Client, cid)
        assert client.redirect_uris == ["https://shop.example/cb", "https://shop.example/cb2"]
        assert client.grant_types == ["authorization_code", "refresh_token", "client_credentials"]
        assert client.scope == "openid orders:read" and client.token_endpoint_auth_method == "client_secret_post"
        assert client.client_secret_hash == ctx.box.keyed_hash(secret)  # same client, same secret
    [event] = _events(ctx, "client_updated")
    assert event.client_id == cid and event.detail["actor"] == admin.id
    assert "redirect_uris" in event.detail["changed"]
    r = console.post(f"/admin/clients/{cid}", data={**data, "redirect_uris": "not a uri"})
    assert r.status_code == 400 and "redirect URI must not contain spaces" in r.text
    assert console.post("/admin/clients/nope", data=data).status_code == 404


def test_public_to_confidential_issues_a_secret_once(console, ctx, make_client):
    cid, _ = make_client(token_endpoint_auth_method="none")
    data = {**FORM, "csrf_token": _csrf(console)}
    r = console.post(f"/admin/clients/{cid}", data=data)
    assert r.headers["location"] == "/admin/clients/secret"
    secret = re.search(r'id="client_secret">([^<]+)<', console.get(r.headers["location"]).text).group(1)
    with transaction(ctx.sessions) as db:
        assert db.get(Client, cid).client_secret_hash == ctx.box.keyed_hash(secret)
    console.post(f"/admin/clients/{cid}", data={**data, "token_endpoint_auth_method": "none",
                                                "grant_type_refresh_token": ""})
    with transaction(ctx.sessions) as db:
        assert db.get(Client, cid).client_secret_hash is None


def test_rotate_a_client_secret(console, ctx, admin, make_client):
    cid, old = make_client()
    r = console.post(f"/admin/clients/{cid}/rotate-secret", data={"csrf_token": _csrf(console)})
    assert r.headers["location"] == "/admin/clients/secret"
    new = re.search(r'id="client_secret">([^<]+)<', console.get("/admin/clients/secret").text).group(1)
    assert new != old
    with transaction(ctx.sessions) as db:
        assert db.get(Client, cid).client_secret_hash == ctx.box.keyed_hash(new)
    [event] = _events(ctx, "client_secret_rotated")
    assert event.client_id == cid and event.detail["actor"] == admin.id
    public, _ = make_client(token_endpoint_auth_method="none")
    r = console.post(f"/admin/clients/{public}/rotate-secret", data={"csrf_token": _csrf(console)})
    assert r.status_code == 400


# -- keys and audit ----------------------------------------------------------------------


def test_keys_and_rotation(console, ctx, admin):
    page = console.get("/admin/keys")
    assert page.status_code == 200 and "key-active" in page.text
    before = {k.kid for k in ctx.keys.keys(None)}
    r = console.post("/admin/keys/rotate", data={"csrf_token": form_value(page.text, "csrf_token")})
    assert r.status_code == 303 and r.headers["location"] == "/admin/keys?m=rotated"
    new = {k.kid for k in ctx.keys.keys(None)} - before
    assert len(new) == 3  # one key of each algorithm (RS256, ES256, EdDSA)
    events = _events(ctx, "key_rotated")
    assert {e.detail["kid"] for e in events} == new and {e.detail["actor"] for e in events} == {admin.id}
    listing = console.get("/admin/keys").text
    assert all(kid in listing for kid in new)


def test_audit_log_filters_and_pages(console, ctx, admin, make_user):
    from authserver.audit import service as audit

    bob = make_user("bob")
    with transaction(ctx.sessions) as db:
        for n in range(55):
            audit.record(db, "login_failed", user_id=bob.id, ip="192.0.2.1", n=n)
    page = console.get("/admin/audit?event=login_failed")
    assert page.text.count("<code>login_failed</code>") == 50 and 'rel="next"' in page.text
    page2 = console.get("/admin/audit?event=login_failed&page=2")
    assert page2.text.count("<code>login_failed</code>") == 5
    mine = console.get("/admin/audit?user=root").text
    assert "mfa_succeeded" in mine and "<code>login_failed</code>" not in mine
    assert console.get(f"/admin/audit?user={bob.id}&event=user_created").text.count("<code>user_created</code>") == 1
    assert "No user is called" in console.get("/admin/audit?user=nobody").text
    assert "No events." in console.get("/admin/audit?since=2999-01-01").text
    assert "No events." not in console.get("/admin/audit?since=2000-01-01&until=2999-01-01").text
    assert console.get("/admin/audit?since=bad").status_code == 200
    assert console.get("/admin/audit?until=%00").status_code == 400  # the input edge


# -- the way back after login ------------------------------------------------------------


@pytest.mark.parametrize(("kept", "expected"), [
    ("/admin/users?q=a", "/admin/users?q=a"),
    ("//evil.example/admin", "/account"),
    ("/\\evil.example/admin", "/account"),
    ("https://evil.example/admin", "/account"),
    (None, "/account"),
])
def test_return_to_is_a_local_path_used_once(kept, expected):
    from authserver.sessions.models import BrowserSession
    from authserver.web.pages import RETURN_TO, Page

    session = BrowserSession(data={RETURN_TO: kept} if kept else {})
    page = Page(None, None, None, {}, session)  # type: ignore[arg-type]  (return_to reads the session only)
    assert page.return_to() == expected
    assert page.return_to() == "/account"


def test_control_characters_never_reach_the_database(console, make_client):
    """Postgres refuses NUL in text: the input edge answers 400 before any query (a 500 otherwise)."""
    assert console.get("/admin/users?q=a%00b").status_code == 400
    assert console.get("/admin/users/a%00b").status_code == 400
    assert console.get("/admin/clients?q=%00").status_code == 400
    assert console.get("/admin/clients/a%00b").status_code == 400
    assert console.get("/admin/audit?user=%00&client=%00&event=%00").status_code == 400
    r = _create(console, client_name="a\x00b")
    assert r.status_code == 400 and "control or invisible character" in r.text
    r = _create(console, redirect_uris="https://x.example/\x00")
    assert r.status_code == 400
