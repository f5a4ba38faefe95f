"""The mails the server sends, as HTML + text in the brand and the reader's language.

Each letter is a subject and a few paragraphs (message ids marked with ``N_``,
translated here), optionally a code and a link; ``templates/mail/letter.html``
and ``letter.txt`` lay them out. A letter is composed while its page runs (in
the request's transaction, where the user is at hand) and returned as a
callable that sends it, which the page runs after its response
(:meth:`authserver.web.pages.Page.after`), so the answer time never shows
whether a message went out.

Which language: a sign-up code goes out in the language of the page that asked
for it (there is no account yet; the language is kept for the new account); the
other letters go to an account's owner, in the language they last used
(``users.locale``, remembered at each completed sign-in and on the account page),
else the page's.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from authserver import i18n
from authserver.accounts import mail
from authserver.i18n import N_, Text
from authserver.resources import resource_dir

if TYPE_CHECKING:
    from jinja2 import Environment

    from authserver.accounts.models import User
    from authserver.settings import Settings

#: a composed letter, sent when called (after the page's response)
Send = Callable[[], bool]


@dataclass(frozen=True)
class Letter:
    to: str
    subject: str
    text: str
    html: str


@functools.cache
def _environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    environment = Environment(loader=FileSystemLoader(str(resource_dir("templates") / "mail")),
                              autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                              keep_trailing_newline=True, auto_reload=False)
    i18n.install(environment)
    return environment


def brand(settings: Settings) -> dict[str, str]:
    """What a letter shows of the brand: the pages' name, colour, logo and support link
    (:meth:`authserver.branding.Brand.for_mail`: the logo as an absolute URL)."""
    from authserver import branding

    found = branding.from_settings(settings).for_mail(settings.issuer)
    return {"name": found["brand_name"], "colour": found["brand_primary"], "logo": found["brand_logo_url"],
            "support": found["support_href"]}


def compose(settings: Settings, to: str, locale: str, subject: str, paragraphs: list[object], *,
            code: str | None = None, after_code: list[object] | None = None,
            link: tuple[str, str] | None = None, closing: list[object] | None = None) -> Letter:
    """Lay out a letter in ``locale``: the paragraphs (message ids or :class:`Text`), a code
    to type, more paragraphs, a link (path on this server, its text) and closing paragraphs."""

    def words(items: list[object] | None) -> list[str]:
        return [i18n.translate(item, locale) for item in items or []]

    values = {
        **i18n.template_values(locale),
        "brand": brand(settings),
        "issuer": settings.issuer,
        "subject": i18n.translate(subject, locale),
        "paragraphs": words(paragraphs),
        "code": code,
        "after_code": words(after_code),
        "link": (settings.issuer + link[0], i18n.translate(link[1], locale)) if link else None,
        "closing": words(closing),
    }
    environment = _environment()
    return Letter(to, str(values["subject"]), environment.get_template("letter.txt").render(values),
                  environment.get_template("letter.html").render(values))


def _send(settings: Settings, letter: Letter) -> Send:
    return functools.partial(mail.deliver, settings, letter.to, letter.subject, letter.text, html=letter.html)


def _locale(user: User | None, fallback: str) -> str:
    found = getattr(user, "locale", None)
    return found if isinstance(found, str) and found in i18n.LOCALES else fallback


def _when(locale: str) -> str:
    return i18n.datetime(dt.datetime.now(dt.UTC), locale)


EXPIRES = N_("It expires in 15 minutes.")


def signup_code(settings: Settings, to: str, code: str, locale: str) -> Send:
    return _send(settings, compose(
        settings, to, locale, N_("Your verification code"), [N_("Your verification code is:")], code=code,
        after_code=[EXPIRES, N_("If you did not try to create an account, ignore this message.")]))


def signup_taken(settings: Settings, to: str, locale: str) -> Send:
    """To an address that already has an account: no code (the sign-up page answers the same)."""
    return _send(settings, compose(
        settings, to, locale, N_("Your verification code"),
        [N_("Someone tried to create an account with this e-mail address, which already has one."),
         N_("If it was you, sign in or reset your password instead.")],
        link=("/password/reset", N_("Reset your password"))))


def reset_code(settings: Settings, user: User, code: str, locale: str) -> Send:
    locale = _locale(user, locale)
    return _send(settings, compose(
        settings, user.email, locale, N_("Reset your password"), [N_("Your password reset code is:")], code=code,
        after_code=[EXPIRES, N_("If you did not ask to reset your password, ignore this message; "
                                "your password is unchanged.")]))


def new_device(settings: Settings, user: User, device: Text, *, ip: str | None, locale: str = i18n.DEFAULT) -> Send:
    """The account was signed in to on a device it had not used before."""
    locale = _locale(user, locale)
    where = Text(N_("Device: %(device)s"), device=i18n.translate(device, locale))
    return _send(settings, compose(
        settings, user.email, locale, N_("New sign-in to your account"),
        [Text(N_("Your account %(username)s was just signed in to on a new device."), username=user.username),
         where, Text(N_("IP address: %(ip)s"), ip=ip or "?"), Text(N_("Time: %(time)s"), time=_when(locale))],
        closing=[N_("If this was you, there is nothing to do. If not, change your password now and sign out "
                    "the other sessions on your account page.")],
        link=("/account", N_("Go to your account"))))


def mfa_changed(settings: Settings, user: User, *, enabled: bool, locale: str = i18n.DEFAULT,
                by_admin: bool = False) -> Send:
    """Two-step verification was turned on or off for the account (``by_admin``: reset by
    an administrator, after a support check)."""
    locale = _locale(user, locale)
    if by_admin:
        subject = N_("Two-step verification is off")
        first = Text(N_("An administrator turned two-step verification off for your account %(username)s."),
                     username=user.username)
        advice = N_("Sign in with your password and set it up again on your account page. If you did not "
                    "ask for this, change your password now.")
    elif enabled:
        subject = N_("Two-step verification is on")
        first = Text(N_("Two-step verification was turned on for your account %(username)s."),
                     username=user.username)
        advice = N_("If this was not you, change your password now and check your account page.")
    else:
        subject = N_("Two-step verification is off")
        first = Text(N_("Two-step verification was turned off for your account %(username)s."),
                     username=user.username)
        advice = N_("If this was not you, change your password now and turn two-step verification on "
                    "again on your account page.")
    return _send(settings, compose(
        settings, user.email, locale, subject, [first, Text(N_("Time: %(time)s"), time=_when(locale))],
        closing=[advice], link=("/account", N_("Go to your account"))))
