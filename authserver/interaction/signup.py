"""Sign-up with an e-mail verification code (only when ``AUTHSERVER_SIGNUP_ENABLED``).

``/signup`` checks the form and the password policy, hashes the password and
keeps the pending account in an :class:`EmailCode` row (never the password
itself), then mails the code. ``/signup/verify`` creates the user from it and
signs them in. An address that already has an account gets a notice instead
of a code, and the page answers exactly as for a new address, so the form
does not reveal which addresses are registered (usernames are public anyway).
"""

from __future__ import annotations

from functools import partial

from authserver.accounts import email_codes, letters
from authserver.accounts import service as accounts
from authserver.accounts.errors import AccountError
from authserver.i18n import N_
from authserver.oauth import authorization
from authserver.security.passwords import WeakPasswordError
from authserver.sessions import service as sessions
from authserver.settings import Settings
from authserver.web.pages import ErrorPage, Page, Redirect, Render, Result, form_page, with_rid

CODE_FAILED = N_("That code is not valid.")
CODE_EXPIRED = ErrorPage(N_("This code has expired or was tried too often. Start again to get a new one."))
TAKEN = ErrorPage(N_("That username or e-mail address was registered meanwhile. Start again."))
DISABLED = ErrorPage(N_("Sign-up is not available on this server."), "not_found", 404)


def _enabled(settings: Settings) -> bool:
    return settings.signup_enabled


signup_page = partial(form_page, enabled=_enabled, disabled=DISABLED)


@signup_page()
def signup_form(page: Page) -> Result:
    page.ensure_session()
    return Render("signup.html", {"csrf_token": page.csrf_token(), "rid": page.rid})


@signup_page(rate_limit="registration")
def signup_submit(page: Page) -> Result:
    form = page.form
    try:
        checked = accounts.start_signup(page.db, page.ctx, username=form.get("username", ""),
                                        email=form.get("email", ""), password=form.get("password", ""),
                                        locale=page.locale)
    except (AccountError, WeakPasswordError) as exc:
        return Render("signup.html", {"csrf_token": page.csrf_token(), "rid": page.rid, "error": exc.hint,
                                      "username": form.get("username", "")[:150],
                                      "email": form.get("email", "")[:320]})
    row, code = email_codes.issue(page.db, page.ctx.box, "signup", checked.email, pending=checked.pending(),
                                  deliverable=not checked.email_taken)
    sessions.set_data(page.session, "signup_code", row.id)
    if checked.email_taken:
        letter = letters.signup_taken(page.ctx.settings, checked.email, page.locale)
    else:
        letter = letters.signup_code(page.ctx.settings, checked.email, code, page.locale)
    # mailed after the response: its timing must not tell taken addresses apart
    return Redirect(with_rid("/signup/verify", page.rid), after=letter)


def _code_form(page: Page, error: str | None = None) -> Render:
    return Render("email_code.html", {"csrf_token": page.csrf_token(), "rid": page.rid, "error": error,
                                      "action": "/signup/verify", "title": N_("Check your e-mail")})


@signup_page()
def verify_form(page: Page) -> Result:
    if page.loaded is None or not (page.loaded.data or {}).get("signup_code"):
        return Redirect(with_rid("/signup", page.rid))
    return _code_form(page)


@signup_page()
def verify_submit(page: Page) -> Result:
    session = page.session
    outcome, row = email_codes.check(page.db, page.ctx.box, (session.data or {}).get("signup_code"), "signup",
                                     page.form.get("code", ""))
    if outcome == "wrong":
        return _code_form(page, CODE_FAILED)
    if outcome != "ok" or row is None:
        sessions.set_data(session, "signup_code", None)
        return CODE_EXPIRED
    user = accounts.complete_signup(page.db, row.pending or {}, ip=page.ip)
    if user is None:
        sessions.set_data(session, "signup_code", None)
        return TAKEN
    row.pending = None
    new = page.log_in(user.id, amr=["pwd"], acr=authorization.ACR_PWD)
    sessions.set_data(new, "signup_code", None)
    return Redirect(with_rid("/authorize/resume", page.rid) if page.rid else "/account")
