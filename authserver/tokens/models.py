"""Authorization codes and refresh tokens; secrets stored as keyed hashes only.

Consumed codes and rotated tokens stay as rows with timestamps so that a replay
can be recognised and traced back to what it issued.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from authserver.db import Base, utcnow


class AuthorizationCode(Base):
    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Hot path: looked up by code_hash (unique index).
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    client_id: Mapped[str] = mapped_column(sa.ForeignKey("clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(sa.Text)
    scope: Mapped[str] = mapped_column(sa.Text)
    nonce: Mapped[str | None] = mapped_column(sa.Text)
    code_challenge: Mapped[str | None] = mapped_column(sa.String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(sa.String(10))
    claims: Mapped[dict[str, object] | None] = mapped_column(sa.JSON)
    auth_time: Mapped[int] = mapped_column(sa.BigInteger)
    amr: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    acr: Mapped[str | None] = mapped_column(sa.String(100))
    sid: Mapped[str | None] = mapped_column(sa.String(64))
    # The browser's device (``devices.id``): the exchange is refused once it was signed out.
    device_id: Mapped[str | None] = mapped_column(sa.String(36))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    # What the code issued, so a replay can revoke it (RFC 6749 §4.1.2).
    family_id: Mapped[str | None] = mapped_column(sa.String(36))
    access_token_jti: Mapped[str | None] = mapped_column(sa.String(64))
    access_token_expires_at: Mapped[dt.datetime | None]
    # RFC 9449 §10: the ``dpop_jkt`` of the authorization request; the exchange must prove that key.
    dpop_jkt: Mapped[str | None] = mapped_column(sa.String(64))


class RefreshToken(Base):
    """One refresh token; rotation links tokens of a login into one ``family_id``."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Hot path: looked up by token_hash (unique index); family revocation by family_id.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    family_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    client_id: Mapped[str] = mapped_column(
        sa.ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(sa.Text)
    auth_time: Mapped[int | None] = mapped_column(sa.BigInteger)
    amr: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    acr: Mapped[str | None] = mapped_column(sa.String(100))
    sid: Mapped[str | None] = mapped_column(sa.String(64))
    # The device the family was issued to (``devices.id``), read through user_id's index.
    # No foreign key: its check would lock the device row on every refresh.
    device_id: Mapped[str | None] = mapped_column(sa.String(36))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    family_expires_at: Mapped[dt.datetime]
    rotated_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    # The access token issued alongside, revoked with the family.
    access_token_jti: Mapped[str | None] = mapped_column(sa.String(64))
    access_token_expires_at: Mapped[dt.datetime | None]
    # A public client's token bound to its DPoP key (RFC 9449 §5): the JWK SHA-256 thumbprint
    # a refresh must prove possession of. None: not bound (confidential clients, §5).
    dpop_jkt: Mapped[str | None] = mapped_column(sa.String(64))


class RevokedToken(Base):
    """An access token revoked before it expired (RFC 7009 §2).

    The record; Redis or each process only caches it (``tokens.cache``). A row
    is useless once the token has expired, and ``cleanup`` then deletes it.
    """

    __tablename__ = "revoked_tokens"

    # Looked up by jti (primary key) on a cache miss.
    jti: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    revoked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TokenCutoff(Base):
    """Access tokens of a subject issued (``iat``) before ``not_before`` are inactive.

    ``subject_kind`` is ``user`` (the ``sub`` of a person's token) or ``client``
    (the ``client_id`` claim). No foreign key: the cutoff must outlive a deleted
    user or client. ``expires_at`` is when every token it can affect has
    expired; ``cleanup`` deletes it then.
    """

    __tablename__ = "token_cutoffs"

    # Looked up by primary key on a cache miss and at token issuance; loaded whole
    # (expires_at index) by a process without Redis when revocations change.
    subject_kind: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    subject_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    not_before: Mapped[int] = mapped_column(sa.BigInteger)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
