"""``authserver audit list [--user U] [--client C] [--kind K] [--since T] [--until T]``.

The same filters as the admin API's ``/admin/api/audit-events`` (audit service):
newest first, ``--limit`` events (default 50).
"""

from __future__ import annotations

import argparse
import json

from authserver.accounts import service as accounts
from authserver.audit import service as audit
from authserver.cli.common import SubParsers, command, group, open_context, print_json, print_table, timestamp, when
from authserver.db import transaction


def add_commands(sub: SubParsers) -> None:
    events = group(sub, "audit", "read the audit log")
    p = command(events, "list", cmd_list, "list audit events, newest first", json=True)
    p.add_argument("--user", metavar="U", help="username, e-mail address or user id (sub)")
    p.add_argument("--client", metavar="C", help="client_id")
    p.add_argument("--kind", metavar="K", help="event name, e.g. login_failed, client_updated")
    p.add_argument("--since", metavar="T", help="2026-01-31, 2026-01-31T12:00:00Z, epoch seconds, or 30m/12h/7d/2w ago")
    p.add_argument("--until", metavar="T", help="same forms as --since (exclusive)")
    p.add_argument("--limit", type=int, default=50, help="at most this many events (default 50, at most 500)")


def cmd_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 500:
        raise audit.AuditQueryError("--limit must be between 1 and 500")
    since = audit.parse_time(args.since) if args.since else None
    until = audit.parse_time(args.until) if args.until else None
    with open_context() as ctx, transaction(ctx.sessions) as db:
        user_id = None
        if args.user:
            # a deleted user is gone from the users table but not from the audit log: take the id as given
            user = accounts.find_by_login(db, args.user)
            user_id = user.id if user is not None else args.user
        rows = audit.search(db, user_id=user_id, client_id=args.client, event=args.kind, since=since,
                            until=until, limit=args.limit).items
        body = [{"id": r.id, "created_at": timestamp(r.created_at), "kind": r.event, "user_id": r.user_id,
                 "client_id": r.client_id, "ip": r.ip, "request_id": r.request_id, "detail": dict(r.detail or {})}
                for r in rows]
    if args.json:
        print_json(body)
    else:
        print_table(["TIME", "KIND", "USER", "CLIENT", "IP", "DETAIL"], [
            [when(e["created_at"] if isinstance(e["created_at"], int) else None), str(e["kind"]),
             str(e["user_id"] or "-"), str(e["client_id"] or "-"), str(e["ip"] or "-"),
             json.dumps(e["detail"], separators=(",", ":"))] for e in body])
    return 0
