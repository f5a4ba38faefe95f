"""The non-protocol error hierarchy, and the one place exceptions become responses.

Protocol errors are Authlib ``OAuth2Error`` subclasses (see ``oauth/errors.py``);
everything else raised by the app is an :class:`AppError`. ``hint`` is what the
client sees; ``detail`` is logged only.
"""

from __future__ import annotations

from typing import Any

import structlog
from authlib.oauth2.base import OAuth2Error
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

log = structlog.get_logger("authserver.errors")


class AppError(Exception):
    status_code = 500
    error = "server_error"
    hint = "The server could not handle the request."

    def __init__(self, hint: str | None = None, *, detail: str | None = None, **headers: str) -> None:
        super().__init__(hint or self.hint)
        if hint:
            self.hint = hint
        self.detail = detail
        self.headers = headers


class BadRequest(AppError):
    status_code = 400
    error = "invalid_request"
    hint = "The request is malformed."





class TooManyRequests(AppError):
    status_code = 429
    error = "temporarily_unavailable"
    hint = "Too many requests; try again later."

    def __init__(self, retry_after: int, hint: str | None = None) -> None:
        super().__init__(hint, **{"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after



def wants_html(request: Request) -> bool:
    """Browsers get HTML; API clients (and anything not asking for HTML) get JSON."""
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status: int, error: str, hint: str,
               headers: dict[str, str] | None = None) -> Response:
    """The HTML error page (never a redirect)."""
    return request.app.state.context.templates.TemplateResponse(
        request, "error.html", {"error": error, "error_description": hint},
        status_code=status, headers={"Cache-Control": "no-store", **(headers or {})},
    )


def error_response(request: Request, status: int, error: str, hint: str,
                   headers: dict[str, str] | None = None) -> Response:
    if wants_html(request):
        return error_page(request, status, error, hint, headers)
    headers = {"Cache-Control": "no-store", **(headers or {})}
    return JSONResponse({"error": error, "error_description": hint}, status, headers=headers)


async def handle_app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    if exc.detail:
        log.info("request_failed", error=exc.error, status=exc.status_code, detail=exc.detail)
    return error_response(request, exc.status_code, exc.error, exc.hint, exc.headers)


async def handle_oauth_error(request: Request, exc: Exception) -> Response:
    """An ``OAuth2Error`` that escaped the bridge: RFC 6749 §5.2 JSON."""
    assert isinstance(exc, OAuth2Error)
    status, body, headers = exc()
    return Response(
        body if isinstance(body, str | bytes) else str(body),
        status,
        headers={**dict(headers), "Cache-Control": "no-store"},
        media_type="application/json",
    )


async def handle_http_exception(request: Request, exc: Any) -> Response:
    status = getattr(exc, "status_code", 500)
    names = {404: "not_found", 405: "method_not_allowed", 400: "invalid_request", 413: "invalid_request"}
    hints = {404: "There is nothing here.", 405: "Method not allowed."}
    return error_response(
        request, status, names.get(status, "invalid_request"),
        hints.get(status, "The request could not be handled."),
        dict(getattr(exc, "headers", None) or {}),
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """Log with the request id; show a generic page or JSON, never a trace."""
    log.exception("unhandled_error", exc_type=type(exc).__name__)
    if wants_html(request):
        return HTMLResponse(
            "<!doctype html><title>Server error</title><h1>Something went wrong</h1>"
            "<p>The error was logged. Please try again later.</p>",
            500,
        )
    return JSONResponse(
        {"error": "server_error", "error_description": "The server could not handle the request."}, 500
    )
