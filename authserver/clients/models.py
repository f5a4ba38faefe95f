"""Registered OAuth clients (RFC 6749 §2, RFC 7591 §2 metadata names)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from authserver.db import Base, utcnow
from authserver.oauth import vocabulary


class Client(Base):
    __tablename__ = "clients"
    keep_in_request = True  # held for the rest of a request once loaded (db.py)

    client_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    # Keyed hash (SecretBox.keyed_hash); None for public clients.
    client_secret_hash: Mapped[str | None] = mapped_column(sa.String(64))
    client_name: Mapped[str] = mapped_column(sa.String(200))
    redirect_uris: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    grant_types: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    response_types: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    scope: Mapped[str] = mapped_column(sa.Text, default="")
    token_endpoint_auth_method: Mapped[str] = mapped_column(sa.String(40))
    # Access-token audience (RFC 9068 §3 ``aud``); empty means [client_id].
    audience: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    # Permissions (``roles`` scope) that this client's access tokens may carry: those
    # under these prefixes, i.e. the ones that concern its audience (docs/roles.md).
    permission_prefixes: Mapped[list[str]] = mapped_column(sa.JSON, default=list, server_default="[]")
    skip_consent: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    require_mfa: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # A resource server may introspect tokens issued to any client.
    introspect_any: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    registration_access_token_hash: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    secret_rotated_at: Mapped[dt.datetime | None]

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == vocabulary.NONE


class InitialAccessToken(Base):
    """Admin-issued bearer token that allows RFC 7591 registration (§3)."""

    __tablename__ = "initial_access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    expires_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
