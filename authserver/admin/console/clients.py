"""Clients: search, create, edit in place (``client_id`` kept), rotate the secret.

A new secret is shown once: it is sealed into the session (bound to its ``sid``)
for the next page only, as the backup codes are, and never put in a URL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from authserver.admin.console import listing
from authserver.admin.console.guard import Console, console_page
from authserver.audit import service as audit
from authserver.clients import service as clients
from authserver.clients.errors import ClientError
from authserver.clients.models import Client
from authserver.i18n import N_
from authserver.oauth import vocabulary
from authserver.sessions import service as sessions
from authserver.web.pages import NOT_FOUND, Redirect, Render, Result

NEW_SECRET = "admin_client_secret"
MESSAGES = {"saved": N_("The client was saved."), "created": N_("The client was created.")}
FLAGS = ("skip_consent", "require_mfa", "introspect_any", "dpop_bound_access_tokens")


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def metadata_from(form: Mapping[str, str]) -> dict[str, Any]:
    """The client form as :func:`clients.service.update_client` keywords (checkboxes
    are one field per grant type, so the form stays a plain mapping)."""
    return {
        "client_name": form.get("client_name", "")[:200],
        "redirect_uris": _lines(form.get("redirect_uris", "")),
        "post_logout_redirect_uris": _lines(form.get("post_logout_redirect_uris", "")),
        "grant_types": [g for g in vocabulary.GRANT_TYPES if form.get(f"grant_type_{g}")],
        "scope": form.get("scope", ""),
        "token_endpoint_auth_method": form.get("token_endpoint_auth_method", ""),
        **{flag: bool(form.get(flag)) for flag in FLAGS},
    }


def form_values(client: Client | None, submitted: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the client form shows: the submitted values after an error, else the client's."""
    if submitted is not None:
        return dict(submitted)
    if client is None:
        return {"client_name": "", "redirect_uris": [], "post_logout_redirect_uris": [],
                "grant_types": [vocabulary.AUTHORIZATION_CODE, vocabulary.REFRESH_TOKEN],
                "scope": vocabulary.DEFAULT_SCOPE, "token_endpoint_auth_method": vocabulary.DEFAULT_AUTH_METHOD,
                **{flag: False for flag in FLAGS}}
    return {name: getattr(client, name) for name in (
        "client_name", "redirect_uris", "post_logout_redirect_uris", "grant_types", "scope",
        "token_endpoint_auth_method", *FLAGS)}


def _choices() -> dict[str, object]:
    return {"grant_type_choices": vocabulary.GRANT_TYPES, "auth_method_choices": vocabulary.AUTH_METHODS}


def _show_secret_once(console: Console, client_id: str, secret: str) -> Redirect:
    session = console.page.session
    sealed = console.page.ctx.box.encrypt(json.dumps({"client_id": client_id, "secret": secret}).encode(),
                                          session.sid.encode())
    sessions.set_data(session, NEW_SECRET, sealed)
    return Redirect("/admin/clients/secret")


def _client(console: Console) -> Client | None:
    return clients.get_client(console.page.db, console.page.request.path_params["client_id"])


@console_page("clients", "read")
def client_list(console: Console) -> Result:
    params = console.page.request.query_params
    rows = clients.search_clients(console.page.db, listing.text(params), offset=listing.offset(params),
                                  limit=listing.PAGE_SIZE)
    return Render("admin/clients.html", console.values(
        clients=rows.items, q=listing.text(params), pages=listing.links("/admin/clients", params, rows.has_more)))


@console_page("clients", "write")
def new_form(console: Console) -> Result:
    return Render("admin/client_form.html", console.values(client=None, form=form_values(None), **_choices()))


@console_page("clients", "write")
def create(console: Console) -> Result:
    submitted = metadata_from(console.page.form)
    try:
        new = clients.create_client(console.page.db, console.page.ctx.box, **submitted, actor=console.actor)
    except ClientError as exc:
        return Render("admin/client_form.html", console.values(
            client=None, form=submitted, error=str(exc), **_choices()), status=400)
    if new.client_secret is not None:
        return _show_secret_once(console, new.client.client_id, new.client_secret)
    return Redirect(f"/admin/clients/{quote(new.client.client_id)}?m=created")


@console_page("clients", "read")
def client_detail(console: Console) -> Result:
    client = _client(console)
    if client is None:
        return NOT_FOUND
    events = audit.search(console.page.db, client_id=client.client_id, limit=20).items \
        if console.may("audit", "read") else None
    return Render("admin/client.html", console.values(
        client=client, form=form_values(client), events=events,
        message=MESSAGES.get(console.page.request.query_params.get("m", "")), **_choices()))


@console_page("clients", "write")
def update(console: Console) -> Result:
    client = _client(console)
    if client is None:
        return NOT_FOUND
    submitted = metadata_from(console.page.form)
    try:
        result = clients.update_client(console.page.db, console.page.ctx.box, client.client_id,
                                       actor=console.actor, **submitted)
    except ClientError as exc:
        return Render("admin/client.html", console.values(
            client=client, form=submitted, error=str(exc), events=None, **_choices()), status=400)
    if result.client_secret is not None:
        return _show_secret_once(console, client.client_id, result.client_secret)
    return Redirect(f"/admin/clients/{quote(client.client_id)}?m=saved")


@console_page("clients", "write")
def rotate_secret(console: Console) -> Result:
    client = _client(console)
    if client is None:
        return NOT_FOUND
    try:
        secret = clients.rotate_secret(console.page.db, console.page.ctx.box, client.client_id,
                                       revoked=console.page.ctx.revoked, actor=console.actor)
    except ClientError as exc:
        return Render("admin/client.html", console.values(
            client=client, form=form_values(client), error=str(exc), events=None, **_choices()), status=400)
    return _show_secret_once(console, client.client_id, secret)


@console_page("clients", "write")
def secret_once(console: Console) -> Result:
    """The new secret, once: removed from the session as it is shown."""
    session = console.page.session
    sealed = (session.data or {}).get(NEW_SECRET)
    if not sealed:
        return Redirect("/admin/clients")
    sessions.set_data(session, NEW_SECRET, None)
    shown = json.loads(console.page.ctx.box.decrypt(sealed, session.sid.encode()))
    return Render("admin/client_secret.html", console.values(client_id=shown["client_id"], secret=shown["secret"]))
