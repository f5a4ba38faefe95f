"""A request's language (:mod:`authserver.i18n` has the rule) and what templates need for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from authserver import i18n


def locale_of(request: Request) -> str:
    """The language of the page answering ``request``, chosen once per request.

    The form-page wrapper puts the pending sign-in request's ``ui_locales`` and the
    switcher's choice for it on ``request.state`` before anything is rendered; other
    requests (the authorization endpoint's own error pages) read ``ui_locales`` from
    their query string.
    """
    state = request.state
    found = getattr(state, "locale", None)
    if isinstance(found, str):
        return found
    ui_locales = getattr(state, "ui_locales", None)
    if ui_locales is None:
        ui_locales = request.query_params.get("ui_locales")
    settings = request.app.state.context.settings
    locale = i18n.negotiate(ui_locales=ui_locales, chosen=getattr(state, "chosen_locale", None),
                            cookie=request.cookies.get(i18n.COOKIE),
                            accept_language=request.headers.get("accept-language"),
                            default=settings.default_locale)
    state.locale = locale
    return locale


def here(request: Request, values: Mapping[str, object]) -> str:
    """Where the language switcher comes back to: this page, with its pending request."""
    path = request.url.path
    if request.method == "GET":
        return path + (f"?{request.url.query}" if request.url.query else "")
    rid = values.get("rid")
    return f"{path}?{urlencode({'rid': rid})}" if isinstance(rid, str) and rid else path


def template_values(request: Request, values: Mapping[str, object]) -> dict[str, Any]:
    """The gettext callables and language of this request, and the switcher's return path."""
    return {**i18n.template_values(locale_of(request)), "language_next": here(request, values)}
