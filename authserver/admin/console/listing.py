"""Search text and page numbers from the query string, and the links between pages."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

PAGE_SIZE = 25


def page_number(params: Mapping[str, str]) -> int:
    raw = params.get("page", "1")
    return max(1, min(int(raw), 100_000)) if raw.isdigit() and len(raw) < 7 else 1


def offset(params: Mapping[str, str], size: int = PAGE_SIZE) -> int:
    return (page_number(params) - 1) * size


def text(params: Mapping[str, str], name: str = "q") -> str:
    """A search field, trimmed, without control characters (a NUL never reaches the database)."""
    return "".join(c for c in params.get(name, "") if c.isprintable()).strip()[:200]


def links(path: str, params: Mapping[str, str], has_more: bool) -> dict[str, str | None]:
    """``previous`` and ``next`` page URLs keeping the other query parameters (None: no such page)."""
    current = page_number(params)
    kept = {k: v for k, v in params.items() if k != "page" and v}

    def at(number: int) -> str:
        return f"{path}?{urlencode({**kept, 'page': str(number)})}"

    return {"previous": at(current - 1) if current > 1 else None,
            "next": at(current + 1) if has_more else None,
            "page": str(current)}
