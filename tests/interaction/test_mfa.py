"""The MFA challenge: TOTP and backup codes, single use, lockout, amr in tokens."""

from __future__ import annotations

import jwt
import pytest
from sqlalchemy import select

from authserver.accounts.models import BackupCode, TotpFactor
from authserver.audit.models import AuditEvent
from authserver.db import transaction
from tests.account_flows import enrol, login, totp_code
from tests.flows import REDIRECT_URI, auth_params, exchange, form_value, login_rid, pkce, query


def _authorize_to_mfa(client, cid, **extra):
    verifier, challenge = pkce()
    params = auth_params(cid, challenge, **extra)
    rid = login_rid(client.get("/authorize", params=params))
    r = login(client, rid=rid)  # the login POST itself says where the request goes next
    assert r.status_code == 303
    return r, rid, verifier, params


def _submit(client, rid, code):
    page = client.get(f"/login/mfa?rid={rid}")
    assert page.status_code == 200, page.text
    return client.post("/login/mfa", data={"csrf_token": form_value(page.text, "csrf_token"),
                                          "rid": rid, "code": code})


def _events(ctx, name):
    with transaction(ctx.sessions) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == name)))


def _finish(client, r):
    while r.status_code in (302, 303) and not r.headers["location"].startswith(REDIRECT_URI):
        r = client.get(r.headers["location"])
    return r


def test_totp_flow_sets_amr_in_id_and_access_tokens(client, ctx, make_user, make_client):
    user = make_user()
    secret, _codes = enrol(ctx, user.id)
    cid, client_secret = make_client(skip_consent=True)
    r, rid, verifier, _params = _authorize_to_mfa(client, cid)
    assert r.status_code == 303 and r.headers["location"] == f"/login/mfa?rid={rid}"
    r = _submit(client, rid, totp_code(secret))
    # the MFA POST continues the request itself (skip_consent): straight back to the client
    assert r.status_code == 303 and r.headers["location"].startswith(REDIRECT_URI)
    r = _finish(client, r)
    code = query(r.headers["location"])["code"]
    tokens = exchange(client, cid, client_secret, code, verifier).json()
    for name in ("id_token", "access_token"):
        claims = jwt.decode(tokens[name], options={"verify_signature": False})
        assert claims["amr"] == ["pwd", "otp"]
        assert claims["acr"] == "urn:authserver:acr:mfa"
    assert len(_events(ctx, "mfa_succeeded")) == 1


def test_totp_code_works_once(client, ctx, make_user):
    user = make_user()
    secret, _codes = enrol(ctx, user.id)
    code = totp_code(secret)
    assert login(client).headers["location"] == "/account"
    assert client.get("/account").headers["location"] == "/login/mfa"
    assert _submit(client, "", code).headers["location"] == "/account"
    client.cookies.clear()
    login(client)
    r = _submit(client, "", code)
    assert r.status_code == 200 and "That code is not valid" in r.text
    # an older code is refused too; the next step's code works
    assert _submit(client, "", totp_code(secret, -1)).status_code == 200
    assert _submit(client, "", totp_code(secret, 1)).headers["location"] == "/account"
    with transaction(ctx.sessions) as db:
        assert db.get(TotpFactor, user.id).last_used_step > 0
    assert len(_events(ctx, "mfa_failed")) == 2


def test_backup_code_works_once(client, ctx, make_user):
    user = make_user()
    _secret, codes = enrol(ctx, user.id)
    login(client)
    assert _submit(client, "", codes[0].upper().replace("-", " ")).headers["location"] == "/account"
    client.cookies.clear()
    login(client)
    assert _submit(client, "", codes[0]).status_code == 200
    assert _submit(client, "", codes[1]).headers["location"] == "/account"
    with transaction(ctx.sessions) as db:
        used = db.scalars(select(BackupCode).where(BackupCode.used_at.is_not(None))).all()
        assert len(used) == 2
    assert len(_events(ctx, "backup_code_used")) == 2


def test_mfa_failures_lock_the_account(client, ctx, make_user):
    user = make_user()
    secret, _codes = enrol(ctx, user.id)
    login(client)
    for _ in range(ctx.settings.lockout_account_threshold):
        assert _submit(client, "", "000000").status_code == 200
    # locked: even the right code is refused and not spent
    assert _submit(client, "", totp_code(secret)).status_code == 200
    assert _events(ctx, "account_locked")
    ctx.lockout.unlock(f"user:{user.id}")
    assert _submit(client, "", totp_code(secret)).headers["location"] == "/account"


def test_session_id_is_replaced_after_mfa(client, ctx, make_user):
    user = make_user()
    secret, _codes = enrol(ctx, user.id)
    login(client)
    before = dict(client.cookies)
    r = _submit(client, "", totp_code(secret))
    assert r.headers["location"] == "/account"
    assert dict(client.cookies) != before


def test_mfa_page_without_password_goes_to_login(client):
    r = client.get("/login/mfa?rid=abc")
    assert r.status_code == 303 and r.headers["location"] == "/login?rid=abc"


@pytest.mark.parametrize("how", ["client", "acr"])
def test_required_mfa_without_factor_shows_enrol_page(client, make_user, make_client, how):
    make_user()
    if how == "client":
        cid, _ = make_client(require_mfa=True, skip_consent=True)
        extra = {}
    else:
        cid, _ = make_client(skip_consent=True)
        extra = {"acr_values": "urn:authserver:acr:mfa"}
    r, rid, _v, _p = _authorize_to_mfa(client, cid, **extra)
    assert r.headers["location"] == f"/login/mfa?rid={rid}"
    r = client.get(r.headers["location"])
    assert r.status_code == 403 and "account page" in r.text and "access_denied" in r.text
    # the account page is open to them (password only) to enrol
    assert client.get("/account").status_code == 200


def test_mfa_user_cannot_use_password_grant(client, ctx, make_user, make_client):
    user = make_user()
    enrol(ctx, user.id)
    cid, secret = make_client(grant_types=["password"])
    r = client.post("/token", data={"grant_type": "password", "username": "alice",
                                    "password": "correct horse battery staple", "scope": "openid"},
                    auth=(cid, secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert "access_token" not in r.text


def test_mfa_post_without_csrf_is_refused(client, ctx, make_user):
    user = make_user()
    secret, _ = enrol(ctx, user.id)
    login(client)
    r = client.post("/login/mfa", data={"rid": "", "code": totp_code(secret)})
    assert r.status_code == 400


def test_password_logins_do_not_reset_totp_failures(client, ctx, make_user):
    """Review finding: password + 4 wrong codes, repeated, must still lock the account."""
    make_user()
    user_secret, _codes = enrol(ctx, ctx_user_id(ctx))
    threshold = ctx.settings.lockout_account_threshold
    for attempt in range(threshold):
        login(client)
        assert _submit(client, "", "000000").status_code == 200, attempt
    login(client)
    assert _submit(client, "", totp_code(user_secret)).status_code == 200  # locked: refused
    assert _events(ctx, "account_locked")


def ctx_user_id(ctx):
    from authserver.accounts.models import User

    with transaction(ctx.sessions) as db:
        return db.scalar(select(User.id).where(User.username == "alice"))
