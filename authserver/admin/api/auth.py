"""Who is calling the admin API, and may they do this.

A caller presents an access token of this server (RFC 6750 §2.1, header only): the
signature, ``iss``, ``exp``, ``typ: at+jwt`` and the revoked-``jti`` list are checked
exactly as introspection checks them (``TokenIssuer.verify_access_token``). The
scope ``authserver:admin`` opens the door; the roles of the user (``sub``) or of
the client (a ``client_credentials`` token, whose ``sub`` is its ``client_id``,
RFC 9068 §2.2) decide what is allowed inside (docs/roles.md). Permissions carried
in the token are never trusted: they are read from the database on each request,
so a role taken away stops working at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from authserver.context import Context
from authserver.errors import AppError, InsufficientScope, InvalidToken, MissingToken
from authserver.oauth.vocabulary import ADMIN_SCOPE
from authserver.roles.permissions import permissions_for


class PermissionDenied(AppError):
    """The caller's roles lack the operation's permission (403)."""

    status_code = 403
    error = "forbidden"
    hint = "Your roles do not allow this."
    json_only = True


@dataclass(frozen=True)
class Admin:
    """The authenticated caller: ``actor`` is what audit events name (the user's ``sub``
    or the client's ``client_id``)."""

    actor: str
    is_client: bool
    permissions: frozenset[str]


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header; raises :class:`MissingToken`."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise MissingToken
    return token


def authenticate(ctx: Context, db: Session, token: str) -> Admin:
    """The caller of a valid admin token; raises :class:`InvalidToken` (401) or
    :class:`InsufficientScope` (403) per RFC 6750 §3.1."""
    claims = ctx.oauth.token_issuer.verify_access_token(token)
    if claims is None:
        raise InvalidToken
    if ADMIN_SCOPE not in str(claims.get("scope", "")).split():
        raise InsufficientScope(f"The access token lacks the {ADMIN_SCOPE} scope.")
    sub, client_id = str(claims["sub"]), claims.get("client_id")
    if sub == client_id and "auth_time" not in claims:
        return Admin(sub, True, permissions_for(db, client_id=sub))
    return Admin(sub, False, permissions_for(db, user_id=sub))


def authorize(admin: Admin, permission: str) -> None:
    """Raise :class:`PermissionDenied` unless the caller holds ``permission``."""
    if permission not in admin.permissions:
        raise PermissionDenied(f"Your roles do not grant {permission}.")
