"""MFA challenge after the password: a TOTP code, a backup code, or a passkey.

Reached from the authorization pipeline (``check_mfa``) or from ``/account``.
Wrong codes count towards the account lockout like wrong passwords (NIST SP
800-63B §5.2.2: the limit applies to every authenticator). Success replaces
the session id (session fixation) and records ``amr = ["pwd", "otp"]``
(RFC 8176 §2) and the MFA ``acr``; a passkey records ``hwk`` and the
phishing-resistant ``acr`` (``interaction/passkeys.py``).

When the pending request's ``acr_values`` asks for phishing-resistant
authentication only a passkey is offered. When the client or ``acr_values``
demands MFA but the user has no factor, the page explains how to enrol from
the account page instead of failing silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from authserver.accounts import mfa as factors
from authserver.accounts import service as accounts
from authserver.accounts.models import User
from authserver.audit import service as audit
from authserver.i18n import N_
from authserver.oauth import authorization
from authserver.oauth.vocabulary import AMR_SECOND_FACTORS
from authserver.passkeys import service as passkeys
from authserver.web.pages import ErrorPage, Page, Redirect, Render, Result, form_page, with_rid

FAILED = N_("That code is not valid. Try again with a new code.")
PASSKEY_ONLY = N_("This application asks you to confirm with a passkey.")
NO_FACTOR = ErrorPage(N_("This application requires two-step verification, but your account has none yet. "
                         "Set up an authenticator app on your account page, then sign in to the application "
                         "again."), "access_denied", 403)
NO_PASSKEY = ErrorPage(N_("This application requires a passkey, but your account has none yet. "
                          "Add a passkey on your account page, then sign in to the application again."),
                       "access_denied", 403)


def target(page: Page) -> str:
    return with_rid("/authorize/resume", page.rid) if page.rid else page.return_to()


@dataclass(frozen=True)
class Challenge:
    """The user to challenge and the factors the page offers."""

    user: User
    totp: bool
    passkey: bool
    passkey_only: bool


def passkey_only(page: Page) -> bool:
    """The pending request asks for phishing-resistant authentication (a passkey)."""
    params = dict(authorization.pending_params(page.loaded, page.rid) or []) if page.rid else {}
    return authorization.passkey_required(params.get("acr_values", ""))


def challenge(page: Page) -> Challenge | Result:
    """The user to challenge, or where to go instead: login (no password step yet),
    onwards (already done) or the no-factor page."""
    session = page.loaded
    user = accounts.get_user(page.db, session.user_id) if session is not None else None
    amr = set(session.amr or []) if session is not None else set()
    if session is None or user is None or user.disabled or "pwd" not in amr:
        return Redirect(with_rid("/login", page.rid))
    only = passkey_only(page)
    if ("hwk" in amr) if only else bool(amr & AMR_SECOND_FACTORS):
        return Redirect(target(page))
    totp = factors.confirmed_factor(page.db, user.id) is not None
    passkey = passkeys.has_passkey(page.db, user.id)
    if only and not passkey:
        return NO_PASSKEY
    if not totp and not passkey:
        return NO_FACTOR
    return Challenge(user, totp and not only, passkey, only)


def _form(page: Page, c: Challenge, error: str | None = None) -> Render:
    return Render("mfa.html", {"rid": page.rid, "csrf_token": page.csrf_token(), "error": error,
                               "totp": c.totp, "passkey": c.passkey, "passkey_only": c.passkey_only,
                               "passkeys_available": passkeys.RelyingParty.for_issuer(page.ctx.settings.issuer)
                               is not None})


@form_page()
def mfa_form(page: Page) -> Result:
    c = challenge(page)
    return c if not isinstance(c, Challenge) else _form(page, c)


@form_page(rate_limit="login")
def mfa_submit(page: Page) -> Result:
    c = challenge(page)
    if not isinstance(c, Challenge):
        return c
    if not c.totp:  # a code proves nothing this request accepts: spend none
        return _form(page, c, PASSKEY_ONLY if c.passkey_only else None)
    user = c.user
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
        return _form(page, c, FAILED)
    ctx.lockout.register_success(key)
    if used == "backup":
        audit.record(db, "backup_code_used", user_id=user.id, ip=ip,
                     remaining=factors.unused_backup_codes(db, user.id))
    audit.record(db, "mfa_succeeded", user_id=user.id, ip=ip, method=used)
    page.log_in(user.id, amr=["pwd", "otp"], acr=authorization.ACR_MFA)
    return Redirect(target(page))
