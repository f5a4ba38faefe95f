"""``authserver registration-token create [--expires-in S] [--description D] [--json]``.

Mints an RFC 7591 initial access token for ``POST /register``. The token is
printed once (stored only as a keyed hash). ``cli.build_parser`` calls
:func:`add_registration_commands` with its top-level subparsers.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_registration_commands(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "registration-token", help="manage initial access tokens for dynamic client registration",
        description="manage initial access tokens for dynamic client registration (RFC 7591)")
    sub = group.add_subparsers(dest="registration_token_command", required=True, metavar="COMMAND")
    help_ = "mint an initial access token for POST /register (printed once)"
    p = sub.add_parser("create", help=help_, description=help_)
    p.set_defaults(handler=cmd_registration_token_create)
    p.add_argument("--expires-in", type=int, metavar="SECONDS",
                   help="lifetime in seconds (default: no expiry)")
    p.add_argument("--description", default="", help="what the token is for (shown to admins only)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_registration_token_create(args: argparse.Namespace) -> int:
    from authserver.cli import CliError, _context, _when
    from authserver.clients.registration import create_initial_access_token
    from authserver.db import transaction, utcnow

    if args.expires_in is not None and args.expires_in <= 0:
        raise CliError("--expires-in must be a positive number of seconds")
    issued = utcnow()
    with _context() as ctx, transaction(ctx.sessions) as db:
        token = create_initial_access_token(db, ctx.box, args.description, expires_in=args.expires_in)
    expires_at = int(issued.timestamp()) + args.expires_in if args.expires_in is not None else None
    if args.json:
        print(json.dumps({"initial_access_token": token, "expires_at": expires_at}))
    else:
        print(f"initial_access_token: {token}")
        print(f"expires_at:           {_when(expires_at) if expires_at else 'never'}")
        print("Store the token now: it is shown only once. Send it as `Authorization: Bearer` "
              "to POST /register.")
    return 0
