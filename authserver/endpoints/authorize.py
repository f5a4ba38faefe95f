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
from authserver.web.pages import SIGN_IN_EXPIRED


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
    """Continue a pending request after login, MFA or consent."""
    ctx = http.context(request)
    rid = request.query_params.get("rid", "")
    cookie = http.session_cookie(request)

    def run() -> authorization.Outcome:
        session = sessions.load(bridge.current_db.get(), ctx.box, cookie)
        params = authorization.pending_params(session, rid)
        if params is None:
            return authorization.Outcome(error="invalid_request", status=400,
                                         error_description=SIGN_IN_EXPIRED)
        frozen = bridge.FrozenRequest("GET", ctx.settings.issuer + "/authorize", request.headers, [],
                                      params, include_args=True, ip=request.state.client_ip)
        return authorization.run(ctx, frozen, session, rid)

    return respond(request, await bridge.call(ctx, run))


routes = [
    Route("/authorize", authorize, methods=["GET", "POST"]),
    Route("/authorize/resume", resume, methods=["GET"]),
]
