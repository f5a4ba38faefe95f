"""Login page: username or e-mail plus password, then back to the pending request.

"Sign in with a passkey" (and the browser's passkey autofill, conditional
mediation) is served by ``interaction/passkeys.py`` and ``static/passkeys.js``.

Every failure (unknown user, wrong password, locked, disabled) shows the same
text with the same status after the same Argon2 work (NIST SP 800-63B §5.2.2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from authserver.accounts import service as accounts
from authserver.audit import service as audit
from authserver.i18n import N_
from authserver.oauth import authorization
from authserver.passkeys import service as passkeys
from authserver.sessions import service as sessions
from authserver.web.pages import EXPIRED, Page, Redirect, Render, Result, form_page

if TYPE_CHECKING:
    from authserver.context import Context
    from authserver.sessions.models import BrowserSession

FAILED = N_("Invalid username or password.")


def values(ctx: Context, session: BrowserSession, rid: str, *, error: str | None = None,
           login: str | None = None) -> dict[str, object] | None:
    """The login form's values for pending request ``rid`` (none: no pending request);
    ``None`` when that request has expired. The authorization endpoint shows the same
    form itself (``endpoints/authorize.py``)."""
    params = authorization.pending_params(session, rid) if rid else []
    if params is None:
        return None
    data = dict(params)
    client = authorization.cached_client(ctx, data.get("client_id", "")) if data else None
    return {
        "rid": rid,
        "csrf_token": sessions.csrf_token(session),
        "login": login if login is not None else data.get("login_hint", ""),
        "client_name": client.client_name if client else None,
        "error": error,
        "signup_enabled": ctx.settings.signup_enabled,
        "passkeys_available": passkeys.RelyingParty.for_issuer(ctx.settings.issuer) is not None,
    }


def _form(page: Page, error: str | None = None, login: str | None = None) -> Result:
    found = values(page.ctx, page.session, page.rid, error=error, login=login)
    return EXPIRED if found is None else Render("login.html", found)


@form_page()
def login_form(page: Page) -> Result:
    page.ensure_session()
    return _form(page)


@form_page(rate_limit="login")
def login_submit(page: Page) -> Result:
    login = page.form.get("username", "")
    result = accounts.authenticate(page.db, page.ctx, login, page.form.get("password", ""), page.ip)
    if result.user is None:
        return _form(page, FAILED, login)
    # with a second factor, the sign-in completes on the MFA page
    page.log_in(result.user.id, amr=["pwd"], acr=authorization.ACR_PWD, complete=not result.mfa)
    audit.record(page.db, "login_succeeded", user_id=result.user.id, ip=page.ip, channel="login")
    return page.continue_authorization() if page.rid else Redirect(page.return_to())
