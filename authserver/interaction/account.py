"""The account page: profile, sessions and devices, consents, MFA, password.

Every change is a POST carrying the CSRF token and answered with 303 (so a
reload never repeats it). A user with MFA must have done the second factor in
this session (``"otp"`` in ``amr``) before seeing or changing anything.
Results are shown with a fixed message key (``?m=``), never reflected text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from authserver.accounts import mfa as factors
from authserver.accounts import service as accounts
from authserver.audit import service as audit
from authserver.clients import service as clients
from authserver.consents import service as consents
from authserver.db import utcnow
from authserver.interaction import web
from authserver.oauth import authorization, bridge
from authserver.security import totp
from authserver.security.passwords import WeakPasswordError, normalize, validate_password
from authserver.sessions import devices
from authserver.sessions import service as sessions
from authserver.sessions.models import BrowserSession
from authserver.tokens import service as tokens

MESSAGES = {
    "session_revoked": "The session was signed out.",
    "others_revoked": "All your other sessions were signed out.",
    "consent_revoked": "Access was withdrawn and the application's tokens were revoked.",
    "mfa_disabled": "Two-step verification is off.",
    "password_changed": "Your password was changed and your other sessions were signed out.",
    "bad_code": "That code is not valid.",
    "bad_password": "Your current password is not correct.",
    "mfa_exists": "Two-step verification is already on.",
    "password_mismatch": "The new passwords do not match.",
}
ERRORS = frozenset({"bad_code", "bad_password", "mfa_exists", "password_mismatch"})


def _authenticated(db: Any, ctx: Any, cookie: str | None) -> tuple[str | None, Any, Any]:
    """``(redirect, session, user)``: a redirect to log in or to the second factor, or the user."""
    session = sessions.load(db, ctx.box, cookie)
    user = accounts.get_user(db, session.user_id) if session is not None else None
    if session is None or user is None or user.disabled:
        return "/login", None, None
    if "otp" not in (session.amr or []) and accounts.has_mfa(db, user.id):
        return "/login/mfa", None, None
    return None, session, user


async def account_page(request: Request) -> Response:
    ctx = web.context(request)
    cookie = web.session_cookie(request)
    key = request.query_params.get("m", "")

    def run() -> tuple[str | None, dict[str, Any] | None]:
        db = bridge.current_db.get()
        redirect, session, user = _authenticated(db, ctx, cookie)
        if redirect:
            return redirect, None
        session.last_seen_at = utcnow()
        flash = (session.data or {}).get("flash_error")
        if flash:
            sessions.set_data(session, "flash_error", None)
        granted = []
        for row in consents.for_user(db, user.id):
            client = clients.get_client(db, row.client_id)
            granted.append({"client_id": row.client_id, "scope": row.scope,
                            "client_name": client.client_name if client else row.client_id,
                            "created_at": row.created_at})
        return None, {
            "csrf_token": sessions.csrf_token(session),
            "user": user,
            "current_sid": session.sid,
            "sessions": sessions.for_user(db, user.id),
            "device_notices": devices.notices(db, user.id),
            "max_devices": ctx.settings.max_devices_per_user,
            "consents": granted,
            "mfa_enabled": factors.confirmed_factor(db, user.id) is not None,
            "backup_codes_left": factors.unused_backup_codes(db, user.id),
            "message": MESSAGES.get(key) if key not in ERRORS else None,
            "error": flash or (MESSAGES.get(key) if key in ERRORS else None),
        }

    redirect, values = await bridge.call(ctx, run)
    if redirect:
        return web.redirect(redirect, request)
    assert values is not None
    return web.page(request, "account.html", values)


Action = Callable[[Any, Any, Request, Any, Any, dict[str, str]], tuple[str, str | None]]


def post(action: Action) -> Callable[[Request], Any]:
    """Wrap an account action: CSRF, authentication, one transaction, a 303 answer."""

    async def endpoint(request: Request) -> Response:
        ctx = web.context(request)
        form = dict(await bridge.read_form(request))
        cookie = web.session_cookie(request)

        def run() -> tuple[str, str | None]:
            db = bridge.current_db.get()
            session = sessions.load(db, ctx.box, cookie)
            if not sessions.check_csrf(session, form.get("csrf_token")):
                return "csrf", None
            redirect, session, user = _authenticated(db, ctx, cookie)
            if redirect:
                return redirect, None
            return action(db, ctx, request, session, user, form)

        location, new_cookie = await bridge.call(ctx, run)
        if location == "csrf":
            return web.error_page(request, "invalid_request",
                                  "The form expired or was not sent by this site. Go back and try again.")
        return web.redirect(location, request, new_cookie)

    return endpoint


def _done(key: str, anchor: str = "") -> tuple[str, None]:
    return f"/account?{urlencode({'m': key})}{anchor}", None


def revoke_session(db: Any, ctx: Any, request: Request, session: Any, user: Any,
                   form: dict[str, str]) -> tuple[str, str | None]:
    row = db.scalar(select(BrowserSession).where(BrowserSession.sid == form.get("sid", ""),
                                                 BrowserSession.user_id == user.id))
    if row is None:
        return _done("session_revoked", "#sessions")
    audit.record(db, "session_revoked", user_id=user.id, ip=request.state.client_ip,
                 current=row.id == session.id)
    sessions.end(db, row)
    if row.id == session.id:
        return "/login", None
    return _done("session_revoked", "#sessions")


def revoke_other_sessions(db: Any, ctx: Any, request: Request, session: Any, user: Any,
                          form: dict[str, str]) -> tuple[str, str | None]:
    count = sessions.end_all_for_user(db, user.id, keep=session.id)
    audit.record(db, "session_revoked", user_id=user.id, ip=request.state.client_ip, others=count)
    return _done("others_revoked", "#sessions")


def revoke_consent(db: Any, ctx: Any, request: Request, session: Any, user: Any,
                   form: dict[str, str]) -> tuple[str, str | None]:
    """Withdraw consent and revoke the user's refresh-token families at that client
    (and the access tokens they issued)."""
    client_id = form.get("client_id", "")
    consents.revoke(db, user.id, client_id, request.state.client_ip)
    tokens.revoke_user_families(db, ctx.revoked, user.id, client_id)
    return _done("consent_revoked", "#consents")


def start_enrolment(db: Any, ctx: Any, request: Request, session: Any, user: Any,
                    form: dict[str, str]) -> tuple[str, str | None]:
    try:
        factors.start_enrolment(db, ctx.box, user.id)
    except ValueError:
        return _done("mfa_exists", "#mfa")
    return "/account/mfa/enrol", None


def confirm_enrolment(db: Any, ctx: Any, request: Request, session: Any, user: Any,
                      form: dict[str, str]) -> tuple[str, str | None]:
    ip = request.state.client_ip
    codes = factors.confirm_enrolment(db, ctx.box, user.id, form.get("code", ""))
    if codes is None:
        return "/account/mfa/enrol?error=1", None
    audit.record(db, "mfa_enrolled", user_id=user.id, ip=ip)
    # The code proved the factor: this session now counts as MFA (new id, as at login).
    new, value = sessions.log_in(db, ctx.box, ctx.settings, session, user_id=user.id,
                                 amr=["pwd", "otp"], acr=authorization.ACR_MFA, auth_time=int(ctx.clock()), ip=ip,
                                 user_agent=request.headers.get("user-agent"))
    _show_once(ctx, new, codes)
    return "/account/mfa/backup-codes", value


def disable_mfa(db: Any, ctx: Any, request: Request, session: Any, user: Any,
                form: dict[str, str]) -> tuple[str, str | None]:
    ip = request.state.client_ip
    key = accounts.lockout_key(user, "")
    locked = ctx.lockout.check(key, ip)
    if locked or factors.verify(db, ctx.box, user.id, form.get("code", "")) is None:
        if not locked:
            ctx.lockout.register_failure(key, ip)
        audit.record(db, "mfa_failed", user_id=user.id, ip=ip, channel="disable")
        return _done("bad_code", "#mfa")
    factors.disable(db, user.id)
    audit.record(db, "mfa_disabled", user_id=user.id, ip=ip)
    return _done("mfa_disabled", "#mfa")


def change_password(db: Any, ctx: Any, request: Request, session: Any, user: Any,
                    form: dict[str, str]) -> tuple[str, str | None]:
    ip = request.state.client_ip
    key = accounts.lockout_key(user, "")
    current = normalize(form.get("current_password", ""))
    locked = ctx.lockout.check(key, ip)
    if locked or not ctx.passwords.verify(user.password_hash, current):
        if not locked:
            ctx.lockout.register_failure(key, ip)
        audit.record(db, "login_failed", user_id=user.id, ip=ip, channel="password_change",
                     reason="bad_credentials")
        return _done("bad_password", "#password")
    new = form.get("new_password", "")
    if new != form.get("confirm_password", new):
        return _done("password_mismatch", "#password")
    try:
        new = validate_password(new, username=user.username, email=user.email)
    except WeakPasswordError as exc:
        sessions.set_data(session, "flash_error", str(exc))  # the policy's own words, no user input
        return "/account#password", None
    user.password_hash = ctx.passwords.hash(new)
    user.password_changed_at = utcnow()
    ended = sessions.end_all_for_user(db, user.id, keep=session.id)
    revoked = tokens.revoke_user_families(db, ctx.revoked, user.id)
    audit.record(db, "password_changed", user_id=user.id, ip=ip, sessions_ended=ended,
                 refresh_tokens_revoked=revoked)
    return _done("password_changed", "#password")


async def enrol_page(request: Request) -> Response:
    ctx = web.context(request)
    cookie = web.session_cookie(request)

    def run() -> tuple[str | None, dict[str, Any] | None]:
        db = bridge.current_db.get()
        redirect, session, user = _authenticated(db, ctx, cookie)
        if redirect:
            return redirect, None
        secret = factors.pending_secret(db, ctx.box, user.id)
        if secret is None:
            return "/account#mfa", None
        uri = totp.provisioning_uri(secret, user.email, ctx.settings.issuer.split("://", 1)[1])
        return None, {"csrf_token": sessions.csrf_token(session), "qr_svg": totp.qr_svg(uri),
                      "secret": " ".join(secret[i:i + 4] for i in range(0, len(secret), 4)),
                      "error": "That code is not valid. Check the time on your phone and try again."
                      if request.query_params.get("error") else None}

    redirect, values = await bridge.call(ctx, run)
    if redirect:
        return web.redirect(redirect, request)
    assert values is not None
    return web.page(request, "mfa_enrol.html", values)


async def backup_codes_page(request: Request) -> Response:
    """The backup codes, once: they are removed from the session as they are shown."""
    ctx = web.context(request)
    cookie = web.session_cookie(request)

    def run() -> tuple[str | None, list[str] | None]:
        db = bridge.current_db.get()
        redirect, session, _user = _authenticated(db, ctx, cookie)
        if redirect:
            return redirect, None
        sealed = (session.data or {}).get("backup_codes")
        if not sealed:
            return "/account#mfa", None
        sessions.set_data(session, "backup_codes", None)
        return None, json.loads(ctx.box.decrypt(sealed, session.sid.encode()))

    redirect, codes = await bridge.call(ctx, run)
    if redirect:
        return web.redirect(redirect, request)
    return web.page(request, "backup_codes.html", {"codes": codes})


def regenerate_backup_codes(db: Any, ctx: Any, request: Request, session: Any, user: Any,
                            form: dict[str, str]) -> tuple[str, str | None]:
    if factors.confirmed_factor(db, user.id) is None:
        return "/account#mfa", None
    codes = factors.new_backup_codes(db, ctx.box, user.id)
    audit.record(db, "mfa_enrolled", user_id=user.id, ip=request.state.client_ip, backup_codes="regenerated")
    _show_once(ctx, session, codes)
    return "/account/mfa/backup-codes", None


def _show_once(ctx: Any, session: Any, codes: list[str]) -> None:
    """Keep the codes for the next page only, sealed: never stored in clear."""
    sealed = ctx.box.encrypt(json.dumps(codes).encode(), session.sid.encode())
    sessions.set_data(session, "backup_codes", sealed)
