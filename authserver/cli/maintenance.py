"""``authserver cleanup`` and ``authserver deny-list add|remove|list``."""

from __future__ import annotations

import argparse

from authserver.cli import common
from authserver.db import transaction
from authserver.maintenance.service import run_cleanup
from authserver.security import denylist


def add_commands(sub: common.SubParsers) -> None:
    common.command(sub, "cleanup", cmd_cleanup, "delete expired codes, tokens, sessions and retired keys", json=True)

    deny = common.group(sub, "deny-list", "manage the IP/CIDR deny list")
    p = common.command(deny, "add", cmd_deny_list_add, "deny an address or network")
    p.add_argument("cidr")
    p.add_argument("--reason", default="")
    p = common.command(deny, "remove", cmd_deny_list_remove, "remove an entry")
    p.add_argument("cidr")
    common.command(deny, "list", cmd_deny_list_list, "list entries", json=True)


def cmd_cleanup(args: argparse.Namespace) -> int:
    with common.open_context() as ctx:
        counts = run_cleanup(ctx)
    if args.json:
        common.print_json(dict(counts))
        return 0
    for name, count in counts.items():
        print(f"{name}: {count} deleted")
    return 0


def cmd_deny_list_add(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        cidr = denylist.add_entry(db, args.cidr, args.reason, actor=common.ACTOR).cidr
    print(f"denied {cidr}")
    return 0


def cmd_deny_list_remove(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        cidr = denylist.remove_entry(db, args.cidr, actor=common.ACTOR)
    print(f"removed {cidr}")
    return 0


def cmd_deny_list_list(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        entries = denylist.list_entries(db)
        body = [{"cidr": e.cidr, "reason": e.reason, "created_at": common.timestamp(e.created_at)} for e in entries]
        rows = [[e.cidr, e.reason or "-", common.when(e.created_at)] for e in entries]
    if args.json:
        common.print_json(body)
    else:
        common.print_table(["CIDR", "REASON", "CREATED"], rows)
    return 0
