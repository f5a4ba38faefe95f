"""The account page: profile, sessions and devices, consents, MFA, passkeys, password.

Every change is a POST carrying the CSRF token and answered with 303 (so a
reload never repeats it). A user with MFA must have done the second factor in
this session (``"otp"`` or ``"hwk"`` in ``amr``) before seeing or changing anything.
Passkeys are registered, renamed and removed in ``interaction/passkeys.py``.
Results are shown with a fixed message key (``?m=``), never reflected text.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from sqlalchemy import select

from authserver import i18n
from authserver.accounts import letters
from authserver.accounts import mfa as factors
from authserver.accounts import service as accounts
from authserver.audit import service as audit
from authserver.clients import service as clients
from authserver.consents import service as consents
from authserver.db import utcnow
from authserver.i18n import N_
from authserver.oauth import authorization
from authserver.passkeys import service as passkeys
from authserver.security import totp
from authserver.security.passwords import WeakPasswordError, normalize
from authserver.sessions import devices
from authserver.sessions import service as sessions
from authserver.sessions.models import BrowserSession
from authserver.tokens import service as tokens
from authserver.web.pages import Page, Redirect, Render, Result, form_page

MESSAGES = {
    "session_revoked": N_("The session was signed out."),
    "others_revoked": N_("All your other sessions were signed out."),
    "consent_revoked": N_("Access was withdrawn and the application's tokens were revoked."),
    "mfa_disabled": N_("Two-step verification is off."),
    "password_changed": N_("Your password was changed and your other sessions were signed out."),
    "bad_code": N_("That code is not valid."),
    "bad_password": N_("Your current password is not correct."),
    "mfa_exists": N_("Two-step verification is already on."),
    "password_mismatch": N_("The new passwords do not match."),
    "passkey_added": N_("Your passkey was added."),
    "passkey_renamed": N_("The passkey was renamed."),
    "passkey_removed": N_("The passkey was removed."),
}
ERRORS = frozenset({"bad_code", "bad_password", "mfa_exists", "password_mismatch"})
#: the field an error is about: marked ``aria-invalid`` and described by the message (WCAG 3.3.1)
ERROR_FIELDS = {"bad_code": "disable-code", "bad_password": "current_password",
                "password_mismatch": "confirm_password", "weak_password": "new_password"}

#: every account page: signed in, with the second factor if the account has one
account_page = form_page(signed_in=True)


@account_page
def overview(page: Page) -> Result:
    db, session, user = page.db, page.session, page.user
    key = page.request.query_params.get("m", "")
    session.last_seen_at = utcnow()
    accounts.remember_locale(user, page.locale)  # the language of this user's mails
    flash = i18n.load((session.data or {}).get("flash_error"))
    if flash:
        sessions.set_data(session, "flash_error", None)
    granted = []
    for row in consents.for_user(db, user.id):
        client = clients.get_client(db, row.client_id)
        granted.append({"client_id": row.client_id, "scope": row.scope,
                        "client_name": client.client_name if client else row.client_id,
                        "created_at": row.created_at})
    return Render("account.html", {
        "csrf_token": page.csrf_token(),
        "user": user,
        "current_sid": session.sid,
        "sessions": sessions.for_user(db, user.id),
        "device_notices": devices.notices(db, user.id),
        "max_devices": page.ctx.settings.max_devices_per_user,
        "consents": granted,
        "mfa_enabled": factors.confirmed_factor(db, user.id) is not None,
        "backup_codes_left": factors.unused_backup_codes(db, user.id),
        "passkeys": passkeys.for_user(db, user.id),
        "passkeys_available": passkeys.RelyingParty.for_issuer(page.ctx.settings.issuer) is not None,
        "message": MESSAGES.get(key) if key not in ERRORS else None,
        "error": flash or (MESSAGES.get(key) if key in ERRORS else None),
        "error_field": ERROR_FIELDS.get("weak_password" if flash else key),
    })


def _done(key: str, anchor: str = "") -> Redirect:
    return Redirect(f"/account?{urlencode({'m': key})}{anchor}")


@account_page
def revoke_session(page: Page) -> Result:
    db, user = page.db, page.user
    row = db.scalar(select(BrowserSession).where(BrowserSession.sid == page.form.get("sid", ""),
                                                 BrowserSession.user_id == user.id))
    if row is None:
        return _done("session_revoked", "#sessions")
    current = row.id == page.session.id
    audit.record(db, "session_revoked", user_id=user.id, ip=page.ip, current=current)
    sessions.end(db, row)
    return Redirect("/login") if current else _done("session_revoked", "#sessions")


@account_page
def revoke_other_sessions(page: Page) -> Result:
    count = sessions.end_all_for_user(page.db, page.user.id, keep=page.session.id)
    # "Sign out everywhere": the applications' tokens end too (this browser session stays).
    tokens.invalidate_subject(page.db, page.ctx.revoked, page.user.id)
    audit.record(page.db, "session_revoked", user_id=page.user.id, ip=page.ip, others=count)
    return _done("others_revoked", "#sessions")


@account_page
def revoke_consent(page: Page) -> Result:
    """Withdraw consent and revoke the user's refresh-token families at that client
    (and the access tokens they issued)."""
    client_id = page.form.get("client_id", "")
    consents.revoke(page.db, page.user.id, client_id, page.ip)
    tokens.revoke_user_families(page.db, page.ctx.revoked, page.user.id, client_id)
    return _done("consent_revoked", "#consents")


@account_page
def start_enrolment(page: Page) -> Result:
    try:
        factors.start_enrolment(page.db, page.ctx.box, page.user.id)
    except ValueError:
        return _done("mfa_exists", "#mfa")
    return Redirect("/account/mfa/enrol")


@account_page
def confirm_enrolment(page: Page) -> Result:
    user = page.user
    codes = factors.confirm_enrolment(page.db, page.ctx.box, user.id, page.form.get("code", ""))
    if codes is None:
        return Redirect("/account/mfa/enrol?error=1")
    audit.record(page.db, "mfa_enrolled", user_id=user.id, ip=page.ip)
    page.after(letters.mfa_changed(page.ctx.settings, user, enabled=True, locale=page.locale))
    # The code proved the factor: this session now counts as MFA (new id, as at login).
    _show_once(page, page.log_in(user.id, amr=["pwd", "otp"], acr=authorization.ACR_MFA), codes)
    return Redirect("/account/mfa/backup-codes")


@account_page
def disable_mfa(page: Page) -> Result:
    ctx, user, ip = page.ctx, page.user, page.ip
    key = accounts.lockout_key(user, "")
    locked = ctx.lockout.check(key, ip)
    if locked or factors.verify(page.db, ctx.box, user.id, page.form.get("code", "")) is None:
        if not locked:
            ctx.lockout.register_failure(key, ip)
        audit.record(page.db, "mfa_failed", user_id=user.id, ip=ip, channel="disable")
        return _done("bad_code", "#mfa")
    factors.disable(page.db, user.id)
    audit.record(page.db, "mfa_disabled", user_id=user.id, ip=ip)
    page.after(letters.mfa_changed(page.ctx.settings, user, enabled=False, locale=page.locale))
    return _done("mfa_disabled", "#mfa")


@account_page
def change_password(page: Page) -> Result:
    ctx, user, ip = page.ctx, page.user, page.ip
    key = accounts.lockout_key(user, "")
    current = normalize(page.form.get("current_password", ""))
    locked = ctx.lockout.check(key, ip)
    if locked or not ctx.passwords.verify(user.password_hash, current):
        if not locked:
            ctx.lockout.register_failure(key, ip)
        audit.record(page.db, "login_failed", user_id=user.id, ip=ip, channel="password_change",
                     reason="bad_credentials")
        return _done("bad_password", "#password")
    new = page.form.get("new_password", "")
    if new != page.form.get("confirm_password", new):
        return _done("password_mismatch", "#password")
    try:
        accounts.set_password(page.db, ctx, user, new, ip=ip, keep_session=page.session.id)
    except WeakPasswordError as exc:
        # the policy's own words (no user input), kept translatable
        sessions.set_data(page.session, "flash_error", i18n.dump(exc.hint))
        return Redirect("/account#password")
    return _done("password_changed", "#password")


@account_page
def enrol_page(page: Page) -> Result:
    secret = factors.pending_secret(page.db, page.ctx.box, page.user.id)
    if secret is None:
        return Redirect("/account#mfa")
    uri = totp.provisioning_uri(secret, page.user.email, page.ctx.settings.issuer.split("://", 1)[1])
    return Render("mfa_enrol.html", {
        "csrf_token": page.csrf_token(), "qr_svg": totp.qr_svg(uri),
        "secret": " ".join(secret[i:i + 4] for i in range(0, len(secret), 4)),
        "error": N_("That code is not valid. Check the time on your phone and try again.")
        if page.request.query_params.get("error") else None})


@account_page
def backup_codes_page(page: Page) -> Result:
    """The backup codes, once: they are removed from the session as they are shown."""
    session = page.session
    sealed = (session.data or {}).get("backup_codes")
    if not sealed:
        return Redirect("/account#mfa")
    sessions.set_data(session, "backup_codes", None)
    return Render("backup_codes.html", {"codes": json.loads(page.ctx.box.decrypt(sealed, session.sid.encode()))})


@account_page
def regenerate_backup_codes(page: Page) -> Result:
    if factors.confirmed_factor(page.db, page.user.id) is None:
        return Redirect("/account#mfa")
    codes = factors.new_backup_codes(page.db, page.ctx.box, page.user.id)
    audit.record(page.db, "mfa_enrolled", user_id=page.user.id, ip=page.ip, backup_codes="regenerated")
    _show_once(page, page.session, codes)
    return Redirect("/account/mfa/backup-codes")


def _show_once(page: Page, session: BrowserSession, codes: list[str]) -> None:
    """Keep the codes for the next page only, sealed: never stored in clear."""
    sealed = page.ctx.box.encrypt(json.dumps(codes).encode(), session.sid.encode())
    sessions.set_data(session, "backup_codes", sealed)
