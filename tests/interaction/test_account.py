"""The account page: access rules, sessions, consents, MFA enrolment and removal, password."""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import select

from authserver.accounts.models import BackupCode, TotpFactor, User
from authserver.consents.models import Consent
from authserver.db import transaction
from authserver.sessions.models import BrowserSession
from authserver.tokens.models import RefreshToken
from tests.account_flows import csrf, enrol, login, totp_code
from tests.conftest import ISSUER, PASSWORD
from tests.flows import exchange, get_code

NEW_PASSWORD = "a much longer new passphrase"


def _new_browser(app):
    from starlette.testclient import TestClient

    return TestClient(app, base_url=ISSUER, follow_redirects=False)


def test_account_requires_login(client):
    r = client.get("/account")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    r = client.post("/account/password", data={"csrf_token": "x"})
    assert r.status_code == 400


def test_account_page_shows_profile_and_sessions(client, make_user):
    make_user()
    assert login(client).headers["location"] == "/account"
    r = client.get("/account", headers={"user-agent": "TestBrowser/1.0"})
    assert r.status_code == 200
    assert "alice@example.com" in r.text and '<span class="badge">This device</span>' in r.text
    assert r.headers["cache-control"] == "no-store"


def test_forms_need_csrf(client, make_user):
    make_user()
    login(client)
    r = client.post("/account/sessions/revoke-others", data={"csrf_token": "wrong"})
    assert r.status_code == 400


def test_revoke_other_sessions_and_one_session(app, client, ctx, make_user):
    user = make_user()
    login(client)
    with _new_browser(app) as other, _new_browser(app) as third:
        login(other)
        login(third)
        with transaction(ctx.sessions) as db:
            sids = db.scalars(select(BrowserSession.sid).where(BrowserSession.user_id == user.id)).all()
        assert len(sids) == 3
        page = client.get("/account").text
        token = csrf(client)
        other_sid = next(s for s in sids if s != _current(page))
        r = client.post("/account/sessions/revoke", data={"csrf_token": token, "sid": other_sid})
        assert r.status_code == 303 and r.headers["location"].startswith("/account?m=session_revoked")
        r = client.post("/account/sessions/revoke-others", data={"csrf_token": token})
        assert r.status_code == 303
        assert other.get("/account").headers["location"] == "/login"
        assert third.get("/account").headers["location"] == "/login"
        assert client.get("/account").status_code == 200


def _current(page):
    """The sid in the row marked "This device"."""
    start = page.index('<span class="badge">This device</span>')
    return re.search(r'name="sid" value="([^"]+)"', page[start:]).group(1)


def test_revoking_consent_revokes_refresh_tokens(client, ctx, make_user, make_client):
    make_user()
    cid, secret = make_client()
    code, verifier, _ = get_code(client, cid)
    tokens = exchange(client, cid, secret, code, verifier).json()
    token = csrf(client)
    r = client.post("/account/consents/revoke", data={"csrf_token": token, "client_id": cid})
    assert r.status_code == 303
    with transaction(ctx.sessions) as db:
        assert db.scalars(select(Consent)).all() == []
        assert all(t.revoked_at is not None for t in db.scalars(select(RefreshToken)))
    r = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                    auth=(cid, secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = client.post("/introspect", data={"token": tokens["access_token"]}, auth=(cid, secret))
    assert r.json() == {"active": False}


def test_enrol_totp_shows_qr_and_backup_codes_once(client, ctx, make_user):
    user = make_user()
    login(client)
    r = client.post("/account/mfa/enrol", data={"csrf_token": csrf(client)})
    assert r.status_code == 303 and r.headers["location"] == "/account/mfa/enrol"
    page = client.get("/account/mfa/enrol")
    assert page.status_code == 200 and "<svg" in page.text and "<script" not in page.text
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
    bad = client.post("/account/mfa/confirm", data={"csrf_token": csrf(client), "code": "123456"})
    assert bad.headers["location"] == "/account/mfa/enrol?error=1"
    r = client.post("/account/mfa/confirm", data={"csrf_token": csrf(client),
                                                   "code": pyotp.TOTP(secret).now()})
    assert r.status_code == 303 and r.headers["location"] == "/account/mfa/backup-codes"
    shown = client.get("/account/mfa/backup-codes")
    codes = re.findall(r"<code>([0-9a-z]{4}-[0-9a-z]{4})</code>", shown.text)
    assert len(codes) == 10
    assert client.get("/account/mfa/backup-codes").headers["location"] == "/account#mfa"
    with transaction(ctx.sessions) as db:
        factor = db.get(TotpFactor, user.id)
        assert factor.confirmed_at is not None and secret not in factor.secret_encrypted
        rows = db.scalars(select(BackupCode)).all()
        assert len(rows) == 10 and not {r.code_hash for r in rows} & set(codes)
    # this session did the second factor while enrolling; a new one must do it
    assert client.get("/account").status_code == 200
    client.cookies.clear()
    login(client)
    assert client.get("/account").headers["location"] == "/login/mfa"


def test_disable_mfa_needs_a_fresh_code(client, ctx, make_user):
    user = make_user()
    secret, codes = enrol(ctx, user.id)
    login(client)
    page = client.get("/login/mfa")
    from tests.flows import form_value

    client.post("/login/mfa", data={"csrf_token": form_value(page.text, "csrf_token"), "rid": "",
                                    "code": totp_code(secret)})
    token = csrf(client)
    r = client.post("/account/mfa/disable", data={"csrf_token": token, "code": totp_code(secret)})
    assert r.headers["location"].startswith("/account?m=bad_code")  # already used
    r = client.post("/account/mfa/disable", data={"csrf_token": token, "code": codes[0]})
    assert r.headers["location"].startswith("/account?m=mfa_disabled")
    with transaction(ctx.sessions) as db:
        assert db.get(TotpFactor, user.id) is None and db.scalars(select(BackupCode)).all() == []


def test_change_password(app, client, ctx, make_user):
    make_user()
    login(client)
    with _new_browser(app) as other:
        login(other)
        token = csrf(client)
        r = client.post("/account/password", data={
            "csrf_token": token, "current_password": "wrong password", "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD})
        assert r.headers["location"].startswith("/account?m=bad_password")
        r = client.post("/account/password", data={
            "csrf_token": token, "current_password": PASSWORD, "new_password": "password",
            "confirm_password": "password"})
        assert r.headers["location"] == "/account#password"
        shown = client.get("/account").text  # the flash is shown once
        assert "too common" in shown and 'id="new_password"' in shown
        assert re.search(r'id="new_password"[^>]*aria-invalid="true"', shown)
        r = client.post("/account/password", data={"csrf_token": token, "current_password": PASSWORD,
                                                    "new_password": NEW_PASSWORD,
                                                    "confirm_password": NEW_PASSWORD})
        assert r.headers["location"].startswith("/account?m=password_changed")
        assert other.get("/account").headers["location"] == "/login"
    with transaction(ctx.sessions) as db:
        user = db.scalar(select(User))
        assert ctx.passwords.verify(user.password_hash, NEW_PASSWORD)
    client.cookies.clear()
    assert login(client, password=NEW_PASSWORD).headers["location"] == "/account"
