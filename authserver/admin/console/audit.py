"""The audit log: filters (user, client, kind, time) and pagination, newest first."""

from __future__ import annotations

import datetime as dt

from authserver.accounts import service as accounts
from authserver.admin.console import listing
from authserver.admin.console.guard import Console, console_page
from authserver.audit import service as audit
from authserver.web.pages import Render, Result

PAGE_SIZE = 50


def _day(value: str) -> dt.datetime | None:
    """A ``YYYY-MM-DD`` (what ``<input type=date>`` sends) as midnight UTC; None when absent or malformed."""
    try:
        return dt.datetime.strptime(value[:10], "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


@console_page("audit", "read")
def event_list(console: Console) -> Result:
    db, params = console.page.db, console.page.request.query_params
    user_text, client_id = listing.text(params, "user"), listing.text(params, "client")
    event = params.get("event", "")
    since, until = _day(params.get("since", "")), _day(params.get("until", ""))
    user = None
    if user_text:
        user = accounts.get_user(db, user_text[:36]) or accounts.find_by_login(db, user_text)
    unknown_user = bool(user_text) and user is None
    rows = audit.search(
        db, user_id=user.id if user else None, client_id=client_id or None,
        event=event if event in audit.EVENTS else None, since=since,
        until=until + dt.timedelta(days=1) if until else None,  # the whole "until" day
        offset=listing.offset(params, PAGE_SIZE), limit=PAGE_SIZE)
    return Render("admin/audit.html", console.values(
        events=[] if unknown_user else rows.items, unknown_user=unknown_user,
        filters={"user": user_text, "client": client_id, "event": event,
                 "since": since.date().isoformat() if since else "",
                 "until": until.date().isoformat() if until else ""},
        kinds=sorted(audit.EVENTS),
        pages=listing.links("/admin/audit", params, rows.has_more) if not unknown_user else {"page": "1"}))
