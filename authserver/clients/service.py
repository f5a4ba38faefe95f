"""Client registration and lookup. Secrets are returned once and stored as keyed hashes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import SecurityWarning
from joserfc.jwk import JWKRegistry
from sqlalchemy import insert, inspect, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from authserver.audit import service as audit
from authserver.clients.errors import ClientError, UnknownClient
from authserver.clients.models import Client, ClientAssertionJti
from authserver.db import Window, contains, utcnow, window
from authserver.oauth.vocabulary import (
    AUTH_METHODS,
    AUTHORIZATION_CODE,
    CONFIDENTIAL_GRANT_TYPES,
    DEFAULT_AUTH_METHOD,
    GRANT_TYPES,
    ID_TOKEN_SIGNING_ALGS,
    LOOPBACK_HOSTS,
    NONE,
    PRIVATE_KEY_JWT,
    RESPONSE_TYPES,
    SECRET_AUTH_METHODS,
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
            raise ClientError(f"private-use URI schemes are for native clients (RFC 8252, section 7.1): {uri}")
    else:
        raise ClientError(f"redirect URI scheme is not allowed (https, http on loopback, or a private-use "
                          f"scheme in reverse-domain form such as com.example.app): {uri}")
    return uri


MAX_JWKS_KEYS = 10
MAX_JWKS_CHARS = 20_000
#: JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2)
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def validate_jwks(jwks: object) -> dict[str, Any]:
    """A client's JWK Set (RFC 7517 §5) for ``private_key_jwt``: 1 to 10 public RSA
    (2048 bits or more), EC or OKP keys; a private or symmetric member is refused, so
    a client cannot leak its private key into our database by mistake. Raises
    :class:`ClientError`; returns the set as given (public members only)."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ClientError('jwks must be a JWK Set: {"keys": [...]} (RFC 7517, section 5)')
    keys = jwks["keys"]
    if not 1 <= len(keys) <= MAX_JWKS_KEYS:
        raise ClientError(f"jwks must hold between 1 and {MAX_JWKS_KEYS} keys")
    if len(json.dumps(jwks)) > MAX_JWKS_CHARS:
        raise ClientError(f"jwks must be at most {MAX_JWKS_CHARS} characters")
    for key in keys:
        if not isinstance(key, dict):
            raise ClientError("each key in jwks must be a JSON object")
        if PRIVATE_JWK_MEMBERS.intersection(key):
            raise ClientError("jwks must hold public keys only (a private or symmetric key member was sent)")
        if key.get("kty") not in ("RSA", "EC", "OKP"):
            raise ClientError("jwks keys must be RSA, EC or OKP public keys")
        try:
            with warnings.catch_warnings():
                # joserfc warns of a short RSA key (an error where warnings are errors);
                # the size check below refuses it with its own message either way
                warnings.simplefilter("ignore", SecurityWarning)
                imported = JWKRegistry.import_key(key)
        except Exception:  # joserfc raises many kinds for malformed members; all mean "cannot be read"
            raise ClientError("jwks holds a key that cannot be read") from None
        if key["kty"] == "RSA" and imported.get_op_key("verify").key_size < 2048:  # type: ignore[union-attr]
            raise ClientError("RSA keys in jwks must have at least 2048 bits")
    return {"keys": [dict(k) for k in keys]}


def validate_jwks_uri(uri: str) -> str:
    """Where the client publishes its JWK Set: an https URL with a host (http only on a
    loopback host, for development; the server fetches it only when its own issuer is
    http too). No credentials, no fragment. Raises :class:`ClientError`."""
    if not isinstance(uri, str) or len(uri) > 2000 or not uri.isprintable() or " " in uri:
        raise ClientError("jwks_uri must be a URL of at most 2000 printable characters")
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        raise ClientError(f"jwks_uri is malformed: {uri}") from None
    credentials = parts.username is not None or parts.password is not None  # "https://@host" has empty ones
    if parts.scheme not in ("https", "http") or not host or credentials or parts.fragment:
        raise ClientError(f"jwks_uri must be an https URL with a host and no credentials or fragment: {uri}")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise ClientError(f"jwks_uri must use https unless it is a loopback address: {uri}")
    return uri


def validate_metadata(
    *,
    client_name: str,
    redirect_uris: list[str],
    grant_types: list[str],
    scope: str,
    token_endpoint_auth_method: str,
    post_logout_redirect_uris: list[str] | None = None,
    jwks: object | None = None,
    jwks_uri: str | None = None,
    id_token_signed_response_alg: str | None = None,
) -> dict[str, Any]:
    """Check client metadata; return it normalised (deduplicated, trimmed) or raise ClientError.

    A ``private_key_jwt`` client registers exactly one of ``jwks`` and ``jwks_uri``
    (OIDC Registration §2: "MUST NOT use both"); other clients register neither."""
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
    if token_endpoint_auth_method == PRIVATE_KEY_JWT:
        if (jwks is None) == (jwks_uri is None):
            raise ClientError("private_key_jwt clients register their keys with exactly one of jwks and jwks_uri")
    elif jwks is not None or jwks_uri is not None:
        raise ClientError("jwks and jwks_uri are for private_key_jwt clients only")
    alg = id_token_signed_response_alg or ID_TOKEN_SIGNING_ALGS[0]
    if alg not in ID_TOKEN_SIGNING_ALGS:
        raise ClientError(f"id_token_signed_response_alg must be one of {', '.join(ID_TOKEN_SIGNING_ALGS)}")
    return {
        "client_name": client_name.strip(),
        "redirect_uris": list(dict.fromkeys(redirect_uris)),
        "post_logout_redirect_uris": list(dict.fromkeys(post_logout_redirect_uris or [])),
        "grant_types": list(dict.fromkeys(grant_types)),
        "response_types": list(RESPONSE_TYPES) if AUTHORIZATION_CODE in grant_types else [],
        "scope": " ".join(dict.fromkeys(scopes)),
        "token_endpoint_auth_method": token_endpoint_auth_method,
        "jwks": validate_jwks(jwks) if jwks is not None else None,
        "jwks_uri": validate_jwks_uri(jwks_uri) if jwks_uri is not None else None,
        "id_token_signed_response_alg": alg,
    }


def validate_backchannel_logout_uri(uri: str | None) -> str | None:
    """A ``backchannel_logout_uri`` (OIDC Back-Channel Logout 1.0 §2.2): an absolute
    ``https`` URL, or ``http`` on a loopback host, with no fragment and no credentials;
    ``None`` or empty means none. Raises :class:`ClientError`."""
    if not uri:
        return None
    if len(uri) > 2000 or not uri.isprintable() or " " in uri:
        raise ClientError("backchannel_logout_uri must be a URL of at most 2000 printable characters")
    try:
        parts = urlsplit(uri)
        hostname = parts.hostname
    except ValueError:
        raise ClientError(f"backchannel_logout_uri is malformed: {uri}") from None
    if (parts.scheme not in ("http", "https") or not hostname or parts.fragment or "#" in uri
            or parts.username is not None or parts.password is not None):
        raise ClientError(f"backchannel_logout_uri must be an absolute http(s) URL without a fragment: {uri}")
    if parts.scheme == "http" and hostname not in LOOPBACK_HOSTS:
        raise ClientError(f"backchannel_logout_uri must use https unless it is a loopback address: {uri}")
    return uri


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
    backchannel_logout_uri: str | None = None,
    backchannel_logout_session_required: bool = False,
    dpop_bound_access_tokens: bool = False,
    jwks: object | None = None,
    jwks_uri: str | None = None,
    id_token_signed_response_alg: str | None = None,
    require_pushed_authorization_requests: bool = False,
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
        jwks=jwks,
        jwks_uri=jwks_uri,
        id_token_signed_response_alg=id_token_signed_response_alg,
    )
    secret = secrets.token_urlsafe(32) if token_endpoint_auth_method in SECRET_AUTH_METHODS else None
    client = Client(
        client_id=new_client_id(),
        client_secret_hash=box.keyed_hash(secret) if secret else None,
        **metadata,
        skip_consent=skip_consent,
        require_mfa=require_mfa,
        introspect_any=introspect_any,
        audience=validate_audience(list(audience or [])),
        permission_prefixes=validate_permission_prefixes(permission_prefixes or []),
        backchannel_logout_uri=validate_backchannel_logout_uri(backchannel_logout_uri),
        backchannel_logout_session_required=backchannel_logout_session_required,
        dpop_bound_access_tokens=bool(dpop_bound_access_tokens),
        require_pushed_authorization_requests=require_pushed_authorization_requests,
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


def snapshot(row: Client) -> Client:
    """A copy of the client's columns that belongs to no session (for a cache shared by
    threads: nothing expires or refreshes it)."""
    return Client(**{attr.key: getattr(row, attr.key) for attr in inspect(Client).column_attrs})


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
    "permission_prefixes", "dpop_bound_access_tokens", "jwks", "jwks_uri", "id_token_signed_response_alg",
    "require_pushed_authorization_requests", "backchannel_logout_uri", "backchannel_logout_session_required",
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
    if changes.get("token_endpoint_auth_method", PRIVATE_KEY_JWT) != PRIVATE_KEY_JWT:
        current.update(jwks=None, jwks_uri=None)  # keys go with the method they were for
    if changes.get("jwks") is not None:
        current["jwks_uri"] = None  # one replaces the other
    if changes.get("jwks_uri") is not None:
        current["jwks"] = None
    wanted = {**current, **changes}
    metadata = validate_metadata(
        client_name=wanted["client_name"],
        redirect_uris=list(wanted["redirect_uris"]),
        grant_types=list(wanted["grant_types"]),
        scope=wanted["scope"],
        token_endpoint_auth_method=wanted["token_endpoint_auth_method"],
        post_logout_redirect_uris=list(wanted["post_logout_redirect_uris"]),
        jwks=wanted["jwks"],
        jwks_uri=wanted["jwks_uri"],
        id_token_signed_response_alg=wanted["id_token_signed_response_alg"],
    )
    metadata.update(
        skip_consent=bool(wanted["skip_consent"]), require_mfa=bool(wanted["require_mfa"]),
        introspect_any=bool(wanted["introspect_any"]),
        audience=validate_audience(list(wanted["audience"] or [])),
        permission_prefixes=validate_permission_prefixes(list(wanted["permission_prefixes"] or [])),
        backchannel_logout_uri=validate_backchannel_logout_uri(wanted["backchannel_logout_uri"]),
        backchannel_logout_session_required=bool(wanted["backchannel_logout_session_required"]),
        dpop_bound_access_tokens=bool(wanted["dpop_bound_access_tokens"]),
        require_pushed_authorization_requests=bool(wanted["require_pushed_authorization_requests"]),
    )
    changed = sorted(name for name, value in metadata.items() if getattr(client, name) != value)
    secret = None
    if metadata["token_endpoint_auth_method"] not in SECRET_AUTH_METHODS:
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
    if client.token_endpoint_auth_method not in SECRET_AUTH_METHODS:
        raise ClientError(f"{client.token_endpoint_auth_method} clients have no secret")
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


def use_assertion_jti(db: Session, client_id: str, jti: str, expires_at: dt.datetime) -> bool:
    """Record that ``client_id`` used the client assertion ``jti``; False when it was
    used before (RFC 7523 §3 item 7: replay). One insert that does nothing on a
    conflict: across nodes the second of two racing requests waits for the first's
    transaction and then finds the row (Postgres), or waits for SQLite's write lock."""
    jti_hash = hashlib.sha256(f"{client_id}\x00{jti}".encode()).hexdigest()
    values = {"jti_hash": jti_hash, "client_id": client_id, "expires_at": expires_at}
    dialect = db.get_bind().dialect.name
    stmt: Insert
    if dialect == "postgresql":
        stmt = postgresql.insert(ClientAssertionJti).values(values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(ClientAssertionJti).values(values).on_conflict_do_nothing()
    else:  # pragma: no cover - the two supported databases are above
        stmt = insert(ClientAssertionJti).values(values)
    # RETURNING, not rowcount: psycopg reports -1 for a conflict that inserted nothing
    return db.execute(stmt.returning(ClientAssertionJti.jti_hash)).first() is not None
