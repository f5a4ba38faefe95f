"""Refresh-token families, code replay handling and the revoked-``jti`` list.

JWT access tokens are self-contained; revoking one puts its ``jti`` on a list
(Redis with a TTL to ``exp``, in-process on the embedded default) that
introspection consults. If Redis cannot be reached the check fails closed:
introspection answers inactive (RFC 7662 §2.2 allows "active": false whenever
the server cannot vouch for a token).
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import structlog
from redis import Redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from authserver.db import utcnow
from authserver.tokens.models import AuthorizationCode, RefreshToken

log = structlog.get_logger("authserver.tokens")


class RevokedJtiList:
    """Revoked access-token ids, each kept until the token would have expired."""

    def __init__(self, redis: Redis | None = None, prefix: str = "authserver:") -> None:
        self._redis = redis
        self._prefix = f"{prefix}revoked-jti:"
        self._memory: dict[str, float] = {}
        self._lock = threading.Lock()

    def revoke(self, jti: str, exp: int | float) -> None:
        ttl = int(exp - time.time()) + 1
        if ttl <= 0:
            return
        if self._redis is not None:
            try:
                self._redis.set(self._prefix + jti, b"1", ex=ttl)
                return
            except Exception as exc:
                log.warning("revoked_jti_store_failed", error=type(exc).__name__)
        with self._lock:
            self._memory[jti] = time.time() + ttl

    def is_revoked(self, jti: str) -> bool:
        """True when revoked, or when the list cannot be read (fail closed)."""
        with self._lock:
            until = self._memory.get(jti)
            if until is not None:
                if until > time.time():
                    return True
                del self._memory[jti]
        if self._redis is None:
            return False
        try:
            return bool(self._redis.exists(self._prefix + jti))
        except Exception as exc:
            log.warning("revoked_jti_check_failed", error=type(exc).__name__)
            return True


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def revoke_family(db: Session, revoked: RevokedJtiList, family_id: str) -> int:
    """Revoke every refresh token of a family and the live access tokens it issued.

    Returns how many refresh tokens were still usable.
    """
    now = utcnow()
    result = db.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    rows = db.execute(
        select(RefreshToken.access_token_jti, RefreshToken.access_token_expires_at).where(
            RefreshToken.family_id == family_id,
            RefreshToken.access_token_jti.is_not(None),
            RefreshToken.access_token_expires_at > now,
        )
    )
    for jti, expires_at in rows:
        if jti and expires_at:
            revoked.revoke(jti, _aware(expires_at).timestamp())
    return result.rowcount or 0  # type: ignore[attr-defined]


def revoke_user_families(db: Session, revoked: RevokedJtiList, user_id: str,
                         client_id: str | None = None) -> int:
    """Revoke every live refresh-token family of a user (at one client, if given),
    e.g. on password change or reset, consent withdrawal or account disable."""
    query = select(RefreshToken.family_id).where(
        RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
    if client_id is not None:
        query = query.where(RefreshToken.client_id == client_id)
    families = list(db.scalars(query.distinct()))
    return sum(revoke_family(db, revoked, family_id) for family_id in families)


def revoke_user_code_tokens(db: Session, revoked: RevokedJtiList, user_id: str) -> int:
    """Revoke the live access tokens a user got from codes that issued no refresh
    token (those of a family go with :func:`revoke_family`); returns how many."""
    now = utcnow()
    rows = db.execute(
        select(AuthorizationCode.access_token_jti, AuthorizationCode.access_token_expires_at).where(
            AuthorizationCode.user_id == user_id,
            AuthorizationCode.family_id.is_(None),
            AuthorizationCode.access_token_jti.is_not(None),
            AuthorizationCode.access_token_expires_at > now,
        )
    ).all()
    for jti, expires_at in rows:
        if jti and expires_at:
            revoked.revoke(jti, _aware(expires_at).timestamp())
    return len(rows)


def revoke_code_issue(db: Session, revoked: RevokedJtiList, code: AuthorizationCode) -> None:
    """A replayed code: revoke what it issued (RFC 6749 §4.1.2, RFC 9700 §4.5)."""
    if code.family_id:
        revoke_family(db, revoked, code.family_id)
    if code.access_token_jti and code.access_token_expires_at:
        revoked.revoke(code.access_token_jti, _aware(code.access_token_expires_at).timestamp())


def claim_code(db: Session, code_hash: str, client_id: str) -> AuthorizationCode | None:
    """Atomically mark an unexpired, unused code as used; None when it was not claimable."""
    now = utcnow()
    result = db.execute(
        update(AuthorizationCode)
        .where(
            AuthorizationCode.code_hash == code_hash,
            AuthorizationCode.client_id == client_id,
            AuthorizationCode.used_at.is_(None),
            AuthorizationCode.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return db.scalar(select(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash))


def claim_refresh_token(db: Session, token_id: int) -> bool:
    """Atomically mark a live refresh token rotated; False when another request won."""
    result = db.execute(
        update(RefreshToken)
        .where(
            RefreshToken.id == token_id,
            RefreshToken.rotated_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(rotated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
