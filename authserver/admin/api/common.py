"""What the resource modules share: pagination, timestamps, permission names."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from authserver.admin.api.schema import Schema, integer, text
from authserver.db import Window
from authserver.roles.permissions import READ, WRITE, admin_permission

T = TypeVar("T")

DEFAULT_LIMIT: Final = 50
PAGE: Final[dict[str, Schema]] = {
    "limit": integer(1, 200, description=f"page size (default {DEFAULT_LIMIT})"),
    "offset": integer(0, 1_000_000, description="how many items to skip (default 0)"),
}
SEARCH: Final[dict[str, Schema]] = {"q": text(100, description="part of the name or identifiers")}
#: a path id that is a string (user ``sub``, ``client_id``, session ``sid``)
STRING_ID: Final = text(64, min_length=1)
NUMBER_ID: Final = integer(1)


def read(resource: str) -> str:
    return admin_permission(resource, READ)


def write(resource: str) -> str:
    return admin_permission(resource, WRITE)


def limit_offset(query: Mapping[str, Any]) -> tuple[int, int]:
    return int(query.get("limit", DEFAULT_LIMIT)), int(query.get("offset", 0))


def page(fetch: Callable[[int, int], Window[T]], query: Mapping[str, Any],
         render: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    """One page: ``fetch(offset, limit)``; ``next_offset`` is null on the last page."""
    limit, offset = limit_offset(query)
    found = fetch(offset, limit)
    return {"items": [render(r) for r in found.items],
            "next_offset": found.offset + found.limit if found.has_more else None}


def timestamp(value: dt.datetime | None) -> int | None:
    """Seconds since the epoch (RFC 7519 §2 NumericDate), as the CLI's ``--json`` prints."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp())


def stamp(value: dt.datetime) -> int:
    result = timestamp(value)
    assert result is not None
    return result
