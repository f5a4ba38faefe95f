"""RP-Initiated Logout 1.0 (``end_session_endpoint``), GET and POST.

Redirects only to a ``post_logout_redirect_uri`` registered for the client
named by a valid ``id_token_hint`` (or ``client_id``, which must agree with
it); anything doubtful gets a page, never a redirect (§2, §3). When the hint
names the session's user the session ends at once; otherwise the user is
asked to confirm (§2: the OP SHOULD ask).
"""

from __future__ import annotations

from typing import Any

from authlib.common.urls import add_params_to_uri
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.audit import service as audit
from authserver.clients import service as clients
from authserver.interaction import web
from authserver.oauth import bridge
from authserver.sessions import service as sessions

PARAMS = ("id_token_hint", "post_logout_redirect_uri", "state", "client_id", "ui_locales", "logout_hint")


def _validate(ctx: Any, params: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    """Returns ``(error, redirect_to, hint_sub)``."""
    db = bridge.current_db.get()
    hint = params.get("id_token_hint")
    claims = ctx.oauth.token_issuer.verify_id_token_hint(hint) if hint else None
    if hint and claims is None:
        return "The id_token_hint is not an ID token issued by this server.", None, None
    aud = claims.get("aud") if claims else None
    hint_client = aud if isinstance(aud, str) else (aud[0] if isinstance(aud, list) and len(aud) == 1 else None)
    client_id = params.get("client_id") or hint_client
    if params.get("client_id") and hint_client and params["client_id"] != hint_client:
        return "client_id does not match the id_token_hint.", None, None
    target = params.get("post_logout_redirect_uri")
    if target:
        if claims is None:
            return "A post_logout_redirect_uri needs a valid id_token_hint.", None, None
        client = clients.get_client(db, client_id or "")
        if client is None or target not in client.post_logout_redirect_uris:
            return "The post_logout_redirect_uri is not registered for this client.", None, None
        if params.get("state"):
            target = add_params_to_uri(target, [("state", params["state"])])
    return None, target, claims["sub"] if claims else None


async def logout(request: Request) -> Response:
    ctx = web.context(request)
    params = dict(await bridge.read_form(request)) if request.method == "POST" else dict(request.query_params)
    params = {k: v for k, v in params.items() if k in PARAMS or k in ("csrf_token", "confirm")}
    cookie = web.session_cookie(request)

    def run() -> tuple[str, Any]:
        db = bridge.current_db.get()
        error, target, hint_sub = _validate(ctx, params)
        if error:
            return "error", error
        session = sessions.load(db, ctx.box, cookie)
        if session is not None and session.user_id:
            answered = request.method == "POST" and sessions.check_csrf(session, params.get("csrf_token"))
            if answered and params.get("confirm") == "no":
                return "kept", None
            confirmed = answered and params.get("confirm") == "yes"
            if not confirmed and hint_sub != session.user_id:
                return "confirm", {"csrf_token": sessions.csrf_token(session),
                                   "params": {k: v for k, v in params.items() if k in PARAMS}}
            audit.record(db, "logout", user_id=session.user_id, ip=request.state.client_ip)
            sessions.end(db, session)
        return "done", target

    outcome, data = await bridge.call(ctx, run)
    if outcome == "error":
        return web.error_page(request, "invalid_request", data)
    if outcome == "confirm":
        return web.page(request, "logout.html", data)
    if outcome == "kept":
        return web.page(request, "logged_out.html", {"kept": True})
    response = web.redirect(data, request) if data else web.page(request, "logged_out.html", {})
    if outcome == "done":
        web.clear_session_cookie(response, request)
    return response


routes = [Route("/logout", logout, methods=["GET", "POST"])]
