"""Record security events in the audit table and in the log, with the request id."""

from __future__ import annotations

import datetime as dt
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from authserver.audit.models import AuditEvent
from authserver.db import Window, window

log = structlog.get_logger("authserver.audit")

EVENTS = frozenset({
    "login_succeeded", "login_failed", "account_locked", "account_unlocked", "logout",
    "mfa_enrolled", "mfa_disabled", "mfa_succeeded", "mfa_failed", "backup_code_used",
    "token_reuse_detected", "code_replay_detected", "password_grant_failed",
    "consent_granted", "consent_revoked", "client_created", "client_updated",
    "client_secret_rotated", "client_deleted", "key_rotated", "deny_list_hit",
    "deny_list_changed", "user_created", "user_disabled", "password_changed",
    "password_reset", "password_set_by_admin", "session_revoked", "signup_completed", "rate_limited",
    "registration_token_created",
    "user_enabled", "user_deleted", "user_roles_changed", "registration_token_revoked",
    "role_created", "role_updated", "role_deleted", "role_permission_granted", "role_permission_revoked",
    "client_roles_changed",
})


def record(
    db: Session,
    event: str,
    *,
    user_id: str | None = None,
    client_id: str | None = None,
    ip: str | None = None,
    **detail: Any,
) -> None:
    """Add an audit row (committed with the caller's transaction) and log it.

    ``detail`` must never hold a secret: pass masked identifiers only.
    """
    assert event in EVENTS, event
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    db.add(AuditEvent(event=event, user_id=user_id, client_id=client_id, ip=ip,
                      request_id=request_id, detail=detail))
    log.info(event, audit=True, user_id=user_id, client_id=client_id, ip=ip, **detail)


def search(db: Session, *, user_id: str | None = None, client_id: str | None = None, event: str | None = None,
           since: dt.datetime | None = None, until: dt.datetime | None = None, offset: int = 0,
           limit: int = 50) -> Window[AuditEvent]:
    """Audit events matching every filter given, newest first (``since`` inclusive,
    ``until`` exclusive)."""
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
