"""Consent page: the requested scopes in words; the decision is remembered per user and client."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from authserver.clients import service as clients
from authserver.consents import service as consents
from authserver.interaction import web
from authserver.oauth import authorization, bridge
from authserver.sessions import service as sessions

SCOPE_WORDS = {
    "openid": "Sign you in with your account",
    "profile": "See your name and username",
    "email": "See your e-mail address",
    "offline_access": "Stay signed in to your account when you are not using it",
    "roles": "See the roles you have",
}


def describe(scope: str) -> str:
    return SCOPE_WORDS.get(scope, f"Access \u201c{scope}\u201d")


def _requested(db: Any, session: Any, rid: str) -> tuple[Any, list[str]] | None:
    params = authorization.pending_params(session, rid)
    if params is None or session is None or not session.user_id:
        return None
    data = dict(params)
    client = clients.get_client(db, data.get("client_id", ""))
    if client is None:
        return None
    allowed = client.scope.split()
    requested = [s for s in dict.fromkeys(data.get("scope", "").split()) if s in allowed] or allowed
    return client, requested


async def consent_form(request: Request) -> Response:
    ctx = web.context(request)
    rid = request.query_params.get("rid", "")
    cookie = web.session_cookie(request)

    def run() -> dict[str, Any] | None:
        db = bridge.current_db.get()
        session = sessions.load(db, ctx.box, cookie)
        found = _requested(db, session, rid)
        if found is None or session is None:
            return None
        client, scopes = found
        return {"rid": rid, "csrf_token": sessions.csrf_token(session), "client_name": client.client_name,
                "scopes": [(s, describe(s)) for s in scopes]}

    values = await bridge.call(ctx, run)
    if values is None:
        return web.error_page(request, "invalid_request", "This sign-in request has expired.")
    return web.page(request, "consent.html", values)


async def consent_submit(request: Request) -> Response:
    ctx = web.context(request)
    form = dict(await bridge.read_form(request))
    rid = form.get("rid", "")
    cookie = web.session_cookie(request)

    def run() -> str:
        db = bridge.current_db.get()
        session = sessions.load(db, ctx.box, cookie)
        if not sessions.check_csrf(session, form.get("csrf_token")):
            return "csrf"
        found = _requested(db, session, rid)
        if found is None or session is None or not session.user_id:
            return "expired"
        client, scopes = found
        if form.get("decision") == "allow":
            consents.grant(db, session.user_id, client.client_id, scopes, request.state.client_ip)
            authorization.update_pending(session, rid, consented=True)
        else:
            authorization.update_pending(session, rid, denied=True)
        return "ok"

    outcome = await bridge.call(ctx, run)
    if outcome == "csrf":
        return web.error_page(request, "invalid_request",
                              "The form expired or was not sent by this site. Go back and try again.")
    if outcome == "expired":
        return web.error_page(request, "invalid_request", "This sign-in request has expired.")
    return web.redirect(f"/authorize/resume?rid={rid}", request)
