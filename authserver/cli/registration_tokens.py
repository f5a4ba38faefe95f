"""``authserver registration-token create|list|revoke``.

Initial access tokens for dynamic client registration (RFC 7591 §3): the
token is printed once and stored only as a keyed hash.
"""

from __future__ import annotations

import argparse

from authserver.cli import common
from authserver.clients import registration
from authserver.db import transaction, utcnow


def add_commands(sub: common.SubParsers) -> None:
    tokens = common.group(sub, "registration-token",
                   "manage initial access tokens for dynamic client registration (RFC 7591)")
    p = common.command(tokens, "create", cmd_create, "mint an initial access token for POST /register (printed once)",
                json=True)
    p.add_argument("--expires-in", type=int, metavar="SECONDS", help="lifetime in seconds (default: no expiry)")
    p.add_argument("--description", default="", help="what the token is for (shown to admins only)")
    common.command(tokens, "list", cmd_list, "list initial access tokens (never the tokens themselves)", json=True)
    p = common.command(tokens, "revoke", cmd_revoke, "revoke an initial access token by its id")
    p.add_argument("id", type=int, help="the ID column of `registration-token list`")


def cmd_create(args: argparse.Namespace) -> int:
    if args.expires_in is not None and args.expires_in <= 0:
        raise common.CliError("--expires-in must be a positive number of seconds")
    issued = utcnow()
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        token = registration.create_initial_access_token(db, ctx.box, args.description,
                                                         expires_in=args.expires_in)
    expires_at = int(issued.timestamp()) + args.expires_in if args.expires_in is not None else None
    if args.json:
        common.print_json({"initial_access_token": token, "expires_at": expires_at})
    else:
        print(f"initial_access_token: {token}")
        print(f"expires_at:           {common.when(expires_at) if expires_at else 'never'}")
        print("Store the token now: it is shown only once. Send it as `Authorization: Bearer` "
              "to POST /register.")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        rows = registration.list_initial_access_tokens(db)
        body = [{"id": r.id, "description": r.description, "created_at": common.timestamp(r.created_at),
                 "expires_at": common.timestamp(r.expires_at)} for r in rows]
        table = [[str(r.id), r.description or "-", common.when(r.created_at),
                  common.when(r.expires_at) if r.expires_at else "never"] for r in rows]
    if args.json:
        common.print_json(body)
    else:
        common.print_table(["ID", "DESCRIPTION", "CREATED", "EXPIRES"], table)
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        registration.revoke_initial_access_token(db, args.id, actor=common.ACTOR)
    print(f"revoked registration token {args.id}")
    return 0
