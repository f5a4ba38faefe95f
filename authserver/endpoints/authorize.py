"""Authorization endpoint (RFC 6749 §3.1; OIDC Core §3.1.2.1: GET and POST).

Parses, runs :mod:`authserver.oauth.authorization` in the bridge, and turns its
outcome into a redirect (with ``iss``) or an HTML error page.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.i18n import N_
from authserver.oauth import authorization, bridge
from authserver.sessions import service as sessions
from authserver.web import http


def respond(request: Request, outcome: authorization.Outcome) -> Response:
    if outcome.location:
        return http.redirect(outcome.location, request, outcome.cookie, outcome.status)
    return http.error_page(request, outcome.error or "invalid_request",
                          outcome.error_description or N_("The request is invalid."), outcome.status)


async def authorize(request: Request) -> Response:
    ctx = http.context(request)
    frozen = await bridge.freeze(request, include_args=request.method == "GET")
    cookie = http.session_cookie(request)

    def run() -> authorization.Outcome:
        session = sessions.load(bridge.current_db.get(), ctx.box, cookie)
        return authorization.run(ctx, frozen, session)

    return respond(request, await bridge.call(ctx, run))


async def resume(request: Request) -> Response:
    """Continue a pending request (the pages continue it themselves; this stays for a
    browser that comes back to a pending request, e.g. after sign-up)."""
    ctx = http.context(request)
    rid = request.query_params.get("rid", "")
    cookie = http.session_cookie(request)

    def run() -> authorization.Outcome:
        session = sessions.load(bridge.current_db.get(), ctx.box, cookie)
        return authorization.resume(ctx, session, rid, request.headers, request.state.client_ip)

    return respond(request, await bridge.call(ctx, run))


routes = [
    Route("/authorize", authorize, methods=["GET", "POST"]),
    Route("/authorize/resume", resume, methods=["GET"]),
]
