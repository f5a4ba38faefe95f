"""Housekeeping: delete what can no longer be used.

Run by ``authserver cleanup`` and meant to be run periodically; every step is
idempotent and safe while the server is serving.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from authserver.accounts.models import EmailCode
from authserver.clients.models import InitialAccessToken
from authserver.context import Context
from authserver.db import transaction, utcnow
from authserver.sessions.models import BrowserSession
from authserver.tokens.models import AuthorizationCode, RefreshToken

REPLAY_GRACE = dt.timedelta(days=1)
"""Used codes and dead refresh tokens stay this long so a late replay is still
recognised and can revoke what it issued (RFC 6749 §4.1.2, RFC 9700 §4.14.2)."""


def run_cleanup(ctx: Context, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete expired rows and retired signing keys; returns the number removed per kind.

    The kinds, in order: ``authorization_codes``, ``refresh_tokens``,
    ``browser_sessions``, ``email_codes``, ``initial_access_tokens``,
    ``retired_keys``. Rotated refresh tokens stay until their family expires,
    so a stolen old token presented late still reveals the theft
    (RFC 9700 §4.14.2).
    """
    now = now or utcnow()
    grace = now - REPLAY_GRACE
    statements = {
        "authorization_codes": sa.delete(AuthorizationCode).where(AuthorizationCode.expires_at < grace),
        "refresh_tokens": sa.delete(RefreshToken).where(
            sa.or_(
                RefreshToken.family_expires_at < grace,
                sa.and_(RefreshToken.revoked_at.is_not(None), RefreshToken.expires_at < grace),
                sa.and_(RefreshToken.rotated_at.is_(None), RefreshToken.expires_at < grace),
            )
        ),
        "browser_sessions": sa.delete(BrowserSession).where(BrowserSession.expires_at < now),
        "email_codes": sa.delete(EmailCode).where(EmailCode.expires_at < now),
        "initial_access_tokens": sa.delete(InitialAccessToken).where(
            InitialAccessToken.expires_at.is_not(None), InitialAccessToken.expires_at < now
        ),
    }
    counts: dict[str, int] = {}
    with transaction(ctx.sessions) as db:
        for name, statement in statements.items():
            counts[name] = db.execute(statement).rowcount or 0  # type: ignore[attr-defined]
    counts["retired_keys"] = len(ctx.keys.remove_retired())
    return counts
