"""Password reset by a code mailed to the account's address.

``/password/reset`` answers the same whether or not the address has an
account: an unknown address gets a stored code nobody knows, and no mail.
``/password/reset/confirm`` takes the code and a new password (policy
checked first, so a weak password does not spend a guess), sets the new hash,
ends every session of the user and clears the account lockout.
"""

from __future__ import annotations

from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from authserver.accounts import email_codes, mail
from authserver.accounts import service as accounts
from authserver.accounts.models import EmailCode
from authserver.audit import service as audit
from authserver.db import utcnow
from authserver.endpoints.guards import rate_limit
from authserver.interaction import web
from authserver.interaction.signup import CODE_EXPIRED, CODE_FAILED, CSRF_FAILED, browser_session
from authserver.oauth import bridge
from authserver.security.passwords import WeakPasswordError, validate_password
from authserver.sessions import service as sessions
from authserver.tokens import service as tokens


async def reset_form(request: Request) -> Response:
    ctx = web.context(request)
    cookie = web.session_cookie(request)

    def run() -> tuple[dict[str, Any], str | None]:
        session, new_cookie = browser_session(bridge.current_db.get(), ctx, request, cookie)
        return {"csrf_token": sessions.csrf_token(session)}, new_cookie

    values, new_cookie = await bridge.call(ctx, run)
    return web.page(request, "reset.html", values, cookie=new_cookie)


async def reset_submit(request: Request) -> Response:
    ctx = web.context(request)
    form = dict(await bridge.read_form(request))
    cookie = web.session_cookie(request)
    ip = request.state.client_ip

    def run() -> tuple[str, tuple[str, str, str] | None]:
        db = bridge.current_db.get()
        rate_limit(ctx, "registration", ip)
        session = sessions.load(db, ctx.box, cookie)
        if session is None or not sessions.check_csrf(session, form.get("csrf_token")):
            return "csrf", None
        email = accounts.normalize_login(form.get("email", ""))[:320]
        user = accounts.find_by_login(db, email) if "@" in email else None
        user_id = user.id if user is not None and not user.disabled else None
        known = user_id is not None
        row, code = email_codes.issue(db, ctx.box, "reset", email, user_id=user_id, deliverable=known)
        sessions.set_data(session, "reset_code", row.id)
        if not known:
            return "sent", None
        letter = (f"Your password reset code is {code}\n\nIt expires in 15 minutes. If you did not ask "
                  "to reset your password, ignore this message; your password is unchanged.\n")
        return "sent", (user.email, "Reset your password", letter)  # type: ignore[union-attr]

    state, letter = await bridge.call(ctx, run)
    if state == "csrf":
        return web.error_page(request, "invalid_request", CSRF_FAILED)
    response = web.redirect("/password/reset/confirm", request)
    if letter is not None:  # after the response: its timing must not tell known addresses apart
        response.background = BackgroundTask(mail.deliver, ctx.settings, *letter)
    return response


def _confirm_values(session: Any, error: str | None = None) -> dict[str, Any]:
    return {"csrf_token": sessions.csrf_token(session), "error": error}


async def confirm_form(request: Request) -> Response:
    ctx = web.context(request)
    cookie = web.session_cookie(request)

    def run() -> dict[str, Any] | None:
        session = sessions.load(bridge.current_db.get(), ctx.box, cookie)
        if session is None or not (session.data or {}).get("reset_code"):
            return None
        return _confirm_values(session)

    values = await bridge.call(ctx, run)
    if values is None:
        return web.redirect("/password/reset", request)
    return web.page(request, "reset_confirm.html", values)


async def confirm_submit(request: Request) -> Response:
    ctx = web.context(request)
    form = dict(await bridge.read_form(request))
    cookie = web.session_cookie(request)
    ip = request.state.client_ip

    def run() -> tuple[str, dict[str, Any] | None]:
        db = bridge.current_db.get()
        session = sessions.load(db, ctx.box, cookie)
        if session is None or not sessions.check_csrf(session, form.get("csrf_token")):
            return "csrf", None
        row_id = (session.data or {}).get("reset_code")
        pending = db.get(EmailCode, row_id) if isinstance(row_id, int) else None
        if pending is None:
            return "expired", None
        user = accounts.get_user(db, pending.user_id)
        password = form.get("new_password", "")
        if password != form.get("confirm_password", password):
            return "retry", _confirm_values(session, "The new passwords do not match.")
        try:
            password = validate_password(password, username=user.username if user else None,
                                         email=pending.email)
        except WeakPasswordError as exc:
            return "retry", _confirm_values(session, str(exc))
        outcome, _row = email_codes.check(db, ctx.box, row_id, "reset", form.get("code", ""))
        if outcome == "wrong":
            return "retry", _confirm_values(session, CODE_FAILED)
        if outcome != "ok" or user is None:
            sessions.set_data(session, "reset_code", None)
            return "expired", None
        user.password_hash = ctx.passwords.hash(password)
        user.password_changed_at = utcnow()
        ended = sessions.end_all_for_user(db, user.id)
        revoked = tokens.invalidate_subject(db, ctx.revoked, user.id)
        ctx.lockout.unlock(accounts.lockout_key(user, ""))
        audit.record(db, "password_reset", user_id=user.id, ip=ip, sessions_ended=ended,
                     refresh_tokens_revoked=revoked)
        return "ok", None

    state, values = await bridge.call(ctx, run)
    if state == "csrf":
        return web.error_page(request, "invalid_request", CSRF_FAILED)
    if state == "expired":
        return web.error_page(request, "invalid_request", CODE_EXPIRED)
    if state == "retry":
        assert values is not None
        return web.page(request, "reset_confirm.html", values)
    return web.redirect("/password/reset/done", request)


async def done_page(request: Request) -> Response:
    return web.page(request, "message.html", {
        "title": "Password changed", "message": "Your password was changed. You can now sign in with it.",
        "link": ("/account", "Sign in")})
