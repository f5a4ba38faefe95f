"""The non-protocol error hierarchy, and the one place exceptions become responses.

Protocol errors of the authorization and token endpoints are Authlib
``OAuth2Error`` subclasses (see ``oauth/errors.py``); everything else raised by
the app is an :class:`AppError`. ``hint`` is what the client sees; ``detail``
is logged only.

The Starlette exception handlers registered by ``create_app`` (:data:`HANDLERS`)
and the pure ASGI middleware (request limits, the deny list, the last-resort
500) all render through :func:`render`, so every refusal has the same shape:
``{"error", "error_description"}`` JSON with ``Cache-Control: no-store`` (RFC
6749 §5.2, RFC 6750 §3), or the HTML error page for a browser.

Content negotiation: a request that accepts ``text/html`` on a page route gets the
HTML page (``error.html``: what went wrong, a way back, the request id as the
reference to quote to support), for every failure including the 500 and the 503
of a database that is down; API and protocol routes (:data:`API_PATHS`,
:data:`API_PREFIXES`) always get JSON. When the page itself cannot be rendered
(a broken theme template) a plain built-in page is sent instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import structlog
from authlib.oauth2.base import OAuth2Error
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from authserver.i18n import N_
from authserver.oauth.vocabulary import NO_STORE

if TYPE_CHECKING:
    from starlette.templating import Jinja2Templates

log = structlog.get_logger("authserver.errors")


class AppError(Exception):
    """Base of every error the app raises on purpose; unhandled, it is a 500."""

    status_code = 500
    error = "server_error"
    hint = N_("The server could not handle the request.")
    #: API errors are always JSON; the others are an HTML page when a browser asks for HTML
    json_only = False

    def __init__(self, hint: str | None = None, *, detail: str | None = None, **headers: str) -> None:
        super().__init__(hint or self.hint)
        if hint:
            self.hint = hint
        self.detail = detail
        self.headers: dict[str, str] = headers

    def body(self) -> dict[str, str]:
        """The JSON body (RFC 6749 §5.2 shape)."""
        return {"error": self.error, "error_description": self.hint}


class DomainError(AppError):
    """A business rule refused the input; the message is safe to show (form, CLI, API)."""

    status_code = 400
    error = "invalid_request"
    hint = N_("The request is invalid.")


class BadRequest(AppError):
    status_code = 400
    error = "invalid_request"
    hint = N_("The request is malformed.")


class PayloadTooLarge(AppError):
    status_code = 413
    error = "invalid_request"
    hint = N_("The request body is too large.")


class AccessDenied(AppError):
    """The client's address is on the admin deny list. The body names no reason."""

    status_code = 403
    error = "access_denied"
    hint = N_("The request was refused.")
    json_only = True

    def body(self) -> dict[str, str]:
        return {"error": self.error}


class TooManyRequests(AppError):
    status_code = 429
    error = "temporarily_unavailable"
    hint = N_("Too many requests; try again later.")

    def __init__(self, retry_after: int, hint: str | None = None) -> None:
        super().__init__(hint, **{"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


class ServiceUnavailable(AppError):
    """The database cannot be reached: a clean 503 the client may retry (RFC 6749 §4.1.2.1
    and §5.2 ``temporarily_unavailable``; RFC 9110 §15.6.4 with ``Retry-After``)."""

    status_code = 503
    error = "temporarily_unavailable"
    hint = N_("The service is temporarily unavailable; try again shortly.")

    def __init__(self) -> None:
        super().__init__(**{"Retry-After": "1"})


def database_unavailable(exc: BaseException) -> bool:
    """True for a lost or refused database connection (not for a bad statement or value,
    which is a bug and stays a 500)."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.TimeoutError):  # the pool waited in vain for a connection
        return True
    if isinstance(exc, sa_exc.PendingRollbackError) and exc.__context__ is not None:
        # raised by a statement made while handling a lost connection (undoing a claim,
        # say): the cause is the lost connection, not the code
        return database_unavailable(exc.__context__)
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    return False


def bearer_challenge(error: str | None = None, description: str | None = None) -> str:
    """The ``WWW-Authenticate`` value of RFC 6750 §3: no error code when the request
    carried no token (§3.1), else the code and optionally its description."""
    value = 'Bearer realm="authserver"'
    if error:
        value += f', error="{error}"'
        if description:
            value += f', error_description="{description}"'
    return value


class BearerError(AppError):
    """A protected resource refusing a Bearer access token (RFC 6750 §3)."""

    status_code = 401
    error = "invalid_token"
    hint = N_("The access token is invalid or expired.")
    json_only = True

    def __init__(self, hint: str | None = None, *, detail: str | None = None) -> None:
        super().__init__(hint, detail=detail)
        self.headers["WWW-Authenticate"] = bearer_challenge(self.error, self.hint)


class MissingToken(BearerError):
    """RFC 6750 §3.1: no credentials, so a bare challenge and an empty body."""

    error = ""

    def body(self) -> dict[str, str]:
        return {}


class InvalidToken(BearerError):
    """RFC 6750 §3.1 ``invalid_token``."""


class InsufficientScope(BearerError):
    """RFC 6750 §3.1 ``insufficient_scope``."""

    status_code = 403
    error = "insufficient_scope"
    hint = N_("The access token lacks the required scope.")


#: routes whose callers are programs: their errors are JSON whatever ``Accept`` says
API_PATHS = frozenset({"/token", "/userinfo", "/introspect", "/revoke", "/jwks.json", "/health"})
API_PREFIXES = ("/.well-known/", "/register", "/admin/api/")


def is_api_path(path: str) -> bool:
    return path in API_PATHS or path.startswith(API_PREFIXES) or path == "/admin/api"


def wants_html(request: Request) -> bool:
    """Browsers get HTML; API routes, and anything not asking for HTML, get JSON."""
    return "text/html" in request.headers.get("accept", "") and not is_api_path(request.url.path)


def error_page(request: Request, status: int, error: str, hint: str,
               headers: Mapping[str, str] | None = None) -> Response:
    """The HTML error page (never a redirect), in the request's language: what went wrong,
    a way back, and the request id as the reference to quote to support."""
    from authserver.web import language

    templates: Jinja2Templates = request.app.state.context.templates
    values = {"error": error, "error_description": hint, "status": status,
              "request_id": getattr(request.state, "request_id", None)}
    return templates.TemplateResponse(
        request, "error.html", {**language.template_values(request, values), **values},
        status_code=status, headers={**NO_STORE, **(headers or {})},
    )


def render(exc: AppError, request: Request | None = None) -> Response:
    """The response for ``exc``: the HTML page when ``request`` is a browser asking for
    HTML on a page route (not an API route, :func:`is_api_path`) and the error allows it,
    else JSON. Without a request: JSON."""
    if request is not None and not exc.json_only and wants_html(request):
        try:
            return error_page(request, exc.status_code, exc.error, exc.hint, exc.headers)
        except Exception:  # the page itself failed (a broken theme template): the plain page
            log.exception("error_page_failed", exc_type=type(exc).__name__)
            return HTMLResponse(_PLAIN_ERROR_PAGE, exc.status_code, headers={**NO_STORE, **exc.headers})
    return JSONResponse(exc.body(), exc.status_code, headers={**NO_STORE, **exc.headers})


async def handle_app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    if exc.detail:
        log.info("request_failed", error=exc.error, status=exc.status_code, detail=exc.detail)
    return render(exc, request)


async def handle_oauth_error(request: Request, exc: Exception) -> Response:
    """An ``OAuth2Error`` that escaped the bridge: RFC 6749 §5.2 JSON."""
    assert isinstance(exc, OAuth2Error)
    status, body, headers = exc()
    return Response(
        body if isinstance(body, str | bytes) else str(body),
        status,
        headers={**dict(headers), **NO_STORE},
        media_type="application/json",
    )


_HTTP_ERRORS = {404: ("not_found", N_("There is nothing here.")),
                405: ("method_not_allowed", N_("Method not allowed."))}


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's routing errors (404, 405) and request parsing errors (400, 413)."""
    assert isinstance(exc, HTTPException)
    error, hint = _HTTP_ERRORS.get(exc.status_code, ("invalid_request", N_("The request could not be handled.")))
    app_error = AppError(hint, **dict(exc.headers or {}))
    app_error.status_code, app_error.error = exc.status_code, error
    return render(app_error, request)


#: the last resort when even the error page cannot be rendered
_PLAIN_ERROR_PAGE = (
    '<!doctype html><html lang="en"><title>Error</title><h1>Something went wrong</h1>'
    "<p>The error was logged. Please try again later.</p></html>"
)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """The last resort: log the exception (the request id is bound by the middleware),
    answer 500 with a generic page or JSON, never a trace. Called by
    ``RequestContextMiddleware`` and registered as Starlette's 500 handler.

    A lost database connection is no bug: it is logged without a trace (a driver's
    message may carry SQL parameters) and answered 503 ``temporarily_unavailable``."""
    if database_unavailable(exc):
        log.warning("database_unavailable", exc_type=type(exc).__name__, path=request.url.path)
        return render(ServiceUnavailable(), request)
    log.exception("unhandled_error", exc_type=type(exc).__name__, path=request.url.path)
    return render(AppError(), request)


Handler = Callable[[Request, Exception], Awaitable[Response]]
#: what ``create_app`` passes to Starlette as ``exception_handlers``
HANDLERS: dict[type[Exception] | int, Handler] = {
    AppError: handle_app_error,
    OAuth2Error: handle_oauth_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
