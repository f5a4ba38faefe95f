"""``authserver keys rotate|list``: the signing keys in ``AUTHSERVER_KEYS_DIR``.

A new key is published in the JWKS at once and signs only after the
activation delay, so every relying party can fetch it first (RFC 7517 §4.5 ``kid``).
"""

from __future__ import annotations

import argparse
import time

from authserver.cli import common
from authserver.db import transaction
from authserver.keys import service as keys_service
from authserver.keys.service import SigningKey


def add_commands(sub: common.SubParsers) -> None:
    keys = common.group(sub, "keys", "manage signing keys")
    p = common.command(keys, "rotate", cmd_rotate, "add a signing key, used after the activation delay", json=True)
    p.add_argument("--delay", type=int, metavar="SECONDS",
                   help="seconds before it signs (default AUTHSERVER_KEY_ACTIVATION_DELAY)")
    common.command(keys, "list", cmd_list, "list signing keys and their status", json=True)


def key_json(key: SigningKey) -> dict[str, object]:
    return {"kid": key.kid, "status": key.status, "created_at": key.created_at,
            "activates_at": key.activates_at, "retires_at": key.retires_at}


def cmd_rotate(args: argparse.Namespace) -> int:
    if args.delay is not None and args.delay < 0:
        raise common.CliError("--delay must be zero or more seconds")
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        key = keys_service.rotate(db, ctx.keys, delay=args.delay, actor=common.ACTOR)
    if args.json:
        common.print_json({"kid": key.kid, "created_at": key.created_at, "activates_at": key.activates_at})
        return 0
    print(f"new key {key.kid}: published now, signs from {common.when(key.activates_at)}")
    if key.activates_at > int(time.time()):
        print("Every server must see this key file before then (a shared AUTHSERVER_KEYS_DIR).")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with common.open_context(need_database=False) as ctx:
        keys = ctx.keys.keys()
    if args.json:
        common.print_json([key_json(k) for k in keys])
        return 0
    common.print_table(["KID", "STATUS", "CREATED", "ACTIVATES", "RETIRES"], [
        [k.kid, k.status, common.when(k.created_at), common.when(k.activates_at), common.when(k.retires_at)]
        for k in keys
    ])
    return 0
