"""Managing roles: create, list, show, update, delete, grant and revoke permissions,
and set the roles of a user or a client.

The CLI, the admin API and the admin console all call these functions; each
change is an audit event naming the ``actor`` (the administrator's user id or
client id, or ``cli``). Reading what a principal may do is
:mod:`authserver.roles.permissions`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from authserver.accounts.models import User, UserRole
from authserver.audit import service as audit
from authserver.clients.errors import ClientError
from authserver.clients.models import Client
from authserver.clients.service import validate_permission_prefixes
from authserver.roles.errors import RoleError, UnknownRole
from authserver.roles.models import ClientRole, Role, RolePermission
from authserver.roles.permissions import BUILT_IN_ROLES, is_permission

#: the role names ``user_roles`` has always accepted, so every existing name stays valid
NAME = re.compile(r"^[A-Za-z0-9:._-]{1,100}$")
MAX_DESCRIPTION = 500


def _name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise RoleError(f"invalid role name: {name!r} (1-100 letters, digits, ':', '.', '_' or '-')")
    return name


def _permissions(permissions: Iterable[str]) -> list[str]:
    """Validated, deduplicated, sorted ``resource:action`` strings."""
    checked = []
    for permission in permissions:
        if not isinstance(permission, str) or not is_permission(permission):
            raise RoleError(f"invalid permission: {permission!r} (resource:action, lowercase, "
                            "2-5 segments of letters, digits, '.', '_' or '-')")
        checked.append(permission)
    return sorted(set(checked))


def _description(description: str) -> str:
    description = description.strip()
    if len(description) > MAX_DESCRIPTION or any(ord(c) < 32 for c in description):
        raise RoleError(f"description must be one line of at most {MAX_DESCRIPTION} characters")
    return description


def get_role(db: Session, name: str) -> Role | None:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        return None
    return db.get(Role, name)


def require_role(db: Session, name: str) -> Role:
    """The role; raises :class:`UnknownRole` when there is none."""
    role = get_role(db, name)
    if role is None:
        raise UnknownRole(f"no such role: {name}")
    return role


def list_roles(db: Session) -> list[Role]:
    return list(db.scalars(select(Role).order_by(Role.name)))


def holders(db: Session, name: str) -> tuple[int, int]:
    """How many users and how many clients hold the role."""
    users = db.scalar(select(func.count()).select_from(UserRole).where(UserRole.role == name)) or 0
    clients = db.scalar(select(func.count()).select_from(ClientRole).where(ClientRole.role == name)) or 0
    return users, clients


def create_role(db: Session, name: str, *, description: str = "", permissions: Iterable[str] = (),
                actor: str) -> Role:
    """Store a new role; raises :class:`RoleError` for bad input or a name in use."""
    name = _name(name)
    checked = _permissions(permissions)
    description = _description(description)
    if db.get(Role, name) is not None:
        raise RoleError(f"a role named {name} already exists")
    role = Role(name=name, description=description,
                grants=[RolePermission(permission=p) for p in checked])
    db.add(role)
    db.flush()
    audit.record(db, "role_created", actor=actor, role=name, permissions=checked)
    return role


def update_role(db: Session, name: str, *, description: str | None = None,
                permissions: Iterable[str] | None = None, actor: str) -> Role:
    """Change the description and/or replace the permissions (built-in roles too).

    Tokens already issued keep what they carry until they expire; new tokens,
    refreshes and the admin API see the change at once.
    """
    role = require_role(db, name)
    new_description = None if description is None else _description(description)
    wanted = None if permissions is None else _permissions(permissions)
    if new_description is not None:
        role.description = new_description
    if wanted is not None:
        _replace_permissions(role, wanted)
    if new_description is not None or wanted is not None:
        db.flush()
        audit.record(db, "role_updated", actor=actor, role=name, description=new_description, permissions=wanted)
    return role


def _replace_permissions(role: Role, wanted: Sequence[str]) -> None:
    keep = set(wanted)
    role.grants = [g for g in role.grants if g.permission in keep]
    have = {g.permission for g in role.grants}
    role.grants.extend(RolePermission(permission=p) for p in wanted if p not in have)


def grant_permission(db: Session, name: str, permission: str, *, actor: str) -> bool:
    """Add a permission to the role; False when it already had it (nothing recorded)."""
    role = require_role(db, name)
    (permission,) = _permissions([permission])
    if permission in role.permissions:
        return False
    role.grants.append(RolePermission(permission=permission))
    db.flush()
    audit.record(db, "role_permission_granted", actor=actor, role=name, permission=permission)
    return True


def revoke_permission(db: Session, name: str, permission: str, *, actor: str) -> bool:
    """Remove a permission from the role; False when it did not have it."""
    role = require_role(db, name)
    kept = [g for g in role.grants if g.permission != permission]
    if len(kept) == len(role.grants):
        return False
    role.grants = kept
    db.flush()
    audit.record(db, "role_permission_revoked", actor=actor, role=name, permission=permission)
    return True


def delete_role(db: Session, name: str, *, actor: str) -> tuple[int, int]:
    """Delete the role and its assignments; returns how many users and clients lost it.

    Built-in roles cannot be deleted (the admin surface and the ``authserver:admin``
    client rule depend on them); empty their permissions instead.
    """
    role = require_role(db, name)
    if role.built_in or name in BUILT_IN_ROLES:
        raise RoleError(f"{name} is a built-in role: it can be edited, not deleted")
    users, clients = holders(db, name)
    db.delete(role)
    db.flush()
    audit.record(db, "role_deleted", actor=actor, role=name, users=users, clients=clients)
    return users, clients


def _existing(db: Session, names: Sequence[str]) -> list[str]:
    wanted = list(dict.fromkeys(_name(n) for n in names))
    if wanted:
        found = set(db.scalars(select(Role.name).where(Role.name.in_(wanted))))
        missing = [n for n in wanted if n not in found]
        if missing:
            raise UnknownRole(f"no such role: {', '.join(missing)}")
    return wanted


def check_roles(db: Session, names: Sequence[str]) -> list[str]:
    """The names, deduplicated, each an existing role; raises :class:`RoleError` otherwise."""
    return _existing(db, names)


def set_user_roles(db: Session, user: User, names: Sequence[str], *, actor: str) -> list[str]:
    """Replace the user's roles (each must exist); returns the sorted names.

    Tokens already issued keep the roles they carry until they expire.
    """
    wanted = _existing(db, names)
    before = user.role_names
    user.roles = [r for r in user.roles if r.role in wanted]
    have = {r.role for r in user.roles}
    user.roles.extend(UserRole(role=r) for r in wanted if r not in have)
    db.flush()
    after = sorted(wanted)
    if after != before:
        audit.record(db, "user_roles_changed", user_id=user.id, actor=actor, roles=after, previous=before)
    return after


def client_roles(db: Session, client_id: str) -> list[str]:
    """The roles assigned to the client (without the ``authserver:admin`` default)."""
    return list(db.scalars(select(ClientRole.role).where(ClientRole.client_id == client_id)
                           .order_by(ClientRole.role)))


def set_client_roles(db: Session, client: Client, names: Sequence[str], *, actor: str) -> list[str]:
    """Replace the roles the client holds for its own tokens (``client_credentials``);
    returns the sorted names. An ``authserver:admin`` client left with no role falls
    back to the built-in ``admin`` role (:func:`permissions.client_access`)."""
    wanted = _existing(db, names)
    before = client_roles(db, client.client_id)
    for row in db.scalars(select(ClientRole).where(ClientRole.client_id == client.client_id)):
        if row.role not in wanted:
            db.delete(row)
    db.add_all(ClientRole(client_id=client.client_id, role=r) for r in wanted if r not in before)
    db.flush()
    after = sorted(wanted)
    if after != before:
        audit.record(db, "client_roles_changed", client_id=client.client_id, actor=actor, roles=after,
                     previous=before)
    return after


def set_client_permission_prefixes(db: Session, client: Client, prefixes: Sequence[str], *,
                                  actor: str) -> list[str]:
    """Choose which permissions the client's access tokens carry: those under these
    whole-segment prefixes (the ones that concern its audience). Raises
    :class:`RoleError` for a malformed prefix."""
    try:
        wanted = validate_permission_prefixes(list(prefixes))
    except ClientError as exc:
        raise RoleError(str(exc)) from None
    if wanted != client.permission_prefixes:
        client.permission_prefixes = wanted
        db.flush()
        audit.record(db, "client_updated", client_id=client.client_id, actor=actor, permission_prefixes=wanted)
    return wanted


def seed_built_in_roles(db: Session) -> None:
    """Create any missing built-in role with its default permissions (the migration
    seeds them; this restores them after tests empty the tables). Existing roles
    are left as edited."""
    for name, built_in in BUILT_IN_ROLES.items():
        if db.get(Role, name) is None:
            db.add(Role(name=name, description=built_in.description, built_in=True,
                        grants=[RolePermission(permission=p) for p in built_in.permissions]))
    db.flush()
