"""Users: search, detail (sessions, consents, MFA state, audit trail), disable and enable."""

from __future__ import annotations

from urllib.parse import quote

from authserver.accounts import mfa as factors
from authserver.accounts import service as accounts
from authserver.accounts.models import User
from authserver.admin.console import listing
from authserver.admin.console.guard import Console, console_page
from authserver.audit import service as audit
from authserver.clients import service as clients
from authserver.consents import service as consents
from authserver.i18n import N_
from authserver.sessions import service as sessions
from authserver.web.pages import NOT_FOUND, ErrorPage, Redirect, Render, Result

SELF_DISABLE = ErrorPage(N_("You cannot disable your own account from the console."), "invalid_request", 400)
MESSAGES = {"disabled": N_("The account is disabled; its sessions and tokens were ended."),
            "enabled": N_("The account is enabled again.")}


def _user(console: Console) -> User | None:
    user_id = console.page.request.path_params["user_id"]
    return accounts.get_user(console.page.db, user_id) if len(user_id) <= 36 and user_id.isprintable() else None


@console_page("users", "read")
def user_list(console: Console) -> Result:
    params = console.page.request.query_params
    rows = accounts.search_users(console.page.db, listing.text(params), offset=listing.offset(params),
                                 limit=listing.PAGE_SIZE)
    return Render("admin/users.html", console.values(
        users=rows.items, q=listing.text(params), pages=listing.links("/admin/users", params, rows.has_more)))


@console_page("users", "read")
def user_detail(console: Console) -> Result:
    db = console.page.db
    user = _user(console)
    if user is None:
        return NOT_FOUND
    granted = []
    for row in consents.for_user(db, user.id) if console.may("consents", "read") else []:
        client = clients.get_client(db, row.client_id)
        granted.append({"client_id": row.client_id, "scope": row.scope, "created_at": row.created_at,
                        "client_name": client.client_name if client else row.client_id})
    trail = audit.search(db, user_id=user.id, limit=20).items if console.may("audit", "read") else None
    return Render("admin/user.html", console.values(
        user=user,
        sessions=sessions.for_user(db, user.id) if console.may("sessions", "read") else None,
        consents=granted if console.may("consents", "read") else None,
        mfa_enabled=factors.confirmed_factor(db, user.id) is not None,
        backup_codes_left=factors.unused_backup_codes(db, user.id),
        events=trail,
        message=MESSAGES.get(console.page.request.query_params.get("m", "")),
    ))


@console_page("users", "write")
def disable(console: Console) -> Result:
    """Disable the account: its sessions end and its tokens are revoked (``accounts.disable_user``)."""
    user = _user(console)
    if user is None:
        return NOT_FOUND
    if user.id == console.actor:
        return SELF_DISABLE
    accounts.disable_user(console.page.db, console.page.ctx.revoked, user, actor=console.actor)
    return Redirect(f"/admin/users/{quote(user.id)}?m=disabled")


@console_page("users", "write")
def enable(console: Console) -> Result:
    user = _user(console)
    if user is None:
        return NOT_FOUND
    accounts.enable_user(console.page.db, user, actor=console.actor)
    return Redirect(f"/admin/users/{quote(user.id)}?m=enabled")
