"""Record security events in the audit table and in the log, with the request id."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import structlog
from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from authserver.audit.models import AuditEvent
from authserver.db import Window, window
from authserver.errors import DomainError

log = structlog.get_logger("authserver.audit")

EVENTS = frozenset({
    "login_succeeded", "login_failed", "account_locked", "account_unlocked", "logout",
    "device_signed_out",
    "mfa_enrolled", "mfa_disabled", "mfa_succeeded", "mfa_failed", "backup_code_used",
    "token_reuse_detected", "code_replay_detected", "password_grant_failed",
    "consent_granted", "consent_revoked", "client_created", "client_updated",
    "client_secret_rotated", "client_deleted", "key_rotated", "key_imported", "deny_list_hit",
    "deny_list_changed", "user_created", "user_disabled", "password_changed",
    "password_reset", "password_set_by_admin", "session_revoked", "signup_completed", "rate_limited",
    "registration_token_created",
    "user_enabled", "user_deleted", "user_roles_changed", "registration_token_revoked",
    "role_created", "role_updated", "role_deleted", "role_permission_granted", "role_permission_revoked",
    "client_roles_changed", "user_updated",
    "device_approved", "device_denied", "backchannel_logout_failed",
    "passkey_added", "passkey_renamed", "passkey_removed", "passkey_failed", "passkey_clone_suspected",
})

#: built once, on the table (no unit of work: an ORM ``add`` and its flush cost more than
#: the statement, docs/performance.md); ``created_at`` takes the model's default; inline:
#: no implicit ``RETURNING id``, which nothing reads
AUDIT_EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]
INSERT_EVENT = insert(AUDIT_EVENTS).inline()


def record(
    db: Session,
    event: str,
    *,
    user_id: str | None = None,
    client_id: str | None = None,
    ip: str | None = None,
    **detail: Any,
) -> None:
    """Insert an audit row now, in the caller's transaction (committed or rolled back with
    it), and log it.

    ``detail`` must never hold a secret: pass masked identifiers only.
    """
    assert event in EVENTS, event
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    db.execute(INSERT_EVENT, {"event": event, "user_id": user_id, "client_id": client_id, "ip": ip,
                              "request_id": request_id, "detail": detail})
    log.info(event, audit=True, user_id=user_id, client_id=client_id, ip=ip, **detail)


class AuditQueryError(DomainError):
    """A filter of the audit log that cannot be understood; the message is safe to show."""


_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """A moment given as an RFC 3339 / ISO 8601 date or date-time (UTC when it names no
    offset), seconds since the epoch, or a duration before ``now`` (``30m``, ``12h``,
    ``7d``, ``2w``). Raises :class:`AuditQueryError`."""
    value = text.strip()
    now = now or dt.datetime.now(dt.UTC)
    try:
        if match := _DURATION.fullmatch(value):
            return now - dt.timedelta(seconds=int(match[1]) * _UNITS[match[2]])
        if value.isdigit() and len(value) <= 11:
            return dt.datetime.fromtimestamp(int(value), dt.UTC)
        moment = dt.datetime.fromisoformat(value.replace("z", "Z"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise AuditQueryError(f"not a time: {text[:40]!r} (e.g. 2026-01-31T12:00:00Z, 1769860800 or 7d)") from None


def search(db: Session, *, user_id: str | None = None, client_id: str | None = None, event: str | None = None,
           since: dt.datetime | None = None, until: dt.datetime | None = None, offset: int = 0,
           limit: int = 50) -> Window[AuditEvent]:
    """Audit events matching every filter given, newest first (``since`` inclusive,
    ``until`` exclusive); an ``event`` that is no known kind is an error, not an empty
    answer. The ``created_at`` and ``event`` indexes serve the filters."""
    if event and event not in EVENTS:
        raise AuditQueryError(f"unknown event kind: {event[:60]!r}")
    stmt = select(AuditEvent).order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    if user_id:
        stmt = stmt.where(AuditEvent.user_id == user_id)
    if client_id:
        stmt = stmt.where(AuditEvent.client_id == client_id)
    if event:
        stmt = stmt.where(AuditEvent.event == event)
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.created_at < until)
    return window(db, stmt, offset=offset, limit=limit)
