"""Dynamic client registration (RFC 7591) and its management protocol (RFC 7592).

Plain functions over a sync session, run by ``endpoints/register.py`` inside
``bridge.call``. Authlib's ``ClientRegistrationEndpoint`` is not used: it always
issues a secret, returns ``client_secret`` on read and needs the plaintext
registration token (RFC 7592 §2: the server keeps only its hash, so it cannot).

Policy for self-registered clients:

* registration needs an admin-issued initial access token (``Bearer``), stored
  as a keyed hash, optionally expiring, usable until it expires;
* grants ``authorization_code``, ``refresh_token`` and (confidential clients
  only) ``client_credentials``; never ``password`` (RFC 9700 §2.4);
* ``dpop_bound_access_tokens`` (RFC 9449 §5.2) is the client's to choose: it only
  makes its own token requests stricter;
* scopes only from the server's own list (``vocabulary.REGISTRABLE_SCOPES``); never ``skip_consent``, ``require_mfa``,
  ``introspect_any`` or an ``audience`` override: those stay admin-only and
  are ignored if sent, like any metadata this server does not understand
  (RFC 7591 §2);
* the registration access token is random (256 bits), stored as a keyed hash
  on the client row, and replaced on every update (RFC 7592 §2.2): the update
  response carries the new one. A read never returns the client secret or the
  registration access token (only their hashes are stored);
* a client cannot switch between public (``none``) and confidential;
* redirect URIs by allow-list (:func:`clients.service.validate_redirect_uri`):
  ``https``, ``http`` on loopback only (RFC 8252 §7.3), private-use schemes in
  reverse-domain form only for native clients (``application_type`` ``native``
  or ``none`` authentication, RFC 8252 §7.1);
* a ``backchannel_logout_uri`` (OIDC Back-Channel Logout 1.0 §2.2) is ``https``, or
  ``http`` on loopback, like a redirect URI; the server posts logout tokens to it;
* ``client_name`` is printable text (no control, bidi or zero-width characters);
  ``client_uri``, ``logo_uri``, ``policy_uri`` and ``tos_uri`` must be https URLs
  when sent (they are not stored).
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from authserver.audit import service as audit
from authserver.clients import service as clients
from authserver.clients.errors import ClientError, UnknownRegistrationToken
from authserver.clients.models import Client, InitialAccessToken
from authserver.db import utcnow
from authserver.errors import AppError, bearer_challenge
from authserver.oauth import vocabulary as v
from authserver.security.crypto import SecretBox, new_token

DEFAULT_CLIENT_NAME = "Unnamed client"
MAX_URIS = 20
MAX_URI_LENGTH = 2000
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 200
#: RFC 7591 §2 human-facing URLs: checked when sent (https only), not stored
INFORMATION_URIS = ("client_uri", "logo_uri", "policy_uri", "tos_uri")


class RegistrationError(AppError):
    """A refusal with its HTTP status and an RFC 7591 §3.2.2 or RFC 6750 §3.1 ``error``
    code; rendered as JSON by :func:`authserver.errors.handle_app_error`."""

    json_only = True

    def __init__(self, status: int, error: str, description: str,
                 headers: dict[str, str] | None = None) -> None:
        # §3.2.2: ASCII; a refusal may quote what the client sent (a URI), so escape the rest
        super().__init__(description.encode("ascii", "backslashreplace").decode("ascii"), **(headers or {}))
        self.status_code = status
        self.error = error


def invalid_token(presented: bool) -> RegistrationError:
    """401 with a Bearer challenge; no error code when no token was sent (RFC 6750 §3.1)."""
    return RegistrationError(401, "invalid_token", "A valid bearer token is required.",
                             {"WWW-Authenticate": bearer_challenge("invalid_token" if presented else None)})


def _metadata_error(description: str) -> RegistrationError:
    return RegistrationError(400, "invalid_client_metadata", description)


def _redirect_error(description: str) -> RegistrationError:
    return RegistrationError(400, "invalid_redirect_uri", description)


# -- initial access tokens ---------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    """A new initial access token: its row and the plaintext, shown once and never stored."""

    row: InitialAccessToken
    token: str


def issue_initial_access_token(db: Session, box: SecretBox, description: str = "", *,
                               expires_in: int | None = None, actor: str | None = None) -> IssuedToken:
    """Mint an initial access token (RFC 7591 §3); ``actor`` names the administrator in
    the audit event. Raises :class:`ClientError` for a bad lifetime or description."""
    if expires_in is not None and expires_in <= 0:
        raise ClientError("expires-in must be a positive number of seconds")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise ClientError(f"description must be at most {MAX_DESCRIPTION_LENGTH} characters")
    if any(ord(c) < 32 for c in description):
        raise ClientError("description must be one line without control characters")
    token = new_token()
    expires_at = utcnow() + dt.timedelta(seconds=expires_in) if expires_in is not None else None
    row = InitialAccessToken(token_hash=box.keyed_hash(token), description=description,
                             expires_at=expires_at)
    db.add(row)
    db.flush()
    audit.record(db, "registration_token_created", token_id=row.id, description=description,
                 expires_at=expires_at.isoformat() if expires_at else None, **({"actor": actor} if actor else {}))
    return IssuedToken(row, token)


def create_initial_access_token(db: Session, box: SecretBox, description: str = "", *,
                                expires_in: int | None = None, actor: str | None = None) -> str:
    """:func:`issue_initial_access_token`, returning only the plaintext token."""
    return issue_initial_access_token(db, box, description, expires_in=expires_in, actor=actor).token


def list_initial_access_tokens(db: Session) -> list[InitialAccessToken]:
    """Every initial access token not yet removed by cleanup, oldest first (hashes only)."""
    return list(db.scalars(select(InitialAccessToken).order_by(InitialAccessToken.created_at,
                                                                InitialAccessToken.id)))


def revoke_initial_access_token(db: Session, token_id: int, *, actor: str) -> None:
    """Delete an initial access token so it can register no more clients; clients it
    registered stay. Raises :class:`ClientError` for an unknown id."""
    row = db.get(InitialAccessToken, token_id)
    if row is None:
        raise UnknownRegistrationToken(f"no such registration token: {token_id}")
    db.delete(row)
    audit.record(db, "registration_token_revoked", token_id=token_id, actor=actor)


def _check_initial_access_token(db: Session, box: SecretBox, token: str | None) -> InitialAccessToken:
    if not token:
        raise invalid_token(False)
    row = db.scalar(select(InitialAccessToken).where(
        InitialAccessToken.token_hash == box.keyed_hash(token)))
    if row is None or (row.expires_at is not None and row.expires_at <= utcnow()):
        raise invalid_token(True)
    return row


# -- metadata ----------------------------------------------------------------


def _string(body: dict[str, Any], name: str, default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _metadata_error(f"{name} must be a string")
    return value


def _string_list(body: dict[str, Any], name: str, default: list[str],
                 error: Callable[[str], RegistrationError] = _metadata_error) -> list[str]:
    value = body.get(name)
    if value is None:
        return list(default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise error(f"{name} must be an array of strings")
    return value


def _https_url(body: dict[str, Any], name: str) -> None:
    """``client_uri``, ``logo_uri``, ``policy_uri``, ``tos_uri`` (RFC 7591 §2): when sent,
    an https URL with a host, printable, at most :data:`MAX_URI_LENGTH` characters."""
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, str) or len(value) > MAX_URI_LENGTH or not value.isprintable() or " " in value:
        raise _metadata_error(f"{name} must be an https URL of at most {MAX_URI_LENGTH} characters")
    try:
        parts = urlsplit(value)
        ok = parts.scheme == "https" and bool(parts.hostname) and parts.username is None and parts.password is None
    except ValueError:
        ok = False
    if not ok:
        raise _metadata_error(f"{name} must be an https URL")


def parse_metadata(body: object) -> dict[str, Any]:
    """RFC 7591 §2 metadata from a JSON body, checked against the self-registration
    policy and the rules of :func:`clients.service.validate_metadata`."""
    if not isinstance(body, dict):
        raise _metadata_error("the request body must be a JSON object")
    grant_types = _string_list(body, "grant_types", [v.AUTHORIZATION_CODE])
    if v.PASSWORD in grant_types:
        raise _metadata_error("the password grant cannot be registered dynamically (RFC 9700, section 2.4)")
    for grant in grant_types:
        if grant not in v.REGISTRABLE_GRANT_TYPES:
            raise _metadata_error(f"unsupported grant type: {grant}")
    auth_method = _string(body, "token_endpoint_auth_method", v.DEFAULT_AUTH_METHOD)
    code_flow = v.AUTHORIZATION_CODE in grant_types

    response_types = _string_list(body, "response_types", list(v.RESPONSE_TYPES) if code_flow else [])
    for rtype in response_types:
        if rtype not in v.RESPONSE_TYPES:
            raise _metadata_error(f"unsupported response type: {rtype}")
    if bool(response_types) != code_flow:
        # RFC 7591 §2.1: response_type "code" goes with the authorization_code grant
        raise _metadata_error("response_types [\"code\"] and grant type authorization_code go together")

    application_type = _string(body, "application_type", "web")
    if application_type not in ("web", "native"):
        raise _metadata_error("application_type must be web or native (OpenID Connect Registration, section 2)")
    # RFC 8252: native apps are public clients; only they may use private-use URI schemes
    native = application_type == "native" or auth_method == "none"
    redirect_uris = _string_list(body, "redirect_uris", [], _redirect_error)
    if len(redirect_uris) > MAX_URIS:
        raise _redirect_error(f"at most {MAX_URIS} redirect URIs")
    for uri in redirect_uris:
        if len(uri) > MAX_URI_LENGTH:
            raise _redirect_error(f"redirect URIs must be at most {MAX_URI_LENGTH} characters")
        try:
            clients.validate_redirect_uri(uri, native=native)
        except ClientError as exc:
            raise _redirect_error(str(exc)) from None
    if code_flow and not redirect_uris:
        raise _redirect_error("authorization_code clients need at least one redirect URI")

    logout_uris = _string_list(body, "post_logout_redirect_uris", [])
    if len(logout_uris) > MAX_URIS or any(len(u) > MAX_URI_LENGTH for u in logout_uris):
        raise _metadata_error(f"at most {MAX_URIS} post-logout redirect URIs of at most "
                              f"{MAX_URI_LENGTH} characters")
    for uri in logout_uris:
        try:
            clients.validate_redirect_uri(uri, native=native)
        except ClientError as exc:
            raise _metadata_error(f"post_logout_redirect_uris: {exc}") from None
    for name in INFORMATION_URIS:
        _https_url(body, name)

    scope = _string(body, "scope", v.DEFAULT_SCOPE if code_flow else "")
    for s in scope.split():
        if s not in v.REGISTRABLE_SCOPES:
            raise _metadata_error(f"scope {s!r} cannot be registered (allowed: "
                                  f"{' '.join(v.REGISTRABLE_SCOPES)})")

    backchannel_uri = _string(body, "backchannel_logout_uri", "") or None
    session_required = body.get("backchannel_logout_session_required", False)
    if not isinstance(session_required, bool):
        raise _metadata_error("backchannel_logout_session_required must be a boolean")
    try:
        backchannel_uri = clients.validate_backchannel_logout_uri(backchannel_uri)
    except ClientError as exc:
        raise _metadata_error(str(exc)) from None

    client_name = _string(body, "client_name", DEFAULT_CLIENT_NAME).strip() or DEFAULT_CLIENT_NAME
    if len(client_name) > MAX_NAME_LENGTH:
        raise _metadata_error(f"client_name must be at most {MAX_NAME_LENGTH} characters")
    if not client_name.isprintable():
        # control, bidi and zero-width characters would let a name pose as another on the consent page
        raise _metadata_error("client_name must be printable text (no control, bidi or invisible characters)")
    dpop_bound = body.get("dpop_bound_access_tokens", False)
    if not isinstance(dpop_bound, bool):
        raise _metadata_error("dpop_bound_access_tokens must be true or false (RFC 9449, section 5.2)")
    jwks_uri = body.get("jwks_uri")
    if jwks_uri is not None and not isinstance(jwks_uri, str):
        raise _metadata_error("jwks_uri must be a string")
    par = body.get("require_pushed_authorization_requests", False)
    if not isinstance(par, bool):
        raise _metadata_error("require_pushed_authorization_requests must be true or false")
    try:
        metadata = clients.validate_metadata(
            client_name=client_name,
            redirect_uris=redirect_uris,
            grant_types=grant_types,
            scope=scope,
            token_endpoint_auth_method=auth_method,
            post_logout_redirect_uris=logout_uris,
            jwks=body.get("jwks"),
            jwks_uri=jwks_uri,
            id_token_signed_response_alg=_string(body, "id_token_signed_response_alg", v.ID_TOKEN_SIGNING_ALGS[0]),
        )
    except ClientError as exc:
        raise _metadata_error(str(exc)) from None
    # RFC 9126 §6: a client may ask to be held to PAR; only ever stricter, so self-registrable;
    # OIDC Back-Channel Logout 1.0 §2.2
    return {**metadata, "dpop_bound_access_tokens": dpop_bound, "require_pushed_authorization_requests": par,
            "backchannel_logout_uri": backchannel_uri, "backchannel_logout_session_required": session_required}


def client_information(client: Client, issuer: str) -> dict[str, Any]:
    """The registered metadata (RFC 7591 §3.2.1), never the secret or a token."""
    return {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created_at.timestamp()),
        "client_name": client.client_name,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": list(client.response_types),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "scope": client.scope,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
        **({"jwks": client.jwks} if client.jwks is not None else {}),
        **({"jwks_uri": client.jwks_uri} if client.jwks_uri is not None else {}),
        "registration_client_uri": f"{issuer}/register/{client.client_id}",
        **({"backchannel_logout_uri": client.backchannel_logout_uri,
            "backchannel_logout_session_required": client.backchannel_logout_session_required}
           if client.backchannel_logout_uri else {}),
    }


# -- RFC 7591 registration ---------------------------------------------------


def register_client(db: Session, box: SecretBox, *, initial_token: str | None, body: object,
                    issuer: str, ip: str | None = None) -> dict[str, Any]:
    """Register a client (RFC 7591 §3.1); returns the §3.2.1 response body."""
    _check_initial_access_token(db, box, initial_token)
    metadata = parse_metadata(body)
    try:
        new = clients.create_client(db, box, **{k: v for k, v in metadata.items() if k != "response_types"})
    except ClientError as exc:  # already checked by parse_metadata; kept as a safety net
        raise _metadata_error(str(exc)) from None
    client = new.client
    registration_token = new_token()
    client.registration_access_token_hash = box.keyed_hash(registration_token)
    db.flush()
    audit.record(db, "client_created", client_id=client.client_id, ip=ip, actor="registration",
                 grant_types=client.grant_types, auth_method=client.token_endpoint_auth_method)
    info = client_information(client, issuer)
    if new.client_secret is not None:
        info["client_secret"] = new.client_secret
        info["client_secret_expires_at"] = 0
    info["registration_access_token"] = registration_token
    return info


# -- RFC 7592 management -----------------------------------------------------


def _authorize(db: Session, box: SecretBox, client_id: str, token: str | None) -> Client:
    """The client whose registration access token this is; 401 otherwise, also for
    an unknown client (RFC 7592 §2.1: no hint whether it exists)."""
    if not token:
        raise invalid_token(False)
    client = clients.get_client(db, client_id)
    expected = client.registration_access_token_hash if client is not None else None
    if expected is None or not hmac.compare_digest(box.keyed_hash(token), expected):
        raise invalid_token(True)
    return client  # type: ignore[return-value]


def read_client(db: Session, box: SecretBox, *, client_id: str, token: str | None,
                issuer: str) -> dict[str, Any]:
    """RFC 7592 §2.1."""
    return client_information(_authorize(db, box, client_id, token), issuer)


def update_client(db: Session, box: SecretBox, *, client_id: str, token: str | None, body: object,
                  issuer: str, ip: str | None = None) -> dict[str, Any]:
    """RFC 7592 §2.2: replace the metadata; the response carries a new registration token."""
    client = _authorize(db, box, client_id, token)
    if not isinstance(body, dict):
        raise _metadata_error("the request body must be a JSON object")
    if body.get("client_id") != client.client_id:
        raise RegistrationError(400, "invalid_request", "client_id must match the client being updated")
    secret = body.get("client_secret")
    if secret is not None and not (
        isinstance(secret, str) and client.client_secret_hash is not None
        and box.verify_hash(secret, client.client_secret_hash)
    ):
        raise RegistrationError(400, "invalid_request", "client_secret does not match; it cannot be "
                                "chosen by the client")
    # registration_access_token, client_id_issued_at etc. echoed from a read are ignored
    metadata = parse_metadata(body)
    if (metadata["token_endpoint_auth_method"] == v.NONE) != client.is_public:
        raise _metadata_error("a client cannot switch between public (none) and confidential "
                              "authentication; register a new client")
    if ((metadata["token_endpoint_auth_method"] in v.SECRET_AUTH_METHODS)
            != (client.token_endpoint_auth_method in v.SECRET_AUTH_METHODS)):
        raise _metadata_error("a client cannot switch between a client secret and private_key_jwt; "
                              "register a new client")
    for key, value in metadata.items():
        setattr(client, key, value)
    registration_token = new_token()
    client.registration_access_token_hash = box.keyed_hash(registration_token)
    db.flush()
    audit.record(db, "client_updated", client_id=client.client_id, ip=ip, actor="registration",
                 grant_types=client.grant_types, auth_method=client.token_endpoint_auth_method)
    return {**client_information(client, issuer), "registration_access_token": registration_token}


def delete_registered_client(db: Session, box: SecretBox, *, client_id: str, token: str | None,
                             ip: str | None = None) -> None:
    """RFC 7592 §2.3: the client, its codes, refresh tokens and consents go (FK cascade)."""
    client = _authorize(db, box, client_id, token)
    db.delete(client)
    db.flush()
    audit.record(db, "client_deleted", client_id=client_id, ip=ip, actor="registration")
