"""A request's language (:mod:`authserver.i18n` has the rule) and what templates need for it:
the values of each render and the filters that word things in the page's language."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.requests import Request

from authserver import i18n
from authserver.sessions import devices


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


def _locale(context: Context) -> str:
    value = context.get("locale")
    return value if isinstance(value, str) and value in i18n.LOCALES else i18n.DEFAULT


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


@pass_context
def device_label(context: Context, user_agent: str | None) -> str:
    """The browser of a ``User-Agent`` as a heading, "Firefox on Linux", "Firefox sous Linux"."""
    return _capitalised(i18n.translate(devices.device_name(user_agent), _locale(context)))


@pass_context
def stored_device(context: Context, name: str | None) -> str:
    """A device's stored name in the page's language (an application's name as it is)."""
    return i18n.translate(devices.stored_name(name), _locale(context))


@pass_context
def relative_time(context: Context, when: dt.datetime | None) -> str:
    """"3 hours ago", "il y a 3 heures", "vor 3 Stunden" (Babel)."""
    return i18n.ago(when, _locale(context))


def install_filters(environment: object) -> None:
    """The page filters that depend on the language (over :mod:`authserver.branding`'s English ones)."""
    filters = environment.filters  # type: ignore[attr-defined]
    filters.update(device_label=device_label, stored_device=stored_device, relative_time=relative_time)
