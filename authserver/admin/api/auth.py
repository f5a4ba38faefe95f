"""Who is calling the admin API, and may they do this.

A caller presents an access token of this server in the header: ``Bearer`` (RFC 6750
§2.1), or ``DPoP`` with a proof for a DPoP-bound token (RFC 9449 §7.1; a bound token
sent as Bearer is refused, §7.2 — a client registered with ``dpop_bound_access_tokens``
gets only bound tokens, so the API must take them). The
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
from authserver.errors import AppError, InsufficientScope, InvalidToken
from authserver.oauth import dpop
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


def authenticate(ctx: Context, db: Session, presented: dpop.Presented) -> Admin:
    """The caller of a valid admin token (:func:`authserver.oauth.dpop.presented`); raises
    :class:`InvalidToken` (401) or :class:`InsufficientScope` (403) per RFC 6750 §3.1, or a
    DPoP refusal (401, :func:`authserver.oauth.dpop.check_presented`)."""
    claims = ctx.oauth.token_issuer.verify_access_token(presented.token)
    if claims is None:
        raise InvalidToken
    dpop.check_presented(ctx.oauth.dpop, claims, presented)
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
