"""Client registration and lookup. Secrets are returned once and stored as keyed hashes."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from authserver.audit import service as audit
from authserver.clients.errors import ClientError, UnknownClient
from authserver.clients.models import Client
from authserver.db import Window, contains, utcnow, window
from authserver.oauth.vocabulary import (
    AUTH_METHODS,
    AUTHORIZATION_CODE,
    CONFIDENTIAL_GRANT_TYPES,
    DEFAULT_AUTH_METHOD,
    GRANT_TYPES,
    LOOPBACK_HOSTS,
    NONE,
    RESPONSE_TYPES,
)
from authserver.roles.permissions import is_prefix
from authserver.security.crypto import SecretBox
from authserver.tokens import service as tokens
from authserver.tokens.cache import TokenState

SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]{1,100}$")  # RFC 6749 §3.3 scope-token


@dataclass(frozen=True)
class NewClient:
    client: Client
    client_secret: str | None


# RFC 8252 §7.1: a private-use scheme is a domain name the app's publisher controls, reversed
PRIVATE_USE_SCHEME = re.compile(r"^[a-z][a-z0-9+-]*(?:\.[a-z0-9][a-z0-9+-]*)+$")


def validate_redirect_uri(uri: str, *, native: bool = True) -> str:
    """A redirect URI by allow-list (RFC 6749 §3.1.2, RFC 8252 §7): absolute, no
    fragment, printable, and one of

    * ``https`` with a host;
    * ``http`` on a loopback host only (RFC 8252 §7.3);
    * a private-use scheme in reverse-domain form such as ``com.example.app:/cb``
      (RFC 8252 §7.1), and only when ``native`` (a native client).

    Everything else (``blob:``, ``filesystem:``, ``data:``, ``javascript:``, a
    one-word scheme) is refused. Raises :class:`ClientError`.
    """
    if not uri.isprintable() or " " in uri:
        raise ClientError("redirect URI must not contain spaces or control characters")
    try:
        parts = urlsplit(uri)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise ClientError(f"redirect URI is malformed: {uri}") from None
    if not parts.scheme or parts.fragment or "#" in uri:
        raise ClientError(f"redirect URI must be absolute and have no fragment: {uri}")
    if parts.scheme in ("http", "https"):
        if not hostname:
            raise ClientError(f"redirect URI has no host: {uri}")
        if parts.scheme == "http" and hostname not in LOOPBACK_HOSTS:
            raise ClientError(f"redirect URI must use https unless it is a loopback address: {uri}")
    elif PRIVATE_USE_SCHEME.match(parts.scheme):
        if not native:
            raise ClientError(f"private-use URI schemes are for native clients (RFC 8252 §7.1): {uri}")
    else:
        raise ClientError(f"redirect URI scheme is not allowed (https, http on loopback, or a private-use "
                          f"scheme in reverse-domain form such as com.example.app): {uri}")
    return uri


def validate_metadata(
    *,
    client_name: str,
    redirect_uris: list[str],
    grant_types: list[str],
    scope: str,
    token_endpoint_auth_method: str,
    post_logout_redirect_uris: list[str] | None = None,
) -> dict[str, Any]:
    """Check client metadata; return it normalised (deduplicated, trimmed) or raise ClientError."""
    for value in [client_name, *redirect_uris, *(post_logout_redirect_uris or [])]:
        if not value.isprintable():
            raise ClientError(f"control characters are not allowed: {value!r}")
    if not client_name.strip():
        raise ClientError("client name must not be empty")
    for g in grant_types:
        if g not in GRANT_TYPES:
            raise ClientError(f"unsupported grant type: {g} (one of {', '.join(GRANT_TYPES)})")
    if not grant_types:
        raise ClientError("at least one grant type is required")
    if token_endpoint_auth_method not in AUTH_METHODS:
        raise ClientError(f"unsupported auth method: {token_endpoint_auth_method}")
    public = token_endpoint_auth_method == NONE
    if public and CONFIDENTIAL_GRANT_TYPES.intersection(grant_types):
        raise ClientError("public clients cannot use client_credentials or password grants")
    if AUTHORIZATION_CODE in grant_types and not redirect_uris:
        raise ClientError("authorization_code clients need at least one redirect URI")
    for uri in [*redirect_uris, *(post_logout_redirect_uris or [])]:
        validate_redirect_uri(uri)
    scopes = scope.split()
    for s in scopes:
        if not SCOPE_TOKEN.match(s):
            raise ClientError(f"invalid scope: {s!r}")
    return {
        "client_name": client_name.strip(),
        "redirect_uris": list(dict.fromkeys(redirect_uris)),
        "post_logout_redirect_uris": list(dict.fromkeys(post_logout_redirect_uris or [])),
        "grant_types": list(dict.fromkeys(grant_types)),
        "response_types": list(RESPONSE_TYPES) if AUTHORIZATION_CODE in grant_types else [],
        "scope": " ".join(dict.fromkeys(scopes)),
        "token_endpoint_auth_method": token_endpoint_auth_method,
    }


def validate_permission_prefixes(prefixes: list[str]) -> list[str]:
    """Whole-segment prefixes (``orders``, ``orders:items``) of the permissions this
    client's access tokens may carry (docs/roles.md); deduplicated."""
    for prefix in prefixes:
        if not isinstance(prefix, str) or not is_prefix(prefix):
            raise ClientError(f"invalid permission prefix: {prefix!r} (e.g. 'orders' or 'orders:items')")
    return list(dict.fromkeys(prefixes))


def create_client(
    db: Session,
    box: SecretBox,
    *,
    client_name: str,
    redirect_uris: list[str],
    grant_types: list[str],
    scope: str,
    token_endpoint_auth_method: str = DEFAULT_AUTH_METHOD,
    post_logout_redirect_uris: list[str] | None = None,
    skip_consent: bool = False,
    require_mfa: bool = False,
    introspect_any: bool = False,
    audience: list[str] | None = None,
    permission_prefixes: list[str] | None = None,
    dpop_bound_access_tokens: bool = False,
    actor: str | None = None,
) -> NewClient:
    """Validate and store a client; returns the plaintext secret once (None for public).

    With ``actor`` (an administrator's user id or client_id, ``cli``) the creation is
    audited here; without it the caller records it (dynamic registration)."""
    metadata = validate_metadata(
        client_name=client_name,
        redirect_uris=redirect_uris,
        grant_types=grant_types,
        scope=scope,
        token_endpoint_auth_method=token_endpoint_auth_method,
        post_logout_redirect_uris=post_logout_redirect_uris,
    )
    secret = None if token_endpoint_auth_method == NONE else secrets.token_urlsafe(32)
    client = Client(
        client_id=new_client_id(),
        client_secret_hash=box.keyed_hash(secret) if secret else None,
        **metadata,
        skip_consent=skip_consent,
        require_mfa=require_mfa,
        introspect_any=introspect_any,
        audience=validate_audience(list(audience or [])),
        permission_prefixes=validate_permission_prefixes(permission_prefixes or []),
        dpop_bound_access_tokens=bool(dpop_bound_access_tokens),
    )
    db.add(client)
    db.flush()
    if actor is not None:
        audit.record(db, "client_created", client_id=client.client_id, client_name=client.client_name,
                     actor=actor)
    return NewClient(client, secret)


def new_client_id() -> str:
    """128 random bits; never starting with '-' so it cannot pass for a CLI option."""
    while (client_id := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return client_id


def get_client(db: Session, client_id: str) -> Client | None:
    if not client_id or len(client_id) > 64 or "\x00" in client_id:  # Postgres text refuses NUL
        return None
    return db.get(Client, client_id)


def require_client(db: Session, client_id: str) -> Client:
    """The client; raises :class:`UnknownClient` (404 in the admin API) when there is none."""
    client = get_client(db, client_id)
    if client is None:
        raise UnknownClient(f"no such client: {client_id}")
    return client


def list_clients(db: Session) -> list[Client]:
    return list(db.scalars(select(Client).order_by(Client.created_at, Client.client_id)))


def search_clients(db: Session, text: str = "", *, offset: int = 0, limit: int = 25) -> Window[Client]:
    """Clients whose ``client_id`` or name contains ``text`` (any case), by name."""
    stmt = select(Client).order_by(Client.client_name, Client.client_id)
    if text.strip():
        stmt = stmt.where(or_(contains(Client.client_id, text.strip()), contains(Client.client_name, text.strip())))
    return window(db, stmt, offset=offset, limit=limit)


#: what :func:`update_client` may change (RFC 7591 §2 names, plus our admin-only flags)
UPDATABLE = frozenset({
    "client_name", "redirect_uris", "post_logout_redirect_uris", "grant_types", "scope",
    "token_endpoint_auth_method", "skip_consent", "require_mfa", "introspect_any", "audience",
    "permission_prefixes", "dpop_bound_access_tokens",
})


def update_client(db: Session, box: SecretBox, client_id: str, /, *, actor: str, **changes: Any) -> NewClient:
    """Change a client in place (its ``client_id`` stays; RFC 7592 §2.2 semantics for
    an administrator): the fields of :data:`UPDATABLE` given in ``changes``, checked
    together with the ones kept, as at creation.

    Moving from ``none`` to a secret-based auth method issues a secret, returned once
    in :attr:`NewClient.client_secret`; moving to ``none`` drops the stored secret.
    Audited as ``client_updated`` with the names of the fields that changed. Raises
    :class:`ClientError` for an unknown client or field, or invalid metadata.
    """
    client = require_client(db, client_id)
    unknown = sorted(set(changes) - UPDATABLE)
    if unknown:
        raise ClientError(f"cannot change {', '.join(unknown)}")
    current: dict[str, Any] = {name: getattr(client, name) for name in UPDATABLE}
    wanted = {**current, **changes}
    metadata = validate_metadata(
        client_name=wanted["client_name"],
        redirect_uris=list(wanted["redirect_uris"]),
        grant_types=list(wanted["grant_types"]),
        scope=wanted["scope"],
        token_endpoint_auth_method=wanted["token_endpoint_auth_method"],
        post_logout_redirect_uris=list(wanted["post_logout_redirect_uris"]),
    )
    metadata.update(
        skip_consent=bool(wanted["skip_consent"]), require_mfa=bool(wanted["require_mfa"]),
        introspect_any=bool(wanted["introspect_any"]),
        audience=validate_audience(list(wanted["audience"] or [])),
        permission_prefixes=validate_permission_prefixes(list(wanted["permission_prefixes"] or [])),
        dpop_bound_access_tokens=bool(wanted["dpop_bound_access_tokens"]),
    )
    changed = sorted(name for name, value in metadata.items() if getattr(client, name) != value)
    secret = None
    if metadata["token_endpoint_auth_method"] == NONE:
        client.client_secret_hash = None
    elif client.client_secret_hash is None:
        secret = secrets.token_urlsafe(32)
        client.client_secret_hash = box.keyed_hash(secret)
        client.secret_rotated_at = utcnow()
    for name, value in metadata.items():
        setattr(client, name, value)
    db.flush()
    if changed:
        audit.record(db, "client_updated", client_id=client.client_id, actor=actor, changed=changed)
    return NewClient(client, secret)


def validate_audience(audience: list[str]) -> list[str]:
    """Access-token ``aud`` values (RFC 9068 §3): non-empty strings without spaces; deduplicated."""
    for value in audience:
        if not value or len(value) > 200 or any(c.isspace() or not c.isprintable() for c in value):
            raise ClientError(f"invalid audience: {value!r}")
    return list(dict.fromkeys(audience))


def rotate_secret(db: Session, box: SecretBox, client_id: str, *, revoked: TokenState,
                  actor: str | None = None) -> str:
    """A new secret for a confidential client, returned once; the old one stops working at
    once and every access token already issued to the client becomes inactive
    (``tokens.invalidate_client``). With ``actor`` the rotation is audited here (else by
    the caller)."""
    client = require_client(db, client_id)
    if client.is_public:
        raise ClientError("public clients have no secret")
    secret = secrets.token_urlsafe(32)
    client.client_secret_hash = box.keyed_hash(secret)
    client.secret_rotated_at = utcnow()
    tokens.invalidate_client(db, revoked, client_id)
    if actor is not None:
        audit.record(db, "client_secret_rotated", client_id=client_id, actor=actor)
    return secret


def delete_client(db: Session, client_id: str, *, revoked: TokenState, actor: str) -> None:
    """Delete the client; its codes, refresh tokens and consents go with it (FK cascade),
    and every access token issued to it becomes inactive (``tokens.invalidate_client``).
    Audited as ``client_deleted`` naming ``actor``."""
    client = require_client(db, client_id)
    db.delete(client)
    db.flush()
    tokens.invalidate_client(db, revoked, client_id)
    audit.record(db, "client_deleted", client_id=client_id, actor=actor)
