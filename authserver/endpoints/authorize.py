"""Authorization endpoint (RFC 6749 §3.1; OIDC Core §3.1.2.1: GET and POST).

Parses, runs :mod:`authserver.oauth.authorization` in the bridge, and turns its
outcome into a redirect (with ``iss``), the login form (:func:`login_form`) or an HTML
error page.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.context import Context
from authserver.i18n import N_
from authserver.interaction import login
from authserver.oauth import authorization, bridge
from authserver.sessions import service as sessions
from authserver.web import http
from authserver.web.pages import with_rid


def respond(request: Request, outcome: authorization.Outcome, form: dict[str, object] | None = None) -> Response:
    if form is not None:
        return http.page(request, "login.html", form, cookie=outcome.cookie)
    if outcome.location:
        return http.redirect(outcome.location, request, outcome.cookie, outcome.status)
    return http.error_page(request, outcome.error or "invalid_request",
                          outcome.error_description or N_("The request is invalid."), outcome.status)


def login_form(request: Request, ctx: Context, outcome: authorization.Outcome) -> dict[str, object] | None:
    """The login form, when a GET request needs a login: shown right here rather than after
    a 303 to ``/login`` (one request less per sign-in, one round trip less for a user far
    away); it posts to ``/login`` like the form there, which shows it again after a
    failure. Its language is the request's ``ui_locales`` (read from the query string, as
    for every page of this endpoint), and the language switcher comes back to ``/login``
    with the pending request (a GET of this URL would start another one).

    A POST keeps its 303 (a reload must not resubmit it), and so does a pushed request:
    its ``request_uri`` is spent, so reloading this URL would only find it used, while
    ``/login?rid=…`` can be reloaded (RFC 9126 §4)."""
    if (outcome.interaction != "login" or outcome.session is None or outcome.rid is None
            or outcome.pushed or request.method != "GET"):
        return None
    form = login.values(ctx, outcome.session, outcome.rid)
    if form is not None:
        form["language_next"] = with_rid("/login", outcome.rid)
    return form


async def authorize(request: Request) -> Response:
    ctx = http.context(request)
    frozen = await bridge.freeze(request, include_args=request.method == "GET")
    cookie = http.session_cookie(request)

    def run() -> tuple[authorization.Outcome, dict[str, object] | None]:
        session = sessions.load(bridge.current_db.get(), ctx.box, cookie)
        outcome = authorization.run(ctx, frozen, session)
        return outcome, login_form(request, ctx, outcome)

    return respond(request, *await bridge.call(ctx, run))


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
