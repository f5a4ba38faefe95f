"""Consent page (OIDC Core §3.1.2.4): the requested scopes in words; the decision is remembered
per user and client.

Only a session with the whole authentication the pending request needs (the second factor
included) may see or answer it: the page is ``signed_in`` for that request's ``rid``, so a
password alone cannot grant consent in the name of an MFA user.
"""

from __future__ import annotations

from authserver.clients.models import Client
from authserver.consents import service as consents
from authserver.i18n import N_, Text
from authserver.oauth import authorization, device, vocabulary
from authserver.web.pages import EXPIRED, Page, Render, Result, form_page


def describe(scope: str) -> str:
    """The scope in words (a message id, or a :class:`Text` naming an unknown scope)."""
    known = vocabulary.SCOPE_DESCRIPTIONS.get(scope) or vocabulary.API_SCOPE_DESCRIPTIONS.get(scope)
    return known or Text(N_("Access \u201c%(scope)s\u201d"), scope=scope)


def _requested(page: Page) -> tuple[Client, list[str]] | None:
    """The client and the scopes it asks for (those it may have; all of them when
    none is asked for), while the signed-in user's request is pending."""
    params = authorization.pending_params(page.session, page.rid)
    if params is None:
        return None
    data = dict(params)
    client = authorization.cached_client(page.ctx, data.get("client_id", ""))
    if client is None:
        return None
    allowed = client.scope.split()
    requested = [s for s in dict.fromkeys(data.get("scope", "").split()) if s in allowed] or allowed
    return client, requested


consent_page = form_page(signed_in=True)


@consent_page
def consent_form(page: Page) -> Result:
    found = _requested(page)
    pending_device = device.pending_device(page.session, page.rid)  # RFC 8628 §5.4: name the device's code
    return EXPIRED if found is None else Render("consent.html", {
        "rid": page.rid, "csrf_token": page.csrf_token(), "client_name": found[0].client_name,
        "scopes": [(s, describe(s)) for s in found[1]],
        "device_user_code": pending_device.get("user_code") if pending_device else None})


@consent_page
def consent_submit(page: Page) -> Result:
    found = _requested(page)
    if found is None:
        return EXPIRED
    client, scopes = found
    session = page.session
    if page.form.get("decision") == "allow":
        consents.grant(page.db, page.user.id, client.client_id, scopes, page.ip)
        authorization.update_pending(session, page.rid, consented=True)
    else:
        authorization.update_pending(session, page.rid, denied=True)
    return page.continue_authorization()
