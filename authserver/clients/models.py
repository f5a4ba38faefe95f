"""Registered OAuth clients (RFC 6749 §2, RFC 7591 §2 metadata names)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from authserver.db import Base, utcnow
from authserver.oauth import vocabulary


class Client(Base):
    __tablename__ = "clients"

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
    # RFC 9449 §5.2: every token request of this client must carry a DPoP proof.
    dpop_bound_access_tokens: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    registration_access_token_hash: Mapped[str | None] = mapped_column(sa.String(64))
    # private_key_jwt (RFC 7523 §2.2): the client's public keys, given inline or by URL (one of them)
    jwks: Mapped[dict[str, object] | None] = mapped_column(sa.JSON)
    jwks_uri: Mapped[str | None] = mapped_column(sa.String(2000))
    # RFC 9126 §6: this client's authorization requests must be pushed
    require_pushed_authorization_requests: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # OIDC Registration §2: what its ID tokens are signed with (RS256, ES256 or EdDSA)
    id_token_signed_response_alg: Mapped[str] = mapped_column(sa.String(10), default="RS256",
                                                               server_default="RS256")
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


class ClientAssertionJti(Base):
    """A ``jti`` of a client assertion already used (RFC 7523 §3 item 7): the row is the
    replay check, shared by every node; deleted by maintenance once the assertion expired."""

    __tablename__ = "client_assertion_jtis"

    #: SHA-256 of ``client_id``, NUL, ``jti`` (a ``jti`` is the client's choice, of any length)
    jti_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(sa.String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class PushedAuthorizationRequest(Base):
    """A pushed authorization request (RFC 9126 §2): its parameters sealed under
    ``SECRET_KEY``, found by the keyed hash of its ``request_uri``; single use."""

    __tablename__ = "pushed_authorization_requests"

    request_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(sa.ForeignKey("clients.client_id", ondelete="CASCADE"), index=True)
    sealed_params: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    used_at: Mapped[dt.datetime | None]
