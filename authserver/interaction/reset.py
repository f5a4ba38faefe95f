"""Password reset by a code mailed to the account's address.

``/password/reset`` answers the same whether or not the address has an
account: an unknown address gets a stored code nobody knows, and no mail.
``/password/reset/confirm`` takes the code and a new password (policy
checked first, so a weak password does not spend a guess), then
:func:`accounts.set_password` sets the new hash, ends every session of the
user, revokes their tokens and clears the account lockout.
"""

from __future__ import annotations

from functools import partial

from authserver.accounts import email_codes, mail
from authserver.accounts import service as accounts
from authserver.accounts.models import EmailCode
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
    letter = (f"Your password reset code is {code}\n\nIt expires in 15 minutes. If you did not ask "
              "to reset your password, ignore this message; your password is unchanged.\n")
    # mailed after the response: its timing must not tell known addresses apart
    return Redirect("/password/reset/confirm",
                    after=partial(mail.deliver, page.ctx.settings, known.email, "Reset your password", letter))


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
        return _confirm_form(page, "The new passwords do not match.")
    try:  # before the code: a weak password must not spend a guess (set_password checks again)
        validate_password(password, username=user.username if user else None, email=pending.email)
    except WeakPasswordError as exc:
        return _confirm_form(page, str(exc))
    outcome, _row = email_codes.check(db, page.ctx.box, row_id, "reset", page.form.get("code", ""))
    if outcome == "wrong":
        return _confirm_form(page, CODE_FAILED)
    if outcome != "ok" or user is None:
        sessions.set_data(session, "reset_code", None)
        return CODE_EXPIRED
    accounts.set_password(db, page.ctx, user, password, ip=page.ip, event="password_reset", unlock=True)
    return Redirect("/password/reset/done")


@form_page()
def done_page(page: Page) -> Result:
    return Render("message.html", {
        "title": "Password changed", "message": "Your password was changed. You can now sign in with it.",
        "link": ("/account", "Sign in")})
