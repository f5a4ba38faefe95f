"""``authserver clients create|list|show|update|rotate-secret|delete``.

A client secret is printed once, at creation or rotation, and stored only as a
keyed hash. A ``client_id`` may start with ``-`` (base64url): pass it after ``--``.
"""

from __future__ import annotations

import argparse
import copy

from authserver.cli.common import (
    ACTOR,
    CliError,
    SubParsers,
    command,
    group,
    open_context,
    print_json,
    print_table,
    timestamp,
    when,
)
from authserver.clients import service as clients
from authserver.clients.errors import ClientError
from authserver.clients.models import Client
from authserver.db import transaction
from authserver.oauth import vocabulary


def add_commands(sub: SubParsers) -> None:
    group_ = group(sub, "clients", "manage OAuth clients")
    p = command(group_, "create", cmd_create, "register a client", json=True)
    add_client_options(p, update=False)
    command(group_, "list", cmd_list, "list clients", json=True)
    p = command(group_, "show", cmd_show, "show one client (never its secret)", json=True)
    p.add_argument("client_id")
    p = command(group_, "update", cmd_update,
                "change a client in place (only the options given; the client_id and secret stay)", json=True)
    p.add_argument("client_id")
    add_client_options(p, update=True)
    p = command(group_, "rotate-secret", cmd_rotate_secret, "replace a client's secret", json=True)
    p.add_argument("client_id")
    p = command(group_, "delete", cmd_delete, "delete a client")
    p.add_argument("client_id")


def add_client_options(p: argparse.ArgumentParser, *, update: bool) -> None:
    """The options of ``create``; for ``update`` none is required, a list option replaces
    the whole list, and each flag has a ``--no-`` form."""
    lists: dict[str, object] = {"action": "extend", "nargs": "+", "default": None if update else []}
    flag: dict[str, object] = ({"action": argparse.BooleanOptionalAction, "default": None} if update
                               else {"action": "store_true"})
    p.add_argument("--name", required=not update)
    p.add_argument("--redirect-uri", metavar="URI", **lists)  # type: ignore[arg-type]
    p.add_argument("--grant-type", metavar="GRANT", required=not update, help=", ".join(vocabulary.GRANT_TYPES),
                   **lists)  # type: ignore[arg-type]
    p.add_argument("--scope", required=not update, help='space-separated, e.g. "openid profile email"')
    p.add_argument("--auth-method", choices=vocabulary.AUTH_METHODS)
    if not update:
        p.add_argument("--public", action="store_true", help="same as --auth-method none (no secret)")
    p.add_argument("--post-logout-redirect-uri", metavar="URI", **lists)  # type: ignore[arg-type]
    p.add_argument("--skip-consent", help="first-party app: never ask for consent", **flag)  # type: ignore[arg-type]
    p.add_argument("--introspect-any", help="resource server allowed to introspect tokens of any client",
                   **flag)  # type: ignore[arg-type]
    p.add_argument("--audience", metavar="AUD", help="access-token aud (default: the client_id)",
                   **lists)  # type: ignore[arg-type]
    p.add_argument("--require-mfa", **flag)  # type: ignore[arg-type]


def client_json(client: Client, secret: str | None) -> dict[str, object]:
    """The client's registered metadata (RFC 7591 §2 names); the secret only when just issued."""
    body: dict[str, object] = {
        "client_id": client.client_id,
        "client_name": client.client_name,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "scope": client.scope,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
    }
    if secret is not None:
        body["client_secret"] = secret
    return body


def cmd_create(args: argparse.Namespace) -> int:
    method = args.auth_method
    if args.public:
        if method not in (None, "none"):
            raise CliError(f"--public means --auth-method none, not {method}")
        method = "none"
    with open_context() as ctx, transaction(ctx.sessions) as db:
        new = clients.create_client(
            db, ctx.box,
            client_name=args.name,
            redirect_uris=args.redirect_uri,
            grant_types=args.grant_type,
            scope=args.scope,
            token_endpoint_auth_method=method or "client_secret_basic",
            post_logout_redirect_uris=args.post_logout_redirect_uri,
            skip_consent=args.skip_consent,
            require_mfa=args.require_mfa,
            introspect_any=args.introspect_any,
            audience=args.audience,
            actor=ACTOR,
        )
        client = new.client
        body = client_json(client, new.client_secret)
    if args.json:
        print_json(body)
        return 0
    print(f"client_id:     {body['client_id']}")
    if new.client_secret is not None:
        print(f"client_secret: {new.client_secret}")
        print("Store the secret now: it is shown only once (`clients rotate-secret` makes a new one).")
    else:
        print("public client: no secret; it must use PKCE (S256)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with open_context() as ctx, transaction(ctx.sessions) as db:
        rows = clients.list_clients(db)
        body = [client_json(c, None) for c in rows]
        table = [
            [c.client_id, c.client_name, c.token_endpoint_auth_method, ",".join(c.grant_types),
             " ".join(c.redirect_uris) or "-", when(c.created_at)]
            for c in rows
        ]
    if args.json:
        print_json(body)
    else:
        print_table(["CLIENT_ID", "NAME", "AUTH_METHOD", "GRANT_TYPES", "REDIRECT_URIS", "CREATED"], table)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_context() as ctx, transaction(ctx.sessions) as db:
        client = clients.get_client(db, args.client_id)
        if client is None:
            raise ClientError(f"no such client: {args.client_id}")
        body = {
            **client_json(client, None),
            "audience": list(client.audience),
            "skip_consent": client.skip_consent,
            "require_mfa": client.require_mfa,
            "introspect_any": client.introspect_any,
            "created_at": timestamp(client.created_at),
            "secret_rotated_at": timestamp(client.secret_rotated_at),
        }
    if args.json:
        print_json(body)
        return 0
    for name, value in body.items():
        if isinstance(value, list):
            text = " ".join(str(v) for v in value) or "-"
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        elif name.endswith("_at"):
            text = when(value if isinstance(value, int) else None)
        else:
            text = str(value)
        print(f"{name + ':':<28}{text}")
    return 0


#: ``clients update`` option → the client field it sets (RFC 7591 §2 names)
UPDATE_OPTIONS = {
    "name": "client_name", "redirect_uri": "redirect_uris", "grant_type": "grant_types", "scope": "scope",
    "auth_method": "token_endpoint_auth_method", "post_logout_redirect_uri": "post_logout_redirect_uris",
    "skip_consent": "skip_consent", "introspect_any": "introspect_any", "audience": "audience",
    "require_mfa": "require_mfa",
}


def cmd_update(args: argparse.Namespace) -> int:
    changes = {field: getattr(args, option) for option, field in UPDATE_OPTIONS.items()
               if getattr(args, option) is not None}
    if not changes:
        raise CliError("nothing to change: give at least one option (see `clients update --help`)")
    with open_context() as ctx, transaction(ctx.sessions) as db:
        client = clients.require_client(db, args.client_id)
        before = {name: copy.copy(getattr(client, name)) for name in clients.UPDATABLE}
        updated = clients.update_client(db, ctx.box, args.client_id, actor=ACTOR, **changes)
        changed = sorted(name for name, value in before.items() if getattr(client, name) != value)
        body = client_json(updated.client, updated.client_secret)
    if args.json:
        print_json(body)
        return 0
    print(f"updated client {args.client_id}: {', '.join(changed)}" if changed
          else f"client {args.client_id} already had these values; nothing changed")
    if updated.client_secret is not None:
        print(f"client_secret: {updated.client_secret}")
        print("The client is now confidential. Store the secret now: it is shown only once.")
    return 0


def cmd_rotate_secret(args: argparse.Namespace) -> int:
    with open_context() as ctx, transaction(ctx.sessions) as db:
        secret = clients.rotate_secret(db, ctx.box, args.client_id, actor=ACTOR)
    if args.json:
        print_json({"client_id": args.client_id, "client_secret": secret})
    else:
        print(f"client_secret: {secret}")
        print("The old secret no longer works. Store this one now: it is shown only once.")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with open_context() as ctx, transaction(ctx.sessions) as db:
        clients.delete_client(db, args.client_id, actor=ACTOR)
    print(f"deleted client {args.client_id} (its codes and refresh tokens went with it)")
    return 0
