"""Login page: username or e-mail plus password, then back to the pending request.

Every failure (unknown user, wrong password, locked, disabled) shows the same
text with the same status after the same Argon2 work.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from authserver.accounts import service as accounts
from authserver.audit import service as audit
from authserver.clients import service as clients
from authserver.endpoints.guards import rate_limit
from authserver.interaction import web
from authserver.oauth import authorization, bridge
from authserver.sessions import devices
from authserver.sessions import service as sessions

FAILED = "Invalid username or password."


def _login_values(ctx: Any, session: Any, rid: str, error: str | None = None,
                  login: str | None = None) -> dict[str, Any] | None:
    params = authorization.pending_params(session, rid) if rid else []
    if params is None:
        return None
    data = dict(params)
    client = clients.get_client(bridge.current_db.get(), data.get("client_id", "")) if data else None
    return {
        "rid": rid,
        "csrf_token": sessions.csrf_token(session),
        "login": login if login is not None else data.get("login_hint", ""),
        "client_name": client.client_name if client else None,
        "error": error,
        "signup_enabled": ctx.settings.signup_enabled,
    }


async def login_form(request: Request) -> Response:
    ctx = web.context(request)
    rid = request.query_params.get("rid", "")
    cookie = web.session_cookie(request)

    def run() -> tuple[dict[str, Any] | None, str | None]:
        db = bridge.current_db.get()
        session = sessions.load(db, ctx.box, cookie)
        new_cookie = None
        if session is None:
            session, new_cookie = sessions.create(db, ctx.box, ctx.settings, ip=request.state.client_ip,
                                                  user_agent=request.headers.get("user-agent"))
        return _login_values(ctx, session, rid), new_cookie

    values, new_cookie = await bridge.call(ctx, run)
    if values is None:
        return web.error_page(request, "invalid_request",
                              "This sign-in request has expired. Start again from the application.")
    return web.page(request, "login.html", values, cookie=new_cookie)


async def login_submit(request: Request) -> Response:
    ctx = web.context(request)
    form = dict(await bridge.read_form(request))
    rid = form.get("rid", "")
    cookie = web.session_cookie(request)
    ip = request.state.client_ip

    def run() -> tuple[str, Any, str | None]:
        db = bridge.current_db.get()
        rate_limit(ctx, "login", ip)
        session = sessions.load(db, ctx.box, cookie)
        if not sessions.check_csrf(session, form.get("csrf_token")):
            return "csrf", None, None
        result = accounts.authenticate(db, ctx, form.get("username", ""), form.get("password", ""), ip)
        if result.user is None:
            return "failed", _login_values(ctx, session, rid, FAILED, form.get("username", "")), None
        user = result.user
        new, value = sessions.log_in(db, ctx.box, ctx.settings, session, user_id=user.id, amr=["pwd"],
                                     acr=authorization.ACR_PWD, auth_time=int(ctx.clock()), ip=ip,
                                     user_agent=request.headers.get("user-agent"))
        if not result.mfa:  # otherwise the sign-in completes with the second factor
            devices.sign_in(db, ctx, new, user_agent=request.headers.get("user-agent"), ip=ip)
        audit.record(db, "login_succeeded", user_id=user.id, ip=ip, channel="login")
        target = f"/authorize/resume?rid={rid}" if rid else "/account"
        return "ok", target, value

    outcome, data, new_cookie = await bridge.call(ctx, run)
    if outcome == "csrf":
        return web.error_page(request, "invalid_request",
                              "The form expired or was not sent by this site. Go back and try again.")
    if outcome == "failed":
        if data is None:
            return web.error_page(request, "invalid_request", "This sign-in request has expired.")
        return web.page(request, "login.html", data, status=200)
    return web.redirect(data, request, new_cookie)
