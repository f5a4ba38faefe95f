"""Browser request and response helpers: the context, the session cookie, pages and redirects.

Every browser response carries ``Cache-Control: no-store``: pages hold CSRF
tokens and personal data (RFC 9111 §5.2.2.5).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from authserver import errors, i18n
from authserver.context import Context, context_of
from authserver.sessions import service as sessions
from authserver.web import language

NO_STORE = {"Cache-Control": "no-store"}


def context(request: Request) -> Context:
    return context_of(request)


def session_cookie(request: Request) -> str | None:
    return request.cookies.get(sessions.cookie_name(context(request).settings))


def set_session_cookie(response: Response, request: Request, value: str) -> None:
    """``HttpOnly``, ``SameSite=Lax`` and, over https, ``Secure`` with the ``__Host-`` name
    (RFC 6265bis §4.1.3.2)."""
    settings = context(request).settings
    response.set_cookie(
        sessions.cookie_name(settings), value, max_age=sessions.cookie_max_age(settings, value), path="/",
        secure=settings.is_https, httponly=True, samesite="lax",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    settings = context(request).settings
    response.delete_cookie(sessions.cookie_name(settings), path="/", secure=settings.is_https,
                           httponly=True, samesite="lax")


def set_language_cookie(response: Response, request: Request, locale: str) -> None:
    """The switcher's choice: a preference, readable by nothing but this site's pages."""
    response.set_cookie(i18n.COOKIE, locale, max_age=i18n.COOKIE_MAX_AGE, path="/",
                        secure=context(request).settings.is_https, httponly=True, samesite="lax")


def redirect(location: str, request: Request, cookie: str | None = None, status: int = 303) -> Response:
    response = RedirectResponse(location, status_code=status, headers=NO_STORE)
    if cookie:
        set_session_cookie(response, request, cookie)
    return response


def page(request: Request, template: str, values: Mapping[str, object], status: int = 200,
         cookie: str | None = None) -> Response:
    response: Response = context(request).templates.TemplateResponse(
        request, template, {**language.template_values(request, values), **values}, status_code=status,
        headers=NO_STORE)
    if cookie:
        set_session_cookie(response, request, cookie)
    return response


def error_page(request: Request, error: str, description: str, status: int = 400) -> Response:
    """An HTML error page (never a redirect): for requests whose redirect URI cannot be trusted."""
    return errors.error_page(request, status, error, description)
