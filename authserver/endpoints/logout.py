"""RP-Initiated Logout 1.0 (``end_session_endpoint``), GET and POST.

Redirects only to a ``post_logout_redirect_uri`` registered for the client
named by a valid ``id_token_hint`` (or ``client_id``, which must agree with
it); anything doubtful gets a page, never a redirect (§2, §3). When the hint
names the session's user the session ends at once; otherwise the user is
asked to confirm (§2: the OP SHOULD ask).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from authlib.common.urls import add_params_to_uri
from sqlalchemy.orm import Session
from starlette.routing import Route

from authserver.audit import service as audit
from authserver.clients import service as clients
from authserver.i18n import N_
from authserver.sessions import service as sessions
from authserver.web.pages import ErrorPage, Page, Redirect, Render, Result, form_page

if TYPE_CHECKING:
    from authserver.context import Context

PARAMS = ("id_token_hint", "post_logout_redirect_uri", "state", "client_id", "ui_locales", "logout_hint")


def _validate(ctx: Context, db: Session, params: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    """Returns ``(error, redirect_to, hint_sub)``."""
    hint = params.get("id_token_hint")
    claims = ctx.oauth.token_issuer.verify_id_token_hint(hint) if hint else None
    if hint and claims is None:
        return N_("The id_token_hint is not an ID token issued by this server."), None, None
    aud = claims.get("aud") if claims else None
    hint_client = aud if isinstance(aud, str) else (aud[0] if isinstance(aud, list) and len(aud) == 1 else None)
    client_id = params.get("client_id") or hint_client
    if params.get("client_id") and hint_client and params["client_id"] != hint_client:
        return N_("client_id does not match the id_token_hint."), None, None
    target = params.get("post_logout_redirect_uri")
    if target:
        if claims is None:
            return N_("A post_logout_redirect_uri needs a valid id_token_hint."), None, None
        client = clients.get_client(db, client_id or "")
        if client is None or target not in client.post_logout_redirect_uris:
            return N_("The post_logout_redirect_uri is not registered for this client."), None, None
        if params.get("state"):
            target = add_params_to_uri(target, [("state", params["state"])])
    return None, target, claims["sub"] if claims else None


@form_page(csrf="optional")  # §2: the RP may POST here; our confirmation form carries the token
def logout(page: Page) -> Result:
    params = {k: v for k, v in page.params.items() if k in PARAMS or k in ("csrf_token", "confirm")}
    error, target, hint_sub = _validate(page.ctx, page.db, params)
    if error:
        return ErrorPage(error)
    session = page.loaded
    if session is not None and session.user_id:
        # only a confirmation sent from our own form (CSRF-checked) counts as the user's answer
        if page.csrf_ok and params.get("confirm") == "no":
            return Render("logged_out.html", {"kept": True})
        confirmed = page.csrf_ok and params.get("confirm") == "yes"
        if not confirmed and hint_sub != session.user_id:
            return Render("logout.html", {"csrf_token": page.csrf_token(),
                                          "params": {k: v for k, v in params.items() if k in PARAMS}})
        audit.record(page.db, "logout", user_id=session.user_id, ip=page.ip)
        sessions.end(page.db, session)
    page.clear_cookie()
    return Redirect(target) if target else Render("logged_out.html")


routes = [Route("/logout", logout, methods=["GET", "POST"])]
