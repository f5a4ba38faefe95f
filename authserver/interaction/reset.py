"""Password reset by a code mailed to the account's address.

``/password/reset`` answers the same whether or not the address has an
account: an unknown address gets a stored code nobody knows, and no mail.
``/password/reset/confirm`` takes the code and a new password. The parts of
the policy that do not depend on the account (length, common passwords, the
typed e-mail) are checked first, so such a weak password does not spend a
guess; then the code, spending an attempt; only then the rule against the
account's username, so that rule cannot tell a stranger whether the address
has an account (docs/decisions.md, "Password reset"). Then
:func:`accounts.set_password` sets the new hash, ends every session of the
user, revokes their tokens and clears the account lockout.
"""

from __future__ import annotations

from authserver.accounts import email_codes, letters
from authserver.accounts import service as accounts
from authserver.accounts.models import EmailCode
from authserver.i18n import N_
from authserver.interaction.signup import CODE_EXPIRED, CODE_FAILED
from authserver.security.passwords import WeakPasswordError, validate_password
from authserver.sessions import service as sessions
from authserver.web.pages import Page, Redirect, Render, Result, form_page


@form_page()
def reset_form(page: Page) -> Result:
    page.ensure_session()
    return Render("reset.html", {"csrf_token": page.csrf_token()})


@form_page(rate_limit="registration")
def reset_submit(page: Page) -> Result:
    email = accounts.normalize_login(page.form.get("email", ""))[:320]
    user = accounts.find_by_login(page.db, email) if "@" in email else None
    known = user if user is not None and not user.disabled else None
    row, code = email_codes.issue(page.db, page.ctx.box, "reset", email, user_id=known.id if known else None,
                                  deliverable=known is not None)
    sessions.set_data(page.session, "reset_code", row.id)
    if known is None:
        return Redirect("/password/reset/confirm")
    # mailed after the response: its timing must not tell known addresses apart
    return Redirect("/password/reset/confirm", after=letters.reset_code(page.ctx.settings, known, code, page.locale))


def _confirm_form(page: Page, error: str | None = None) -> Render:
    return Render("reset_confirm.html", {"csrf_token": page.csrf_token(), "error": error})


@form_page()
def confirm_form(page: Page) -> Result:
    if page.loaded is None or not (page.loaded.data or {}).get("reset_code"):
        return Redirect("/password/reset")
    return _confirm_form(page)


@form_page()
def confirm_submit(page: Page) -> Result:
    session, db = page.session, page.db
    row_id = (session.data or {}).get("reset_code")
    pending = db.get(EmailCode, row_id) if isinstance(row_id, int) else None
    if pending is None:
        return CODE_EXPIRED
    user = accounts.get_user(db, pending.user_id)
    password = page.form.get("new_password", "")
    if password != page.form.get("confirm_password", password):
        return _confirm_form(page, N_("The new passwords do not match."))
    try:  # what the visitor typed only: the same for every address
        validate_password(password, email=pending.email)
    except WeakPasswordError as exc:
        return _confirm_form(page, exc.hint)
    outcome, row = email_codes.verify(db, page.ctx.box, row_id, "reset", page.form.get("code", ""))
    if outcome == "wrong":
        return _confirm_form(page, CODE_FAILED)
    if outcome != "ok" or row is None or user is None:
        sessions.set_data(session, "reset_code", None)
        return CODE_EXPIRED
    try:  # against the account only now, after a right code: it tells the account's username apart
        validate_password(password, username=user.username, email=user.email)
    except WeakPasswordError as exc:
        return _confirm_form(page, exc.hint)
    if not email_codes.claim(db, row):
        return CODE_EXPIRED
    accounts.set_password(db, page.ctx, user, password, ip=page.ip, event="password_reset", unlock=True)
    return Redirect("/password/reset/done")


@form_page()
def done_page(page: Page) -> Result:
    return Render("message.html", {
        "title": N_("Password changed"), "message": N_("Your password was changed. You can now sign in with it."),
        "link": ("/account", N_("Sign in"))})
