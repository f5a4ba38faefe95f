"""Sign-up with an e-mail verification code (only when ``AUTHSERVER_SIGNUP_ENABLED``).

``/signup`` checks the form and the password policy, hashes the password and
keeps the pending account in an :class:`EmailCode` row (never the password
itself), then mails the code. ``/signup/verify`` creates the user from it and
signs them in. An address that already has an account gets a notice instead
of a code, and the page answers exactly as for a new address, so the form
does not reveal which addresses are registered (usernames are public anyway).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from authserver.accounts import email_codes, mail
from authserver.accounts import service as accounts
from authserver.accounts.errors import AccountError
from authserver.accounts.models import User
from authserver.audit import service as audit
from authserver.endpoints.guards import rate_limit
from authserver.interaction import web
from authserver.logging import mask_email
from authserver.oauth import authorization, bridge
from authserver.security.passwords import WeakPasswordError, validate_password
from authserver.sessions import devices
from authserver.sessions import service as sessions

CSRF_FAILED = "The form expired or was not sent by this site. Go back and try again."
CODE_FAILED = "That code is not valid."
CODE_EXPIRED = "This code has expired or was tried too often. Start again to get a new one."


def browser_session(db: Any, ctx: Any, request: Request, cookie: str | None) -> tuple[Any, str | None]:
    """The current session, or a new anonymous one (its cookie value returned)."""
    session = sessions.load(db, ctx.box, cookie)
    if session is not None:
        return session, None
    return sessions.create(db, ctx.box, ctx.settings, ip=request.state.client_ip,
                           user_agent=request.headers.get("user-agent"))


def with_rid(path: str, rid: str) -> str:
    return f"{path}?{urlencode({'rid': rid})}" if rid else path


def _disabled(request: Request) -> Response:
    return web.error_page(request, "not_found", "Sign-up is not available on this server.", status=404)


async def signup_form(request: Request) -> Response:
    ctx = web.context(request)
    if not ctx.settings.signup_enabled:
        return _disabled(request)
    rid = request.query_params.get("rid", "")[:100]
    cookie = web.session_cookie(request)

    def run() -> tuple[dict[str, Any], str | None]:
        session, new_cookie = browser_session(bridge.current_db.get(), ctx, request, cookie)
        return {"csrf_token": sessions.csrf_token(session), "rid": rid}, new_cookie

    values, new_cookie = await bridge.call(ctx, run)
    return web.page(request, "signup.html", values, cookie=new_cookie)


def _validate(db: Any, form: dict[str, str]) -> tuple[str, str, str, bool]:
    """``(username, email, password, email_taken)``; raises AccountError/WeakPasswordError."""
    username = accounts.normalize_login(form.get("username", ""))
    email = accounts.normalize_login(form.get("email", ""))
    if not accounts.USERNAME.match(username):
        raise AccountError("Username must be 2-63 characters: letters, digits, '.', '_' or '-'.")
    if not accounts.EMAIL.match(email) or len(email) > 320:
        raise AccountError("That e-mail address is not valid.")
    password = validate_password(form.get("password", ""), username=username, email=email)
    if db.scalar(select(User.id).where(User.username == username)):
        raise AccountError("That username is taken; choose another.")
    taken = db.scalar(select(User.id).where(User.email == email)) is not None
    return username, email, password, taken


async def signup_submit(request: Request) -> Response:
    ctx = web.context(request)
    if not ctx.settings.signup_enabled:
        return _disabled(request)
    form = dict(await bridge.read_form(request))
    rid = form.get("rid", "")[:100]
    cookie = web.session_cookie(request)
    ip = request.state.client_ip

    def run() -> tuple[str, dict[str, Any] | None, tuple[str, str, str] | None]:
        db = bridge.current_db.get()
        rate_limit(ctx, "registration", ip)
        session = sessions.load(db, ctx.box, cookie)
        if session is None or not sessions.check_csrf(session, form.get("csrf_token")):
            return "csrf", None, None
        try:
            username, email, password, taken = _validate(db, form)
        except (AccountError, WeakPasswordError) as exc:
            return "invalid", {"csrf_token": sessions.csrf_token(session), "rid": rid, "error": str(exc),
                               "username": form.get("username", "")[:150],
                               "email": form.get("email", "")[:320]}, None
        pending = {"username": username, "email": email, "password_hash": ctx.passwords.hash(password),
                   "name": None}
        row, code = email_codes.issue(db, ctx.box, "signup", email, pending=pending, deliverable=not taken)
        sessions.set_data(session, "signup_code", row.id)
        if taken:
            letter = ("Someone tried to create an account with this e-mail address, which already has one.\n"
                      "If it was you, sign in or reset your password instead.\n")
        else:
            letter = (f"Your verification code is {code}\n\nIt expires in 15 minutes. If you did not "
                      "try to create an account, ignore this message.\n")
        return "sent", None, (email, "Your verification code", letter)

    state, values, letter = await bridge.call(ctx, run)
    if state == "csrf":
        return web.error_page(request, "invalid_request", CSRF_FAILED)
    if state == "invalid":
        assert values is not None
        return web.page(request, "signup.html", values)
    assert letter is not None
    response = web.redirect(with_rid("/signup/verify", rid), request)
    response.background = BackgroundTask(mail.deliver, ctx.settings, *letter)
    return response


async def verify_form(request: Request) -> Response:
    ctx = web.context(request)
    if not ctx.settings.signup_enabled:
        return _disabled(request)
    rid = request.query_params.get("rid", "")[:100]
    cookie = web.session_cookie(request)

    def run() -> dict[str, Any] | None:
        session = sessions.load(bridge.current_db.get(), ctx.box, cookie)
        if session is None or not (session.data or {}).get("signup_code"):
            return None
        return {"csrf_token": sessions.csrf_token(session), "rid": rid, "action": "/signup/verify",
                "title": "Check your e-mail"}

    values = await bridge.call(ctx, run)
    if values is None:
        return web.redirect(with_rid("/signup", rid), request)
    return web.page(request, "email_code.html", values)


async def verify_submit(request: Request) -> Response:
    ctx = web.context(request)
    if not ctx.settings.signup_enabled:
        return _disabled(request)
    form = dict(await bridge.read_form(request))
    rid = form.get("rid", "")[:100]
    cookie = web.session_cookie(request)
    ip = request.state.client_ip

    def run() -> tuple[str, Any]:
        db = bridge.current_db.get()
        session = sessions.load(db, ctx.box, cookie)
        if session is None or not sessions.check_csrf(session, form.get("csrf_token")):
            return "csrf", None
        outcome, row = email_codes.check(db, ctx.box, (session.data or {}).get("signup_code"), "signup",
                                         form.get("code", ""))
        if outcome == "wrong":
            return "wrong", {"csrf_token": sessions.csrf_token(session), "rid": rid, "error": CODE_FAILED,
                             "action": "/signup/verify", "title": "Check your e-mail"}
        if outcome != "ok":
            sessions.set_data(session, "signup_code", None)
            return "expired", None
        pending = dict(row.pending or {})  # type: ignore[union-attr]
        taken = db.scalar(select(User.id).where(or_(User.username == pending["username"],
                                                    User.email == pending["email"])))
        if taken:
            sessions.set_data(session, "signup_code", None)
            return "taken", None
        user = User(username=pending["username"], email=pending["email"], email_verified=True,
                    password_hash=pending["password_hash"], name=pending.get("name"))
        try:
            with db.begin_nested():  # a concurrent sign-up may take the name first
                db.add(user)
                db.flush()
        except IntegrityError:
            sessions.set_data(session, "signup_code", None)
            return "taken", None
        row.pending = None  # type: ignore[union-attr]
        audit.record(db, "user_created", user_id=user.id, ip=ip, username=accounts.mask_login(user.username))
        audit.record(db, "signup_completed", user_id=user.id, ip=ip, email=mask_email(user.email))
        _new, value = sessions.log_in(db, ctx.box, ctx.settings, session, user_id=user.id, amr=["pwd"],
                                      acr=authorization.ACR_PWD, auth_time=int(ctx.clock()), ip=ip,
                                      user_agent=request.headers.get("user-agent"))
        devices.sign_in(db, ctx, _new, user_agent=request.headers.get("user-agent"), ip=ip)
        sessions.set_data(_new, "signup_code", None)
        return "ok", value

    state, data = await bridge.call(ctx, run)
    if state == "csrf":
        return web.error_page(request, "invalid_request", CSRF_FAILED)
    if state == "wrong":
        return web.page(request, "email_code.html", data)
    if state == "expired":
        return web.error_page(request, "invalid_request", CODE_EXPIRED)
    if state == "taken":
        return web.error_page(request, "invalid_request",
                              "That username or e-mail address was registered meanwhile. Start again.")
    return web.redirect(with_rid("/authorize/resume", rid) if rid else "/account", request, data)
