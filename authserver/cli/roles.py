"""``authserver roles create|list|show|update|grant|revoke|delete`` (docs/roles.md).

Roles carry ``resource:action`` permissions; ``admin``, ``auditor`` and
``support`` are built in (editable, not deletable). Every change is an audit
event naming the actor ``cli``. ``users set-roles`` and ``clients set-roles``
give roles to users and clients.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from sqlalchemy.orm import Session

from authserver.cli import common
from authserver.db import transaction
from authserver.roles import service as roles
from authserver.roles.models import Role


def add_commands(sub: common.SubParsers) -> None:
    roles_ = common.group(sub, "roles", "manage roles and their permissions")
    p = common.command(roles_, "create", cmd_create, "create a role", json=True)
    p.add_argument("name")
    p.add_argument("--description", default="")
    p.add_argument("--permission", action="extend", nargs="+", default=[], metavar="PERMISSION",
                   help="resource:action, e.g. orders:read (may be repeated)")
    common.command(roles_, "list", cmd_list, "list roles and their permissions", json=True)
    p = common.command(roles_, "show", cmd_show, "show a role, its permissions and how many users and clients hold it",
                json=True)
    p.add_argument("name")
    p = common.command(roles_, "update", cmd_update, "change a role's description", json=True)
    p.add_argument("name")
    p.add_argument("--description", required=True)
    p = common.command(roles_, "grant", cmd_grant, "add permissions to a role", json=True)
    p.add_argument("name")
    p.add_argument("permissions", nargs="+", metavar="PERMISSION")
    p = common.command(roles_, "revoke", cmd_revoke, "remove permissions from a role", json=True)
    p.add_argument("name")
    p.add_argument("permissions", nargs="+", metavar="PERMISSION")
    p = common.command(roles_, "delete", cmd_delete, "delete a role (not a built-in one); its holders lose it",
                json=True)
    p.add_argument("name")


@dataclass(frozen=True)
class RoleView:
    name: str
    description: str
    built_in: bool
    permissions: list[str]
    users: int
    clients: int

    @classmethod
    def of(cls, db: Session, role: Role) -> RoleView:
        users, clients = roles.holders(db, role.name)
        return cls(role.name, role.description, role.built_in, role.permissions, users, clients)

    def json(self) -> dict[str, object]:
        return {"name": self.name, "description": self.description, "built_in": self.built_in,
                "permissions": self.permissions, "users": self.users, "clients": self.clients}

    def print(self) -> None:
        for label, value in (("name", self.name), ("description", self.description or "-"),
                             ("built_in", "yes" if self.built_in else "no"),
                             ("permissions", " ".join(self.permissions) or "-"),
                             ("users", str(self.users)), ("clients", str(self.clients))):
            print(f"{label + ':':<13}{value}")


def show(args: argparse.Namespace, view: RoleView, message: str | None = None) -> int:
    if args.json:
        common.print_json(view.json())
    elif message is not None:
        print(message)
    else:
        view.print()
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        role = roles.create_role(db, args.name, description=args.description, permissions=args.permission,
                                 actor=common.ACTOR)
        view = RoleView.of(db, role)
    return show(args, view, f"created role {view.name}: {' '.join(view.permissions) or 'no permissions'}")


def cmd_list(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        views = [RoleView.of(db, r) for r in roles.list_roles(db)]
    if args.json:
        common.print_json([v.json() for v in views])
    else:
        common.print_table(["NAME", "BUILT-IN", "USERS", "CLIENTS", "PERMISSIONS"],
                    [[v.name, "yes" if v.built_in else "no", str(v.users), str(v.clients),
                      " ".join(v.permissions) or "-"] for v in views])
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        view = RoleView.of(db, roles.require_role(db, args.name))
    return show(args, view)


def cmd_update(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        view = RoleView.of(db, roles.update_role(db, args.name, description=args.description, actor=common.ACTOR))
    return show(args, view, f"updated role {view.name}")


def cmd_grant(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        added = [p for p in dict.fromkeys(args.permissions)
                 if roles.grant_permission(db, args.name, p, actor=common.ACTOR)]
        view = RoleView.of(db, roles.require_role(db, args.name))
    return show(args, view, f"{view.name}: granted {' '.join(added) or 'nothing new'}; "
                            f"now {' '.join(view.permissions) or 'no permissions'}")


def cmd_revoke(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        removed = [p for p in dict.fromkeys(args.permissions)
                   if roles.revoke_permission(db, args.name, p, actor=common.ACTOR)]
        view = RoleView.of(db, roles.require_role(db, args.name))
    return show(args, view, f"{view.name}: revoked {' '.join(removed) or 'nothing (it did not have them)'}; "
                            f"now {' '.join(view.permissions) or 'no permissions'}")


def cmd_delete(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        users, clients = roles.delete_role(db, args.name, actor=common.ACTOR)
    if args.json:
        common.print_json({"name": args.name, "deleted": True, "users": users, "clients": clients})
    else:
        print(f"deleted role {args.name}: removed from {users} user(s) and {clients} client(s)")
    return 0
