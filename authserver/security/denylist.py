"""The admin-managed IP/CIDR deny list: the rules every surface (CLI, admin API) calls.

:mod:`authserver.security.denylist_middleware` enforces the list; this module
changes it. Entries are stored in canonical form (``203.0.113.7/32``), so the
same network cannot be listed twice under two spellings.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from authserver.audit import service as audit
from authserver.errors import AppError
from authserver.security.models import IpDenyEntry
from authserver.security.network import parse_cidr

MAX_REASON_LENGTH = 200  # ip_deny_entries.reason


class DenyListError(AppError):
    """An invalid address or network, a duplicate, or an unknown entry; the message is safe to show."""

    status_code = 400
    error = "invalid_request"


def canonical(cidr: str) -> str:
    """The stored spelling of an address or network; raises :class:`DenyListError`."""
    try:
        return parse_cidr(cidr)
    except ValueError as exc:
        raise DenyListError(str(exc)) from None


def add_entry(db: Session, cidr: str, reason: str = "", *, actor: str) -> IpDenyEntry:
    """Deny an address or network. Takes effect within the middleware's refresh interval."""
    cidr = canonical(cidr)
    if len(reason) > MAX_REASON_LENGTH:
        raise DenyListError(f"the reason must be at most {MAX_REASON_LENGTH} characters")
    if db.scalar(sa.select(IpDenyEntry.id).where(IpDenyEntry.cidr == cidr)) is not None:
        raise DenyListError(f"{cidr} is already on the deny list")
    entry = IpDenyEntry(cidr=cidr, reason=reason)
    db.add(entry)
    db.flush()
    audit.record(db, "deny_list_changed", action="add", cidr=cidr, actor=actor)
    return entry


def remove_entry(db: Session, cidr: str, *, actor: str) -> str:
    """Remove an entry; returns its canonical spelling."""
    cidr = canonical(cidr)
    removed = db.execute(sa.delete(IpDenyEntry).where(IpDenyEntry.cidr == cidr))
    if not removed.rowcount:  # type: ignore[attr-defined]
        raise DenyListError(f"{cidr} is not on the deny list")
    audit.record(db, "deny_list_changed", action="remove", cidr=cidr, actor=actor)
    return cidr


def get_entry(db: Session, entry_id: int) -> IpDenyEntry | None:
    return db.get(IpDenyEntry, entry_id)


def list_entries(db: Session) -> list[IpDenyEntry]:
    """Every entry, oldest first."""
    return list(db.scalars(sa.select(IpDenyEntry).order_by(IpDenyEntry.created_at, IpDenyEntry.id)))
