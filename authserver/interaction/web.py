"""Helpers shared by the browser-facing handlers: session cookie and page rendering."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from authserver import errors
from authserver.sessions import service as sessions


def context(request: Request) -> Any:
    return request.app.state.context


def session_cookie(request: Request) -> str | None:
    return request.cookies.get(sessions.cookie_name(context(request).settings))


def set_session_cookie(response: Response, request: Request, value: str) -> None:
    settings = context(request).settings
    response.set_cookie(
        sessions.cookie_name(settings), value, max_age=settings.session_ttl, path="/",
        secure=settings.is_https, httponly=True, samesite="lax",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    settings = context(request).settings
    response.delete_cookie(sessions.cookie_name(settings), path="/", secure=settings.is_https,
                           httponly=True, samesite="lax")


def redirect(location: str, request: Request, cookie: str | None = None, status: int = 303) -> Response:
    response = RedirectResponse(location, status_code=status, headers={"Cache-Control": "no-store"})
    if cookie:
        set_session_cookie(response, request, cookie)
    return response


def page(request: Request, template: str, values: dict[str, Any], status: int = 200,
         cookie: str | None = None) -> Response:
    response = context(request).templates.TemplateResponse(
        request, template, values, status_code=status, headers={"Cache-Control": "no-store"})
    if cookie:
        set_session_cookie(response, request, cookie)
    return response


def error_page(request: Request, error: str, description: str, status: int = 400) -> Response:
    """An HTML error page (never a redirect): for requests whose redirect URI cannot be trusted."""
    return errors.error_page(request, status, error, description)
