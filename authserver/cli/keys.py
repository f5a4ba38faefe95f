"""``authserver keys rotate|list|import``: the signing keys in the database.

A new key is published in the JWKS at once and signs only after the larger of
the activation delay and the JWKS max-age, so every relying party can fetch it
first (RFC 7517 §4.5 ``kid``). ``import DIR`` stores key files of earlier
versions, keeping their ``kid``s.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from authserver.cli import common
from authserver.db import transaction
from authserver.keys import service as keys_service
from authserver.keys.service import SigningKey


def add_commands(sub: common.SubParsers) -> None:
    keys = common.group(sub, "keys", "manage signing keys")
    p = common.command(keys, "rotate", cmd_rotate, "add a signing key, used after the activation delay", json=True)
    p.add_argument("--delay", type=int, metavar="SECONDS",
                   help="seconds before it signs (default: AUTHSERVER_KEY_ACTIVATION_DELAY, "
                        "at least AUTHSERVER_JWKS_MAX_AGE)")
    common.command(keys, "list", cmd_list, "list signing keys and their status", json=True)
    p = common.command(keys, "import", cmd_import,
                       "store the <kid>.pem/<kid>.json key files of DIR in the database (kids kept)", json=True)
    p.add_argument("directory", metavar="DIR")


def key_json(key: SigningKey) -> dict[str, object]:
    return {"kid": key.kid, "alg": key.alg, "status": key.status, "created_at": key.created_at,
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
    print("(with an ES256 and an EdDSA key for ID tokens, on the same schedule: `keys list`)")
    print("Every node loads it from the database within a second.")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    if not directory.is_dir():
        raise common.CliError(f"{directory} is not a directory")
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        kids = keys_service.import_dir(db, ctx.keys, directory, actor=common.ACTOR)
    if args.json:
        common.print_json({"imported": kids})
    else:
        print(f"imported {len(kids)} key(s){': ' + ' '.join(kids) if kids else ''}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with common.open_context() as ctx:
        keys = ctx.keys.keys()
    if args.json:
        common.print_json([key_json(k) for k in keys])
        return 0
    common.print_table(["KID", "STATUS", "ALG", "CREATED", "ACTIVATES", "RETIRES"], [
        [k.kid, k.status, k.alg, common.when(k.created_at), common.when(k.activates_at),
         common.when(k.retires_at)]
        for k in keys
    ])
    return 0
