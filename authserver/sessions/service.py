"""Server-side browser sessions and their CSRF tokens.

The cookie carries 256 random bits; the table stores only their keyed hash.
The id is replaced at login (session fixation, OWASP ASVS 3.2.1).
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from authserver.db import utcnow
from authserver.security.crypto import SecretBox
from authserver.sessions.models import BrowserSession
from authserver.settings import Settings

COOKIE = "authserver_session"


def cookie_name(settings: Settings) -> str:
    # __Host- binds the cookie to this origin over https (RFC 6265bis §4.1.3.2)
    return f"__Host-{COOKIE}" if settings.is_https else COOKIE


def load(db: Session, box: SecretBox, cookie_value: str | None) -> BrowserSession | None:
    if not cookie_value or len(cookie_value) > 100:
        return None
    row = db.get(BrowserSession, box.keyed_hash(cookie_value))
    if row is None or row.expires_at <= utcnow():
        return None
    return row


def create(db: Session, box: SecretBox, settings: Settings, *, ip: str | None, user_agent: str | None,
           data: dict[str, Any] | None = None) -> tuple[BrowserSession, str]:
    """A new anonymous session; returns the row and the cookie value to set."""
    value = secrets.token_urlsafe(32)
    row = BrowserSession(
        id=box.keyed_hash(value),
        sid=secrets.token_urlsafe(16),
        csrf_secret=secrets.token_hex(32),
        data=data or {},
        ip=ip,
        user_agent=(user_agent or "")[:300],
        expires_at=utcnow() + dt.timedelta(seconds=settings.session_ttl),
    )
    db.add(row)
    db.flush()
    return row, value


def log_in(db: Session, box: SecretBox, settings: Settings, old: BrowserSession | None, *, user_id: str,
           amr: list[str], acr: str | None, auth_time: int, ip: str | None,
           user_agent: str | None) -> tuple[BrowserSession, str]:
    """Replace ``old`` with a fresh authenticated session (new id, sid and CSRF secret),
    keeping its pending interactions. ``auth_time`` is when the user authenticated
    (OIDC Core §2), read by the caller from ``Context.clock``."""
    data = dict(old.data or {}) if old is not None else {}
    data.pop("mfa", None)
    if old is not None:
        db.delete(old)
        db.flush()
    row, value = create(db, box, settings, ip=ip, user_agent=user_agent, data=data)
    row.user_id = user_id
    row.auth_time = auth_time
    row.amr = amr
    row.acr = acr
    return row, value


def end(db: Session, row: BrowserSession) -> None:
    db.delete(row)


def end_all_for_user(db: Session, user_id: str, *, keep: str | None = None) -> int:
    stmt = delete(BrowserSession).where(BrowserSession.user_id == user_id)
    if keep:
        stmt = stmt.where(BrowserSession.id != keep)
    return db.execute(stmt).rowcount or 0  # type: ignore[attr-defined]


def for_user(db: Session, user_id: str) -> list[BrowserSession]:
    return list(db.scalars(select(BrowserSession).where(
        BrowserSession.user_id == user_id, BrowserSession.expires_at > utcnow())
        .order_by(BrowserSession.last_seen_at.desc())))


def csrf_token(row: BrowserSession) -> str:
    return hmac.new(bytes.fromhex(row.csrf_secret), b"csrf", "sha256").hexdigest()


def check_csrf(row: BrowserSession | None, token: str | None) -> bool:
    # bytes: compare_digest raises TypeError on non-ASCII str (a forged form field)
    return bool(row and token) and hmac.compare_digest(
        csrf_token(row).encode(), str(token).encode("utf-8", "surrogatepass"))  # type: ignore[arg-type]


def set_data(row: BrowserSession, key: str, value: Any) -> None:
    """JSON columns are replaced, not mutated, so SQLAlchemy sees the change."""
    data = dict(row.data or {})
    if value is None:
        data.pop(key, None)
    else:
        data[key] = value
    row.data = data
