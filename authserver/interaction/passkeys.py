"""Passkey endpoints the page script calls (``templates/static/passkeys.js``), and the
account page's rename and remove forms.

The options and verification endpoints are ``fetch`` POSTs of an urlencoded form
carrying the session's CSRF token (``@form_page`` checks it) and counted in the
``login`` rate-limit bucket; they answer JSON: the options for
``navigator.credentials``, then ``{"location": …}`` where the script goes next, or
``{"error": …}`` with a message to show. The challenge is kept in the browser
session (:data:`KEY`), bound to it and taken out on first use
(:mod:`authserver.passkeys.service`).

* ``/passkeys/login/*``: passwordless sign-in with a discoverable credential and
  user verification; ``amr = ["hwk", "user", "mfa"]``, ``acr`` phishing-resistant.
* ``/passkeys/mfa/*``: the second factor after a password; ``amr`` gains ``hwk``.
* ``/account/passkeys/*``: register (signed in with the whole authentication, like
  every account page), rename, remove.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from urllib.parse import urlencode

from authserver.accounts import service as accounts
from authserver.audit import service as audit
from authserver.i18n import N_, translate
from authserver.interaction import mfa
from authserver.oauth import authorization
from authserver.passkeys import service as passkeys
from authserver.passkeys.errors import PasskeyError
from authserver.sessions import service as sessions
from authserver.web.pages import Json, Page, Redirect, Result, form_page, with_rid

#: session data key holding the one pending challenge
KEY = "passkey"
#: RFC 8176 §2: ``hwk`` proof of possession of a key held by an authenticator; ``user`` the
#: authenticator's user verification (a PIN or biometric gesture, WebAuthn §6.2.3); ``mfa``
#: because possession plus verification are two factors (NIST SP 800-63B §5.1.9).
AMR_PASSWORDLESS = ["hwk", "user", "mfa"]
UNAVAILABLE_TEXT = N_("Passkeys are not available on this server.")
FAILED = N_("The passkey could not be verified. Try again.")
SIGN_IN_AGAIN = N_("Sign in again.")

account_page = form_page(signed_in=True)
api_page = form_page(rate_limit="login")
account_api = form_page(rate_limit="login", signed_in=True)


def _with_rp(endpoint: Callable[[Page, passkeys.RelyingParty], Result]) -> Callable[[Page], Result]:
    """The endpoint gets the server's relying party; without one (an IP-address issuer:
    WebAuthn needs a domain) it answers 404 ``{"error": …}`` instead."""

    @functools.wraps(endpoint)
    def with_rp(page: Page) -> Result:
        rp = passkeys.RelyingParty.for_issuer(page.ctx.settings.issuer)
        return _unavailable(page) if rp is None else endpoint(page, rp)

    return with_rp


def _keep(page: Page, challenge: passkeys.Challenge) -> None:
    sessions.set_data(page.session, KEY, challenge.to_data())


def _take(page: Page) -> passkeys.Challenge | None:
    """The pending challenge, removed from the session (single use, whatever the outcome)."""
    data = (page.session.data or {}).get(KEY)
    sessions.set_data(page.session, KEY, None)
    return passkeys.Challenge.from_data(data)


def _options(options_json: str) -> Json:
    return Json({"publicKey": json.loads(options_json)})


def _error(page: Page, message: str, status: int = 400, **extra: str) -> Json:
    """``{"error": …}`` in the page's language (the script shows it as it is)."""
    return Json({"error": translate(message, page.locale), **extra}, status)


def _unavailable(page: Page) -> Json:
    return _error(page, UNAVAILABLE_TEXT, 404)


def _refused(page: Page, error: PasskeyError) -> Json:
    return _error(page, error.hint)


def _signed_in_first(page: Page, result: Result) -> Json:
    """A JSON answer for a page result that sends the user elsewhere first."""
    if isinstance(result, Redirect):
        return _error(page, SIGN_IN_AGAIN, 403, location=result.location)
    if isinstance(result, Json):
        return result
    return _error(page, getattr(result, "description", FAILED), 403)


# -- passwordless sign-in --------------------------------------------------------------


@api_page
@_with_rp
def login_options(page: Page, rp: passkeys.RelyingParty) -> Result:
    options, challenge = passkeys.authentication_options(page.db, rp, "login")
    _keep(page, challenge)
    return _options(options)


@api_page
@_with_rp
def login_finish(page: Page, rp: passkeys.RelyingParty) -> Result:
    db = page.db
    try:
        assertion = passkeys.finish_authentication(db, rp, _take(page), page.form.get("credential", ""),
                                                   purpose="login", ip=page.ip)
    except PasskeyError as exc:
        return _refused(page, exc)
    user = accounts.get_user(db, assertion.passkey.user_id)
    if user is None or user.disabled:
        audit.record(db, "login_failed", user_id=assertion.passkey.user_id, ip=page.ip, channel="passkey",
                     reason="disabled")
        return _error(page, FAILED)
    # the password lockout is left as it is: a passkey cannot be guessed, and clearing the
    # counters would give a password guesser a fresh budget
    page.log_in(user.id, amr=list(AMR_PASSWORDLESS), acr=authorization.ACR_PHR)
    audit.record(db, "login_succeeded", user_id=user.id, ip=page.ip, channel="passkey",
                 passkey=assertion.passkey.id)
    return Json({"location": with_rid("/authorize/resume", page.rid) if page.rid else page.return_to()})


# -- second factor ---------------------------------------------------------------------


@api_page
@_with_rp
def mfa_options(page: Page, rp: passkeys.RelyingParty) -> Result:
    c = mfa.challenge(page)
    if not isinstance(c, mfa.Challenge) or not c.passkey:
        return _signed_in_first(page, c) if not isinstance(c, mfa.Challenge) else _error(page, FAILED)
    options, challenge = passkeys.authentication_options(page.db, rp, "mfa", c.user.id)
    _keep(page, challenge)
    return _options(options)


@api_page
@_with_rp
def mfa_finish(page: Page, rp: passkeys.RelyingParty) -> Result:
    c = mfa.challenge(page)
    if not isinstance(c, mfa.Challenge):
        return _signed_in_first(page, c)
    user, db = c.user, page.db
    try:
        assertion = passkeys.finish_authentication(db, rp, _take(page), page.form.get("credential", ""),
                                                   purpose="mfa", user_id=user.id, ip=page.ip)
    except PasskeyError as exc:
        audit.record(db, "mfa_failed", user_id=user.id, ip=page.ip, reason=exc.reason, method="passkey")
        return _refused(page, exc)
    # password and passkey both passed: the failures wrong codes added may go, as after a code
    page.ctx.lockout.register_success(accounts.lockout_key(user, ""))
    audit.record(db, "mfa_succeeded", user_id=user.id, ip=page.ip, method="passkey",
                 passkey=assertion.passkey.id)
    amr = [m for m in (page.session.amr or []) if m != "hwk"] + ["hwk"]
    page.log_in(user.id, amr=amr, acr=authorization.ACR_PHR)
    return Json({"location": mfa.target(page)})


# -- the account page ------------------------------------------------------------------


def _done(key: str) -> Redirect:
    return Redirect(f"/account?{urlencode({'m': key})}#passkeys")


@account_api
@_with_rp
def register_options(page: Page, rp: passkeys.RelyingParty) -> Result:
    try:
        options, challenge = passkeys.registration_options(page.db, rp, page.user)
    except PasskeyError as exc:
        return _refused(page, exc)
    _keep(page, challenge)
    return _options(options)


@account_api
@_with_rp
def register_finish(page: Page, rp: passkeys.RelyingParty) -> Result:
    try:
        passkeys.finish_registration(page.db, rp, page.user, _take(page), page.form.get("credential", ""),
                                     page.form.get("passkey_name", ""), ip=page.ip)
    except PasskeyError as exc:
        return _refused(page, exc)
    return Json({"location": "/account?m=passkey_added#passkeys"})


@account_page
def rename(page: Page) -> Result:
    row = passkeys.get(page.db, page.user.id, page.form.get("passkey", ""))
    if row is not None:
        passkeys.rename(page.db, row, page.form.get("passkey_name", ""), ip=page.ip)
    return _done("passkey_renamed")


@account_page
def remove(page: Page) -> Result:
    row = passkeys.get(page.db, page.user.id, page.form.get("passkey", ""))
    if row is not None:
        passkeys.remove(page.db, row, ip=page.ip)
    return _done("passkey_removed")
