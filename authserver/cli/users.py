"""``authserver users create|list|show|disable|enable|delete|set-password|set-roles|unlock``.

Passwords come from a hidden prompt or one line of stdin, never from argv, and
are never printed or logged.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from authserver.accounts import mfa as factors
from authserver.accounts import service as accounts
from authserver.accounts.models import User
from authserver.cli import common
from authserver.db import transaction
from authserver.roles import service as roles


def add_commands(sub: common.SubParsers) -> None:
    users = common.group(sub, "users", "manage users")
    p = common.command(users, "create", cmd_create, "create a user (password from a prompt or stdin)", json=True)
    p.add_argument("--username", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from one line of standard input")
    p.add_argument("--role", action="append", default=[], help="may be repeated")
    p.add_argument("--name", help="display name (the OIDC `name` claim)")
    common.command(users, "list", cmd_list, "list users", json=True)
    p = common.command(users, "show", cmd_show, "show one user", json=True)
    p.add_argument("username", help="username or e-mail address")
    p = common.command(users, "disable", cmd_disable,
                "disable a user, end their sessions and revoke their tokens", json=True)
    p.add_argument("username")
    p = common.command(users, "enable", cmd_enable, "let a disabled user log in again")
    p.add_argument("username")
    p = common.command(users, "delete", cmd_delete, "delete a user, their sessions, tokens and consents")
    p.add_argument("username")
    p = common.command(users, "set-password", cmd_set_password,
                "set a user's password; ends their sessions and revokes their tokens")
    p.add_argument("username")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from one line of standard input")
    p = common.command(users, "set-roles", cmd_set_roles, "replace a user's roles (none clears them)", json=True)
    p.add_argument("username")
    p.add_argument("roles", nargs="*", metavar="ROLE")
    p = common.command(users, "unlock", cmd_unlock, "clear a user's lockout")
    p.add_argument("username")


def stdin_is_tty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def read_password(from_stdin: bool) -> str:
    """One line of stdin without its line break, or a hidden prompt asked twice."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise common.CliError("--password-stdin: no password on standard input")
        return password
    if not stdin_is_tty():
        raise common.CliError("no terminal to prompt for the password; use --password-stdin")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != password:
        raise common.CliError("the two passwords differ")
    if not password:
        raise common.CliError("the password must not be empty")
    return password


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def user_json(user: User) -> dict[str, object]:
    return {
        "sub": user.id,
        "username": user.username,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
        "roles": user.role_names,
        "disabled": user.disabled,
        "created_at": common.timestamp(user.created_at),
    }


def cmd_create(args: argparse.Namespace) -> int:
    with common.open_context() as ctx:
        password = read_password(args.password_stdin)
        with transaction(ctx.sessions) as db:
            user = accounts.create_user(db, ctx.passwords, username=args.username, email=args.email,
                                        password=password, roles=args.role, name=args.name, actor=common.ACTOR)
            body = user_json(user)
    if args.json:
        common.print_json(body)
    else:
        print(f"created user {body['username']} (sub {body['sub']})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        users = accounts.list_users(db)
        body = [user_json(u) for u in users]
        rows = [[u.username, u.email, ",".join(u.role_names) or "-", yes_no(u.disabled), common.when(u.created_at)]
                for u in users]
    if args.json:
        common.print_json(body)
    else:
        common.print_table(["USERNAME", "EMAIL", "ROLES", "DISABLED", "CREATED"], rows)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        user = accounts.require_user(db, args.username)
        mfa = factors.has_mfa(db, user.id)
        body = {**user_json(user), "mfa": mfa}
        lines = [
            ("sub", user.id), ("username", user.username), ("email", user.email),
            ("email_verified", yes_no(user.email_verified)), ("name", user.name or "-"),
            ("roles", ",".join(user.role_names) or "-"), ("disabled", yes_no(user.disabled)),
            ("mfa", yes_no(mfa)), ("created_at", common.when(user.created_at)),
        ]
    if args.json:
        common.print_json(body)
    else:
        for name, value in lines:
            print(f"{name + ':':<16}{value}")
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        user = accounts.require_user(db, args.username)
        ended = accounts.disable_user(db, ctx.revoked, user, actor=common.ACTOR)
        username = user.username
    if args.json:
        common.print_json({"username": username, "already_disabled": ended is None,
                    "sessions_ended": ended.sessions if ended else 0,
                    "refresh_tokens_revoked": ended.refresh_tokens if ended else 0})
    elif ended is None:
        print(f"{username} is already disabled")
    else:
        print(f"disabled {username}: {ended.sessions} session(s) ended, "
              f"{ended.refresh_tokens} refresh token(s) revoked")
    return 0


def cmd_enable(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        user = accounts.require_user(db, args.username)
        changed = accounts.enable_user(db, user, actor=common.ACTOR)
        username = user.username
    print(f"enabled {username}" if changed else f"{username} is not disabled")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        user = accounts.require_user(db, args.username)
        username = user.username
        ended = accounts.delete_user(db, ctx.revoked, user, actor=common.ACTOR)
    print(f"deleted {username}: {ended.sessions} session(s) ended, "
          f"{ended.refresh_tokens} refresh token(s) revoked")
    return 0


def cmd_set_password(args: argparse.Namespace) -> int:
    with common.open_context() as ctx:
        password = read_password(args.password_stdin)
        with transaction(ctx.sessions) as db:
            user = accounts.require_user(db, args.username)
            accounts.set_password(db, ctx, user, password, event="password_set_by_admin", actor=common.ACTOR)
            username = user.username
    print(f"{username}: password set; sessions ended and tokens revoked")
    return 0


def cmd_set_roles(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        user = accounts.require_user(db, args.username)
        held = roles.set_user_roles(db, user, args.roles, actor=common.ACTOR)
        username = user.username
    if args.json:
        common.print_json({"username": username, "roles": held})
    else:
        print(f"{username}: roles {', '.join(held) or '(none)'}")
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    with common.open_context() as ctx:
        if ctx.redis is None:
            raise common.CliError(
                "without AUTHSERVER_REDIS_URL the lockout counters live inside the server process; "
                "restart the server to clear them (locks also expire by themselves)"
            )
        ctx.redis.ping()  # a lock in Redis cannot be cleared while Redis is down
        with transaction(ctx.sessions) as db:
            user = accounts.require_user(db, args.username)
            accounts.unlock_user(db, ctx.lockout, user, actor=common.ACTOR)
            if getattr(ctx.counters, "degraded", False):  # the audit row is rolled back
                raise common.CliError("Redis became unreachable; the lock was not cleared")
            print(f"unlocked {user.username}")
    return 0
