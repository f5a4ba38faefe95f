"""MFA challenge after the password: a TOTP code or a backup code.

Reached from the authorization pipeline (``check_mfa``) or from ``/account``.
Wrong codes count towards the account lockout like wrong passwords (NIST SP
800-63B §5.2.2: the limit applies to every authenticator). Success replaces
the session id (session fixation) and records ``amr = ["pwd", "otp"]``
(RFC 8176 §2) and the MFA ``acr``.

When the client or ``acr_values`` demands MFA but the user has no factor, the
page explains how to enrol from the account page instead of failing silently.
"""

from __future__ import annotations

from authserver.accounts import mfa as factors
from authserver.accounts import service as accounts
from authserver.accounts.models import User
from authserver.audit import service as audit
from authserver.oauth import authorization
from authserver.web.pages import ErrorPage, Page, Redirect, Render, Result, form_page, with_rid

FAILED = "That code is not valid. Try again with a new code."
NO_FACTOR = ErrorPage("This application requires two-step verification, but your account has none yet. "
                      "Set up an authenticator app on your account page, then sign in to the application "
                      "again.", "access_denied", 403)


def onwards(page: Page) -> Result:
    """The pending request continues (the pipeline decides where), else the page that sent us."""
    return page.continue_authorization() if page.rid else Redirect(page.return_to())


def _challenge(page: Page) -> User | Result:
    """The user to challenge, or where to go instead: login (no password step yet),
    onwards (already done) or the no-factor page."""
    session = page.loaded
    user = accounts.get_user(page.db, session.user_id) if session is not None else None
    if session is None or user is None or user.disabled or "pwd" not in (session.amr or []):
        return Redirect(with_rid("/login", page.rid))
    if "otp" in (session.amr or []):
        return onwards(page)
    if factors.confirmed_factor(page.db, user.id) is None:
        return NO_FACTOR
    return user


def _form(page: Page, error: str | None = None) -> Render:
    return Render("mfa.html", {"rid": page.rid, "csrf_token": page.csrf_token(), "error": error})


@form_page()
def mfa_form(page: Page) -> Result:
    user = _challenge(page)
    return user if not isinstance(user, User) else _form(page)


@form_page(rate_limit="login")
def mfa_submit(page: Page) -> Result:
    user = _challenge(page)
    if not isinstance(user, User):
        return user
    ctx, db, ip = page.ctx, page.db, page.ip
    key = accounts.lockout_key(user, "")
    # A locked account spends no code: a lock must not be a free oracle.
    locked = ctx.lockout.check(key, ip)
    used = None if locked else factors.verify(db, ctx.box, user.id, page.form.get("code", ""))
    if used is None:
        # like authenticate(): tries during a lock are refused but do not extend it
        lock = 0 if locked else ctx.lockout.register_failure(key, ip)
        audit.record(db, "mfa_failed", user_id=user.id, ip=ip, reason="locked" if locked else "bad_code")
        if lock:
            audit.record(db, "account_locked", user_id=user.id, ip=ip, seconds=lock, channel="mfa")
        return _form(page, FAILED)
    ctx.lockout.register_success(key)
    if used == "backup":
        audit.record(db, "backup_code_used", user_id=user.id, ip=ip,
                     remaining=factors.unused_backup_codes(db, user.id))
    audit.record(db, "mfa_succeeded", user_id=user.id, ip=ip, method=used)
    page.log_in(user.id, amr=["pwd", "otp"], acr=authorization.ACR_MFA)
    return onwards(page)
