"""Housekeeping: delete what can no longer be used.

Run by ``authserver cleanup`` and by the periodic maintenance in the server
(``maintenance.worker``); every step is idempotent and safe while serving.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from authserver.accounts.models import EmailCode
from authserver.clients.models import ClientAssertionJti, InitialAccessToken, PushedAuthorizationRequest
from authserver.db import transaction, utcnow
from authserver.sessions import devices
from authserver.sessions.models import BrowserSession
from authserver.tokens.models import AuthorizationCode, RefreshToken, RevokedToken, TokenCutoff

if TYPE_CHECKING:
    from authserver.context import Context

REPLAY_GRACE = dt.timedelta(days=1)
"""Used codes and dead refresh tokens stay this long so a late replay is still
recognised and can revoke what it issued (RFC 6749 §4.1.2, RFC 9700 §4.14.2)."""


def run_cleanup(ctx: Context, db: Session | None = None, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete expired rows and retired signing keys; returns the number removed per kind.

    The kinds, in order: ``authorization_codes``, ``refresh_tokens``,
    ``browser_sessions``, ``devices``, ``email_codes``, ``initial_access_tokens``,
    ``revoked_tokens``, ``token_cutoffs``, ``client_assertion_jtis``,
    ``pushed_authorization_requests``, ``retired_keys``. Rotated refresh
    tokens stay until their family expires, so a stolen old token presented
    late still reveals the theft (RFC 9700 §4.14.2). Revoked access-token ids
    and cutoffs go once every token they can affect has expired. Runs in
    ``db``'s transaction when given, else in its own.
    """
    if db is None:
        with transaction(ctx.sessions) as own:
            return run_cleanup(ctx, own, now)
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
        "devices": devices.forgettable(now),
        "email_codes": sa.delete(EmailCode).where(EmailCode.expires_at < now),
        "initial_access_tokens": sa.delete(InitialAccessToken).where(
            InitialAccessToken.expires_at.is_not(None), InitialAccessToken.expires_at < now
        ),
        "revoked_tokens": sa.delete(RevokedToken).where(RevokedToken.expires_at < now),
        "token_cutoffs": sa.delete(TokenCutoff).where(TokenCutoff.expires_at < now),
        # an expired assertion is refused by its exp: its jti need not be remembered longer
        "client_assertion_jtis": sa.delete(ClientAssertionJti).where(ClientAssertionJti.expires_at < now),
        "pushed_authorization_requests": sa.delete(PushedAuthorizationRequest).where(
            PushedAuthorizationRequest.expires_at < now),
    }
    counts = {name: db.execute(statement).rowcount or 0  # type: ignore[attr-defined]
              for name, statement in statements.items()}
    counts["retired_keys"] = len(ctx.keys.remove_retired(db))
    return counts
