"""MFA challenge after the password: a TOTP code or a backup code.

Reached from the authorization pipeline (``check_mfa``) or from ``/account``.
Wrong codes count towards the account lockout like wrong passwords (DESIGN.md
"Security invariants": TOTP attempts count too). Success replaces the session
id (session fixation) and records ``amr = ["pwd", "otp"]`` and the MFA ``acr``.

When the client or ``acr_values`` demands MFA but the user has no factor, the
page explains how to enrol from the account page instead of failing silently.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from authserver.accounts import mfa as factors
from authserver.accounts import service as accounts
from authserver.audit import service as audit
from authserver.endpoints.guards import rate_limit
from authserver.interaction import web
from authserver.oauth import authorization, bridge
from authserver.sessions import devices
from authserver.sessions import service as sessions

FAILED = "That code is not valid. Try again with a new code."
NO_FACTOR = ("This application requires two-step verification, but your account has none yet. "
             "Set up an authenticator app on your account page, then sign in to the application again.")


def target(rid: str) -> str:
    return f"/authorize/resume?{urlencode({'rid': rid})}" if rid else "/account"


def _state(db: Any, session: Any) -> tuple[str, Any]:
    """``("login"|"done"|"no_factor"|"challenge", user)``."""
    if session is None or not session.user_id:
        return "login", None
    user = accounts.get_user(db, session.user_id)
    if user is None or user.disabled or "pwd" not in (session.amr or []):
        return "login", None
    if "otp" in (session.amr or []):
        return "done", user
    if factors.confirmed_factor(db, user.id) is None:
        return "no_factor", user
    return "challenge", user


def _values(session: Any, rid: str, error: str | None = None) -> dict[str, Any]:
    return {"rid": rid, "csrf_token": sessions.csrf_token(session), "error": error}


async def mfa_form(request: Request) -> Response:
    ctx = web.context(request)
    rid = request.query_params.get("rid", "")[:100]
    cookie = web.session_cookie(request)

    def run() -> tuple[str, dict[str, Any] | None]:
        db = bridge.current_db.get()
        session = sessions.load(db, ctx.box, cookie)
        state, _user = _state(db, session)
        return state, _values(session, rid) if state == "challenge" else None

    state, values = await bridge.call(ctx, run)
    return _answer(request, state, rid, values)


def _answer(request: Request, state: str, rid: str, values: dict[str, Any] | None,
            cookie: str | None = None, status: int = 200) -> Response:
    if state == "login":
        return web.redirect("/login" + (f"?{urlencode({'rid': rid})}" if rid else ""), request)
    if state in ("done", "ok"):
        return web.redirect(target(rid), request, cookie)
    if state == "no_factor":
        return web.error_page(request, "access_denied", NO_FACTOR, status=403)
    if state == "csrf":
        return web.error_page(request, "invalid_request",
                              "The form expired or was not sent by this site. Go back and try again.")
    assert values is not None
    return web.page(request, "mfa.html", values, status=status)


async def mfa_submit(request: Request) -> Response:
    ctx = web.context(request)
    form = dict(await bridge.read_form(request))
    rid = form.get("rid", "")[:100]
    cookie = web.session_cookie(request)
    ip = request.state.client_ip

    def run() -> tuple[str, dict[str, Any] | None, str | None]:
        db = bridge.current_db.get()
        rate_limit(ctx, "login", ip)
        session = sessions.load(db, ctx.box, cookie)
        if not sessions.check_csrf(session, form.get("csrf_token")):
            return "csrf", None, None
        state, user = _state(db, session)
        if state != "challenge":
            return state, None, None
        key = accounts.lockout_key(user, "")
        # A locked account spends no code: a lock must not be a free oracle.
        locked = ctx.lockout.check(key, ip)
        used = None if locked else factors.verify(db, ctx.box, user.id, form.get("code", ""))
        if used is None:
            # like authenticate(): tries during a lock are refused but do not extend it
            lock = 0 if locked else ctx.lockout.register_failure(key, ip)
            audit.record(db, "mfa_failed", user_id=user.id, ip=ip, reason="locked" if locked else "bad_code")
            if lock:
                audit.record(db, "account_locked", user_id=user.id, ip=ip, seconds=lock, channel="mfa")
            return "failed", _values(session, rid, FAILED), None
        ctx.lockout.register_success(key)
        if used == "backup":
            audit.record(db, "backup_code_used", user_id=user.id, ip=ip,
                         remaining=factors.unused_backup_codes(db, user.id))
        audit.record(db, "mfa_succeeded", user_id=user.id, ip=ip, method=used)
        new, value = sessions.log_in(db, ctx.box, ctx.settings, session, user_id=user.id,
                                     amr=["pwd", "otp"], acr=authorization.ACR_MFA, auth_time=int(ctx.clock()), ip=ip,
                                     user_agent=request.headers.get("user-agent"))
        devices.sign_in(db, ctx, new, user_agent=request.headers.get("user-agent"), ip=ip)
        return "ok", None, value

    state, values, new_cookie = await bridge.call(ctx, run)
    if state == "failed":
        return _answer(request, "challenge", rid, values)
    return _answer(request, state, rid, values, new_cookie)
