"""The language switcher: a small form on every page (works without JavaScript).

``POST /language`` with ``lang`` and ``next`` sets the ``lang`` cookie and goes back
to ``next``, a path on this server (anything else goes to ``/``: no open redirect).
When ``next`` continues a pending sign-in request (``rid``), the choice is kept with
that request too, so it wins over the relying party's ``ui_locales`` for the rest of
that sign-in (the user said so); later requests start from ``ui_locales`` again.

No CSRF token: the switch only sets a preference (a forged one changes the language
of this browser's pages, nothing else), and the form is on pages without a session.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from authserver import i18n
from authserver.oauth import authorization
from authserver.web.pages import Page, Redirect, Result, form_page


def safe_next(value: str) -> str:
    """``value`` when it is a path on this server, else ``/``."""
    value = value[:2000]
    if value.startswith("/") and not value.startswith(("//", "/\\")) and not any(c in value for c in "\r\n\\"):
        return value
    return "/"


@form_page(csrf="optional")
def switch(page: Page) -> Result:
    target = safe_next(page.form.get("next", ""))
    locale = i18n.first_supported([page.form.get("lang", "")])
    if locale is None:
        return Redirect(target)
    page.set_language(locale)
    rid = parse_qs(urlsplit(target).query).get("rid", [""])[0][:100]
    session = page.loaded
    if rid and authorization.pending_params(session, rid) is not None and session is not None:
        authorization.update_pending(session, rid, lang=locale)
    return Redirect(target)
