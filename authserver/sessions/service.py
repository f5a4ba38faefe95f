"""Browser sessions and their CSRF tokens.

A signed-in session is a row: the cookie carries 256 random bits and the
table stores only their keyed hash. The id is replaced at login (session
fixation, OWASP ASVS 3.2.1).

A visitor who has not signed in gets an *anonymous* session that is never
stored: the same cookie carries it sealed with AES-256-GCM (so pending
authorization requests, which may hold a ``login_hint``, are neither readable
nor forgeable) and capped at :data:`MAX_ANONYMOUS_COOKIE` characters. Strangers
therefore cannot grow the database; the row is written at login
(docs/decisions.md, "Nothing is stored for a visitor who has not signed in").
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import secrets
from typing import Any

from sqlalchemy import bindparam, delete, inspect, select
from sqlalchemy.orm import Session, lazyload

from authserver.accounts import mfa as factors
from authserver.accounts.models import User
from authserver.backchannel import service as backchannel
from authserver.db import utcnow
from authserver.security.crypto import DecryptionError, SecretBox
from authserver.sessions.models import BrowserSession
from authserver.settings import Settings

COOKIE = "authserver_session"
#: The longest sealed anonymous session, in characters: with the cookie's name this stays
#: under the 4096 bytes every browser keeps per cookie (RFC 6265 §6.1).
MAX_ANONYMOUS_COOKIE = 3800
#: How long an anonymous session lives (a pending authorization request lives 30 minutes).
ANONYMOUS_TTL = 3600
_SEALED = "v1."  # SecretBox.encrypt's prefix; a row cookie is token_urlsafe and never has a dot
_AAD = b"authserver/anonymous-session/v1"


class TooLargeError(ValueError):
    """An anonymous session that cannot be sealed within :data:`MAX_ANONYMOUS_COOKIE`."""


def cookie_name(settings: Settings) -> str:
    # __Host- binds the cookie to this origin over https (RFC 6265bis §4.1.3.2)
    return f"__Host-{COOKIE}" if settings.is_https else COOKIE


#: a stored session with its user (without roles) and whether the user has a second
#: factor, in one statement: every page of a signed-in user asks all three
SESSION_AND_USER = (select(BrowserSession, User, factors.USER_HAS_MFA)
                    .outerjoin(User, User.id == BrowserSession.user_id)
                    .where(BrowserSession.id == bindparam("id"))
                    .options(lazyload(User.roles)))


def load(db: Session, box: SecretBox, cookie_value: str | None) -> BrowserSession | None:
    """The session the cookie names: a stored row, or an anonymous session opened from
    the cookie itself; ``None`` when absent, expired, forged or unknown.

    A stored session's user row comes in the same statement (the request's session holds
    it: ``accounts.get_user`` then answers without a query), and so does
    :func:`accounts.mfa.has_mfa`'s answer for this request."""
    if not cookie_value:
        return None
    if cookie_value.startswith(_SEALED):
        return _open(box, cookie_value)
    if len(cookie_value) > 100:
        return None
    found = db.execute(SESSION_AND_USER, {"id": box.keyed_hash(cookie_value)}).one_or_none()
    if found is None:
        return None
    row, user, has_mfa = found
    if row.expires_at <= utcnow():
        return None
    if user is not None:
        factors.remember_mfa(db, user.id, has_mfa)
    return row


def cookie_max_age(settings: Settings, value: str) -> int:
    """How long the browser keeps cookie ``value``: an anonymous session's lifetime or the
    signed-in session's."""
    return ANONYMOUS_TTL if value.startswith(_SEALED) else settings.session_ttl


def anonymous() -> BrowserSession:
    """A new anonymous session, not stored: :func:`seal` turns it into its cookie."""
    return BrowserSession(id="", sid=secrets.token_urlsafe(16), csrf_secret=secrets.token_hex(32), data={},
                          amr=[], expires_at=utcnow() + dt.timedelta(seconds=ANONYMOUS_TTL))


def is_anonymous(row: BrowserSession) -> bool:
    """True for a session that lives only in its cookie (never added to the database)."""
    return bool(inspect(row).transient)


def seal(box: SecretBox, row: BrowserSession) -> str:
    """The cookie value carrying anonymous session ``row``; raises :class:`TooLargeError`
    when it would exceed :data:`MAX_ANONYMOUS_COOKIE`."""
    body = {"sid": row.sid, "csrf": row.csrf_secret, "data": row.data or {},
            "exp": int(row.expires_at.timestamp())}
    value = box.encrypt(json.dumps(body, separators=(",", ":")).encode(), _AAD)
    if len(value) > MAX_ANONYMOUS_COOKIE:
        raise TooLargeError(f"anonymous session of {len(value)} characters")
    return value


def _open(box: SecretBox, value: str) -> BrowserSession | None:
    if len(value) > MAX_ANONYMOUS_COOKIE:
        return None
    try:
        body = json.loads(box.decrypt(value, _AAD))
        expires_at = dt.datetime.fromtimestamp(int(body["exp"]), dt.UTC)
        row = BrowserSession(id="", sid=str(body["sid"]), csrf_secret=str(body["csrf"]),
                             data=dict(body["data"]), amr=[], expires_at=expires_at)
    except (DecryptionError, ValueError, KeyError, TypeError, OverflowError):
        return None
    return row if expires_at > utcnow() else None


def _create(db: Session, box: SecretBox, settings: Settings, *, ip: str | None, user_agent: str | None,
            data: dict[str, Any] | None = None, **signed_in: Any) -> tuple[BrowserSession, str]:
    """A new stored session (see :func:`log_in`, whose ``signed_in`` columns go into the
    same INSERT); returns the row and the cookie value to set."""
    value = secrets.token_urlsafe(32)
    row = BrowserSession(
        id=box.keyed_hash(value),
        sid=secrets.token_urlsafe(16),
        csrf_secret=secrets.token_hex(32),
        data=data or {},
        ip=ip,
        user_agent=(user_agent or "")[:300],
        expires_at=utcnow() + dt.timedelta(seconds=settings.session_ttl),
        **signed_in,
    )
    db.add(row)
    db.flush()
    return row, value


def kept_device(old: BrowserSession | None, user_id: str) -> str | None:
    """The device a new sign-in of ``user_id`` in this browser stays on: the old
    session's, when it was the same user's."""
    return old.device_id if old is not None and old.user_id == user_id else None


def log_in(db: Session, box: SecretBox, settings: Settings, old: BrowserSession | None, *, user_id: str,
           amr: list[str], acr: str | None, auth_time: int, ip: str | None,
           user_agent: str | None, device_id: str | None) -> tuple[BrowserSession, str]:
    """Replace ``old`` with a fresh authenticated session (new id, sid and CSRF secret),
    keeping its pending interactions (an anonymous session's data moves into the new
    row), on ``device_id``: the device of the completed sign-in
    (``sessions.devices.sign_in``, made first so that the session's one INSERT names
    it), or :func:`kept_device` while a second factor is pending. ``auth_time`` is when
    the user authenticated (OIDC Core §2), read by the caller from ``Context.clock``."""
    data = dict(old.data or {}) if old is not None else {}
    data.pop("mfa", None)
    if old is not None and not is_anonymous(old):
        db.delete(old)
        db.flush()
    return _create(db, box, settings, ip=ip, user_agent=user_agent, data=data, device_id=device_id,
                   user_id=user_id, auth_time=auth_time, amr=amr, acr=acr)


def end(db: Session, row: BrowserSession) -> None:
    """Sign the session out; the relying parties that got tokens through it are told by
    back-channel logout (:mod:`authserver.backchannel.service`)."""
    if not is_anonymous(row):
        backchannel.session_ended(db, row.user_id, row.sid)
        db.delete(row)


def end_all_for_user(db: Session, user_id: str, *, keep: str | None = None) -> int:
    """Sign the user out of every session but ``keep``, telling relying parties as :func:`end` does."""
    where = [BrowserSession.user_id == user_id, *([BrowserSession.id != keep] if keep else [])]
    backchannel.sessions_ended(db, user_id, db.scalars(select(BrowserSession.sid).where(*where)).all())
    return db.execute(delete(BrowserSession).where(*where)).rowcount or 0  # type: ignore[attr-defined]


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
