"""Signing keys and their state; rotation (docs/decisions.md, "Rotation publishes before it signs")."""

from __future__ import annotations

import datetime as dt
from typing import Final

from authserver.admin.console.guard import Console, console_page
from authserver.keys import service as keys_service
from authserver.web.pages import Redirect, Render, Result

#: the key store's status, in the words of the console: the key that will sign next,
#: the one signing now, one still published while its tokens live, one no longer used
STATES: Final = {"pending": "next", "active": "active", "published": "retiring", "retired": "retired"}


def _utc(seconds: int | None) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if seconds else ""


@console_page("keys", "read")
def key_list(console: Console) -> Result:
    keys = console.page.ctx.keys.keys()
    return Render("admin/keys.html", console.values(
        keys=[{"kid": k.kid, "state": STATES[k.status], "created_at": _utc(k.created_at),
               "activates_at": _utc(k.activates_at), "retires_at": _utc(k.retires_at)} for k in reversed(keys)],
        rotated=console.page.request.query_params.get("m") == "rotated"))


@console_page("keys", "write")
def rotate(console: Console) -> Result:
    """Add a key, published now, signing after ``KEY_ACTIVATION_DELAY``."""
    keys_service.rotate(console.page.db, console.page.ctx.keys, delay=None, actor=console.actor)
    return Redirect("/admin/keys?m=rotated")
