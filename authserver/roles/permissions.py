"""Permissions: the grammar, the admin vocabulary, the built-in roles, and who may do what.

A permission is a ``resource:action`` string (``orders:read``,
``admin:users:write``): two to five lowercase segments separated by ``:``.
Permissions are exact strings, never patterns: a resource server compares them
with ``in`` (docs/roles.md).

The server's own admin surface uses the ``admin:`` permissions below, spelt
here once; the admin API asks :func:`permissions_for` what the caller may do
and never trusts permissions carried in a token. The ``authserver:admin``
scope opens the door; the roles of the user or client decide what is allowed
inside.

Access tokens carry the permissions of the ``roles`` scope filtered by the
client's ``permission_prefixes`` (:func:`concerning`): one API does not learn
another's permissions (RFC 9068 §2.2.3.1, docs/roles.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from authserver.accounts.models import User, UserRole
from authserver.clients.models import Client
from authserver.oauth.vocabulary import ADMIN_SCOPE
from authserver.roles.models import ClientRole, RolePermission

PERMISSION = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}(:[a-z0-9][a-z0-9_.-]{0,62}){1,4}$")
#: a ``permission_prefixes`` entry: one to four whole segments
PREFIX = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}(:[a-z0-9][a-z0-9_.-]{0,62}){0,3}$")
MAX_PERMISSION_LENGTH: Final = 200

READ: Final = "read"
WRITE: Final = "write"

#: admin resource → the actions it has; ``admin:<resource>:<action>``
ADMIN_RESOURCES: Final[dict[str, tuple[str, ...]]] = {
    "users": (READ, WRITE),
    "clients": (READ, WRITE),
    "keys": (READ, WRITE),
    "consents": (READ, WRITE),
    "registration_tokens": (READ, WRITE),
    "deny_list": (READ, WRITE),
    "audit": (READ,),
    "roles": (READ, WRITE),
    "sessions": (READ, WRITE),
}


def admin_permission(resource: str, action: str) -> str:
    """``admin:<resource>:<action>``; raises ``KeyError``/``ValueError`` for a word not above,
    so a typo in an admin route fails at import, not at request time."""
    if action not in ADMIN_RESOURCES[resource]:
        raise ValueError(f"admin:{resource} has no action {action!r}")
    return f"admin:{resource}:{action}"


ADMIN_PERMISSIONS: Final[tuple[str, ...]] = tuple(
    admin_permission(resource, action) for resource, actions in ADMIN_RESOURCES.items() for action in actions)
ADMIN_READ_PERMISSIONS: Final[tuple[str, ...]] = tuple(p for p in ADMIN_PERMISSIONS if p.endswith(f":{READ}"))


@dataclass(frozen=True)
class BuiltInRole:
    description: str
    permissions: tuple[str, ...]


ADMIN_ROLE: Final = "admin"
AUDITOR_ROLE: Final = "auditor"
SUPPORT_ROLE: Final = "support"

#: seeded by migration 0003 (a frozen copy there; a test keeps them equal); editable, never deletable
BUILT_IN_ROLES: Final[dict[str, BuiltInRole]] = {
    ADMIN_ROLE: BuiltInRole("Administrators: every admin permission", ADMIN_PERMISSIONS),
    AUDITOR_ROLE: BuiltInRole("Auditors: read everything on the admin surface, change nothing",
                              ADMIN_READ_PERMISSIONS),
    SUPPORT_ROLE: BuiltInRole("Support: users and their sessions", (
        admin_permission("users", READ), admin_permission("users", WRITE),
        admin_permission("sessions", READ), admin_permission("sessions", WRITE))),
}


def is_permission(value: str) -> bool:
    return len(value) <= MAX_PERMISSION_LENGTH and PERMISSION.fullmatch(value) is not None


def is_prefix(value: str) -> bool:
    return len(value) <= MAX_PERMISSION_LENGTH and PREFIX.fullmatch(value) is not None


def concerning(permissions: Iterable[str], prefixes: Iterable[str]) -> list[str]:
    """The permissions that start with one of ``prefixes`` in whole segments, sorted:
    prefix ``orders`` keeps ``orders:read`` and ``orders:items:write``, not ``ordersx:read``.
    No prefixes, no permissions."""
    heads = tuple(f"{p}:" for p in prefixes)
    if not heads:
        return []
    return sorted(p for p in permissions if p.startswith(heads))


@dataclass(frozen=True)
class Access:
    """What a user or client holds: role names (sorted) and the union of their permissions."""

    roles: tuple[str, ...]
    permissions: frozenset[str]


NO_ACCESS: Final = Access((), frozenset())


def _collect(rows: Iterable[tuple[str, str | None]]) -> Access:
    roles: set[str] = set()
    permissions: set[str] = set()
    for role, permission in rows:
        roles.add(role)
        if permission is not None:
            permissions.add(permission)
    return Access(tuple(sorted(roles)), frozenset(permissions))


def user_access(db: Session, user_id: str) -> Access:
    """The user's roles and permissions in one query (the token hot path: the
    ``user_roles`` primary key and the ``role_permissions`` primary key serve it)."""
    rows = db.execute(
        select(UserRole.role, RolePermission.permission)
        .outerjoin(RolePermission, RolePermission.role == UserRole.role)
        .where(UserRole.user_id == user_id))
    return _collect((r, p) for r, p in rows)


def client_access(db: Session, client_id: str, registered_scope: str) -> Access:
    """The client's own roles and permissions (for ``client_credentials`` tokens and
    the admin API), in one query; a client registered with ``authserver:admin`` and
    no role has the built-in ``admin`` role (so automation set up before roles
    keeps its access), at the cost of a second query."""
    rows: list[tuple[str, str | None]] = [(r, p) for r, p in db.execute(
        select(ClientRole.role, RolePermission.permission)
        .outerjoin(RolePermission, RolePermission.role == ClientRole.role)
        .where(ClientRole.client_id == client_id))]
    if not rows and ADMIN_SCOPE in registered_scope.split():
        rows = [(ADMIN_ROLE, p) for p in db.scalars(
            select(RolePermission.permission).where(RolePermission.role == ADMIN_ROLE))]
        rows = rows or [(ADMIN_ROLE, None)]
    return _collect(rows)


def permissions_for(session: Session, *, user_id: str | None = None, client_id: str | None = None) -> frozenset[str]:
    """Every permission the user or the client (exactly one of them) holds through its roles.

    An unknown or disabled user, or an unknown client, holds none. The admin API
    calls this with the token's ``sub`` (a user) or its ``client_id`` (a
    ``client_credentials`` token, whose ``sub`` is the client), and checks the
    route's ``admin:…`` permission against the result.
    """
    if (user_id is None) == (client_id is None):
        raise ValueError("give exactly one of user_id and client_id")
    if user_id is not None:
        disabled = session.scalar(select(User.disabled).where(User.id == user_id))
        if disabled is None or disabled:
            return frozenset()
        return user_access(session, user_id).permissions
    assert client_id is not None
    scope = session.scalar(select(Client.scope).where(Client.client_id == client_id))
    if scope is None:
        return frozenset()
    return client_access(session, client_id, scope).permissions
