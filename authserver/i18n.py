"""Languages: the message catalogues, choosing a page's language, and dates in it.

Every text a person reads (pages and mails) is an English message id looked up
in a gettext catalogue, ``authserver/locale/<lang>/LC_MESSAGES/messages.po``
(docs/i18n.md). The catalogues are compiled in memory the first time a language
is used (Babel reads the ``.po``; nothing to build, the wheel ships the ``.po``
files), once per process.

A page's language is the first of (docs/i18n.md, "Choosing the language"):

1. the relying party's ``ui_locales`` (OIDC Core §3.1.2.1), carried with the
   pending sign-in request (or on the request itself), unless the user picked
   another language with the switcher during that sign-in;
2. the ``lang`` cookie the language switcher sets;
3. the browser's ``Accept-Language`` (RFC 9110 §12.5.4);
4. ``AUTHSERVER_DEFAULT_LOCALE``.

Only the languages in :data:`LOCALES` can come out; a region (``de-AT``) falls
back to its language.

Texts written in Python (form errors, flash messages, domain errors shown on a
form) are marked for extraction with :func:`N_` or made :class:`Text` (a message
with parameters): they stay English ``str`` for logs, the CLI and the API, and
are translated where a page or a mail shows them (the ``t`` template filter).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
from collections.abc import Callable, Iterable, Mapping
from gettext import NullTranslations
from pathlib import Path
from typing import Any

from markupsafe import Markup

# Babel is imported where it is used: the settings and the command line import this
# module for LOCALES only.

#: the languages with a complete catalogue; English is the message ids themselves
LOCALES: tuple[str, ...] = ("en", "fr", "de")
DEFAULT = "en"
#: each language's name in itself, for the switcher
NAMES: Mapping[str, str] = {"en": "English", "fr": "Français", "de": "Deutsch"}
#: the cookie the language switcher sets (a preference, not a secret)
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 86400
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

_TAG = re.compile(r"^[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*$")


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it now (gettext_noop)."""
    return message


class Text(str):
    """An English message with parameters, translated where it is shown.

    ``str(text)`` and the value itself are the English sentence (logs, CLI, API);
    :meth:`localize` looks the message id up and fills the parameters in.
    """

    msgid: str
    params: Mapping[str, object]

    def __new__(cls, msgid: str, **params: object) -> Text:
        value = super().__new__(cls, msgid % params if params else msgid)
        value.msgid = msgid
        value.params = params
        return value

    def localize(self, translations: NullTranslations) -> str:
        translated = translations.gettext(self.msgid)
        return translated % self.params if self.params else translated


def dump(value: str) -> object:
    """``value`` as JSON data that keeps a :class:`Text`'s message (a flash message in the session)."""
    if isinstance(value, Text):
        return {"msgid": value.msgid, "params": dict(value.params)}
    return str(value)


def load(data: object) -> str | None:
    """The text :func:`dump` kept, or ``None``."""
    if isinstance(data, dict) and isinstance(data.get("msgid"), str) and isinstance(data.get("params"), dict):
        return Text(data["msgid"], **data["params"])
    return data if isinstance(data, str) else None


# --- catalogues ---------------------------------------------------------------------------


@functools.cache
def translations(locale: str) -> NullTranslations:
    """The catalogue of ``locale`` (English: none, the message ids are English)."""
    if locale == DEFAULT or locale not in LOCALES:
        return NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled)


def translate(value: object, locale: str) -> str:
    """``value`` in ``locale``: a :class:`Text` or a message id; other text unchanged
    (a message id the catalogue lacks comes back as it is)."""
    found = translations(locale)
    if isinstance(value, Text):
        return value.localize(found)
    text = "" if value is None else str(value)
    return found.gettext(text) if text else text


def gettext(message: str, locale: str, **params: object) -> str:
    translated = translations(locale).gettext(message)
    return translated % params if params else translated


def ngettext(singular: str, plural: str, n: int, locale: str, **params: object) -> str:
    translated = translations(locale).ngettext(singular, plural, n)
    return translated % {"num": n, **params}


# --- choosing the language ----------------------------------------------------------------


def _supported(tag: str) -> str | None:
    tag = tag.strip()
    if not _TAG.match(tag):
        return None
    language = re.split(r"[-_]", tag, maxsplit=1)[0].lower()
    return language if language in LOCALES else None


def first_supported(tags: Iterable[str]) -> str | None:
    """The first tag whose language has a catalogue (``de-AT`` counts as ``de``)."""
    for tag in tags:
        found = _supported(tag)
        if found is not None:
            return found
    return None


def from_ui_locales(value: str | None) -> str | None:
    """OIDC Core §3.1.2.1: ``ui_locales`` is space-separated BCP 47 tags, most preferred first."""
    return first_supported((value or "").split()[:20])


def from_accept_language(value: str | None) -> str | None:
    """RFC 9110 §12.5.4: tags with optional ``q`` weights; a weight of 0 means "not this"."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((value or "").split(",")[:30]):
        tag, _, rest = item.strip().partition(";")
        weight = 1.0
        match = re.fullmatch(r"\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*", rest) if rest else None
        if rest and match is None:
            continue
        if match is not None:
            weight = float(match.group(1))
        if weight > 0 and tag.strip() != "*":
            ranked.append((-weight, position, tag))
    return first_supported(tag for _, _, tag in sorted(ranked))


def negotiate(*, ui_locales: str | None = None, chosen: str | None = None, cookie: str | None = None,
              accept_language: str | None = None, default: str = DEFAULT) -> str:
    """The language of a page: ``chosen`` (the switcher, during this sign-in), then
    ``ui_locales``, then the cookie, then ``Accept-Language``, then ``default``."""
    return (_supported(chosen or "") or from_ui_locales(ui_locales) or _supported(cookie or "")
            or from_accept_language(accept_language) or (default if default in LOCALES else DEFAULT))


# --- dates and times ----------------------------------------------------------------------


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def datetime(value: dt.datetime | None, locale: str, fmt: str = "medium") -> str:
    """A date and time in ``locale``'s way, in UTC (we do not know the reader's zone)."""
    if value is None:
        return ""
    from babel.dates import format_datetime

    return format_datetime(_utc(value), fmt, tzinfo=dt.UTC, locale=locale) + " UTC"


def date(value: dt.datetime | dt.date | None, locale: str, fmt: str = "medium") -> str:
    from babel.dates import format_date

    return "" if value is None else format_date(value, fmt, locale=locale)


def ago(value: dt.datetime | None, locale: str, now: dt.datetime | None = None) -> str:
    """How long ago, in words ("3 hours ago", "il y a 3 heures", "vor 3 Stunden")."""
    if value is None:
        return ""
    now = now or dt.datetime.now(dt.UTC)
    delta = _utc(value) - now
    if abs(delta.total_seconds()) < 60:
        return gettext("just now", locale)
    from babel.dates import format_timedelta

    return format_timedelta(delta, add_direction=True, locale=locale)


# --- templates ----------------------------------------------------------------------------


def template_values(locale: str) -> dict[str, Any]:
    """What a template rendered in ``locale`` needs: the gettext callables of Jinja's
    i18n extension (new style: ``_("Hello %(name)s", name=x)`` escapes ``x``), the
    language and the switcher's list."""
    found = translations(locale)
    return {
        "gettext": _new_gettext(found.gettext),
        "_": _new_gettext(found.gettext),
        "ngettext": _new_ngettext(found.ngettext),
        "locale": locale,
        "languages": [(code, NAMES[code]) for code in LOCALES],
    }


def _new_gettext(func: Callable[[str], str]) -> Callable[..., str]:
    from jinja2 import pass_context
    from jinja2.runtime import Context

    @pass_context
    def gettext(context: Context, message: str, **variables: object) -> str:
        translated: str = func(message)
        if context.eval_ctx.autoescape:
            # a message id of our templates and its reviewed translation are as trusted as the
            # template itself (docs/i18n.md); the variables are escaped by Markup's "%"
            translated = Markup(translated)  # noqa: S704
        return translated % variables  # always, as Jinja does: a trans block's "%" is "%%"

    return gettext


def _new_ngettext(func: Callable[[str, str, int], str]) -> Callable[..., str]:
    from jinja2 import pass_context
    from jinja2.runtime import Context

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, num: int, **variables: object) -> str:
        variables.setdefault("num", num)
        translated: str = func(singular, plural, num)
        if context.eval_ctx.autoescape:
            translated = Markup(translated)  # noqa: S704 - as in gettext above
        return translated % variables

    return ngettext


def install(environment: Any) -> None:
    """Add Jinja's i18n extension and the filters to ``environment``. The callables
    installed here are English; each render passes its language's (:func:`template_values`)."""
    from jinja2 import pass_context
    from jinja2.runtime import Context

    environment.add_extension("jinja2.ext.i18n")
    environment.globals.update(template_values(DEFAULT))
    environment.newstyle_gettext = True
    environment.policies["ext.i18n.trimmed"] = True  # as babel.cfg extracts them

    def locale_of(context: Context) -> str:
        value = context.get("locale")
        return value if isinstance(value, str) and value in LOCALES else DEFAULT

    @pass_context
    def t(context: Context, value: object) -> str:
        """A text chosen in Python (an error, a notice): translated, never trusted as markup."""
        return translate(value, locale_of(context))

    @pass_context
    def datetime_filter(context: Context, value: dt.datetime | None, fmt: str = "medium") -> str:
        return datetime(value, locale_of(context), fmt)

    @pass_context
    def date_filter(context: Context, value: dt.datetime | None, fmt: str = "medium") -> str:
        return date(value, locale_of(context), fmt)

    @pass_context
    def ago_filter(context: Context, value: dt.datetime | None) -> str:
        return ago(value, locale_of(context))

    environment.filters.update(t=t, datetime=datetime_filter, date=date_filter, ago=ago_filter)
