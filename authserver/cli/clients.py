"""``authserver clients create|list|show|update|rotate-secret|delete|set-roles|set-permission-prefixes``.

A client secret is printed once, at creation or rotation, and stored only as a
keyed hash. A ``client_id`` may start with ``-`` (base64url): pass it after ``--``.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

from sqlalchemy.orm import Session

from authserver.cli import common
from authserver.clients import service as clients
from authserver.clients.errors import ClientError
from authserver.clients.models import Client
from authserver.db import transaction
from authserver.oauth import vocabulary
from authserver.roles import service as roles


def add_commands(sub: common.SubParsers) -> None:
    group_ = common.group(sub, "clients", "manage OAuth clients")
    p = common.command(group_, "create", cmd_create, "register a client", json=True)
    p.add_argument("--name", required=True)
    p.add_argument("--redirect-uri", action="extend", nargs="+", default=[], metavar="URI")
    p.add_argument("--grant-type", action="extend", nargs="+", required=True, metavar="GRANT",
                   help=", ".join(vocabulary.GRANT_TYPES))
    p.add_argument("--scope", required=True, help='space-separated, e.g. "openid profile email"')
    p.add_argument("--auth-method", choices=vocabulary.AUTH_METHODS)
    p.add_argument("--public", action="store_true", help="same as --auth-method none (no secret)")
    p.add_argument("--post-logout-redirect-uri", action="extend", nargs="+", default=[], metavar="URI")
    p.add_argument("--skip-consent", action="store_true", help="first-party app: never ask for consent")
    p.add_argument("--introspect-any", action="store_true",
                   help="resource server allowed to introspect tokens of any client")
    p.add_argument("--audience", action="extend", nargs="+", default=[], metavar="AUD",
                   help="access-token aud (default: the client_id)")
    p.add_argument("--permission-prefix", action="extend", nargs="+", default=[], metavar="PREFIX",
                   help="access tokens carry the permissions under these prefixes, e.g. orders (docs/roles.md)")
    p.add_argument("--require-mfa", action="store_true")
    p.add_argument("--dpop-bound-access-tokens", action="store_true",
                   help="refuse token requests without a DPoP proof (RFC 9449 §5.2)")
    _key_options(p)
    p.add_argument("--require-par", action="store_true",
                   help="authorization requests only through /par (RFC 9126 §6)")
    common.command(group_, "list", cmd_list, "list clients", json=True)
    p = common.command(group_, "show", cmd_show, "show one client (never its secret)", json=True)
    p.add_argument("client_id")
    p = common.command(group_, "update", cmd_update,
                       "change a client in place (only the options given; the client_id stays)", json=True)
    p.add_argument("client_id")
    flag: dict[str, object] = {"action": argparse.BooleanOptionalAction, "default": None}
    p.add_argument("--name")
    p.add_argument("--redirect-uri", action="extend", nargs="+", metavar="URI", help="replaces the list")
    p.add_argument("--grant-type", action="extend", nargs="+", metavar="GRANT", help=", ".join(vocabulary.GRANT_TYPES))
    p.add_argument("--scope", help='space-separated, e.g. "openid profile email"')
    p.add_argument("--auth-method", choices=vocabulary.AUTH_METHODS,
                   help="none drops the secret; a public client made confidential gets one, printed once")
    p.add_argument("--post-logout-redirect-uri", action="extend", nargs="+", metavar="URI")
    p.add_argument("--skip-consent", help="first-party app: never ask for consent", **flag)  # type: ignore[arg-type]
    p.add_argument("--introspect-any", help="resource server allowed to introspect tokens of any client",
                   **flag)  # type: ignore[arg-type]
    p.add_argument("--audience", action="extend", nargs="+", metavar="AUD")
    p.add_argument("--permission-prefix", action="extend", nargs="+", metavar="PREFIX")
    p.add_argument("--require-mfa", **flag)  # type: ignore[arg-type]
    p.add_argument("--dpop-bound-access-tokens", help="refuse token requests without a DPoP proof (RFC 9449 §5.2)",
                   **flag)  # type: ignore[arg-type]
    _key_options(p)
    p.add_argument("--require-par", help="authorization requests only through /par (RFC 9126 §6)",
                   **flag)  # type: ignore[arg-type]
    p = common.command(group_, "rotate-secret", cmd_rotate_secret, "replace a client's secret", json=True)
    p.add_argument("client_id")
    p = common.command(group_, "delete", cmd_delete, "delete a client")
    p.add_argument("client_id")
    p = common.command(group_, "set-roles", cmd_set_roles,
                       "replace the roles a client holds for its own tokens (none clears them)", json=True)
    p.add_argument("client_id")
    p.add_argument("roles", nargs="*", metavar="ROLE")
    p = common.command(group_, "set-permission-prefixes", cmd_set_permission_prefixes,
                       "choose which permissions the client's access tokens carry (none: no permissions)",
                       json=True)
    p.add_argument("client_id")
    p.add_argument("prefixes", nargs="*", metavar="PREFIX")


def _key_options(p: argparse.ArgumentParser) -> None:
    keys = p.add_mutually_exclusive_group()
    keys.add_argument("--jwks-uri", metavar="URL", help="private_key_jwt: where the client publishes its JWK Set")
    keys.add_argument("--jwks-file", type=Path, metavar="FILE",
                      help="private_key_jwt: a file holding the client's public JWK Set")
    p.add_argument("--id-token-alg", choices=vocabulary.ID_TOKEN_SIGNING_ALGS,
                   help="what its ID tokens are signed with (default RS256)")


def _jwks(path: Path | None) -> object | None:
    if path is None:
        return None
    try:
        value: object = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise common.CliError(f"--jwks-file {path}: not a readable JSON file ({type(exc).__name__})") from None
    return value


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
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
    }
    if client.jwks_uri is not None:
        body["jwks_uri"] = client.jwks_uri
    if client.jwks is not None:
        body["jwks"] = client.jwks
    if secret is not None:
        body["client_secret"] = secret
    return body


def cmd_create(args: argparse.Namespace) -> int:
    method = args.auth_method
    if args.public:
        if method not in (None, "none"):
            raise common.CliError(f"--public means --auth-method none, not {method}")
        method = "none"
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
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
            permission_prefixes=args.permission_prefix,
            dpop_bound_access_tokens=args.dpop_bound_access_tokens,
            jwks=_jwks(args.jwks_file),
            jwks_uri=args.jwks_uri,
            id_token_signed_response_alg=args.id_token_alg,
            require_pushed_authorization_requests=args.require_par,
            actor=common.ACTOR,
        )
        client = new.client
        body = client_json(client, new.client_secret)
    if args.json:
        common.print_json(body)
        return 0
    print(f"client_id:     {body['client_id']}")
    if new.client_secret is not None:
        print(f"client_secret: {new.client_secret}")
        print("Store the secret now: it is shown only once (`clients rotate-secret` makes a new one).")
    elif client.token_endpoint_auth_method == vocabulary.PRIVATE_KEY_JWT:
        print("private_key_jwt client: no secret; it signs client assertions with its registered key")
    else:
        print("public client: no secret; it must use PKCE (S256)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        rows = clients.list_clients(db)
        body = [client_json(c, None) for c in rows]
        table = [
            [c.client_id, c.client_name, c.token_endpoint_auth_method, ",".join(c.grant_types),
             " ".join(c.redirect_uris) or "-", common.when(c.created_at)]
            for c in rows
        ]
    if args.json:
        common.print_json(body)
    else:
        common.print_table(["CLIENT_ID", "NAME", "AUTH_METHOD", "GRANT_TYPES", "REDIRECT_URIS", "CREATED"], table)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        client = clients.get_client(db, args.client_id)
        if client is None:
            raise ClientError(f"no such client: {args.client_id}")
        body = {
            **client_json(client, None),
            "audience": list(client.audience),
            "skip_consent": client.skip_consent,
            "require_mfa": client.require_mfa,
            "introspect_any": client.introspect_any,
            "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
            "roles": roles.client_roles(db, client.client_id),
            "permission_prefixes": list(client.permission_prefixes),
            "created_at": common.timestamp(client.created_at),
            "secret_rotated_at": common.timestamp(client.secret_rotated_at),
        }
    if args.json:
        common.print_json(body)
        return 0
    for name, value in body.items():
        if isinstance(value, list):
            text = " ".join(str(v) for v in value) or "-"
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        elif name.endswith("_at"):
            text = common.when(value if isinstance(value, int) else None)
        else:
            text = str(value)
        print(f"{name + ':':<28}{text}")
    return 0


#: ``clients update`` option → the client field it sets (RFC 7591 §2 names)
UPDATE_OPTIONS = {
    "name": "client_name", "redirect_uri": "redirect_uris", "grant_type": "grant_types", "scope": "scope",
    "auth_method": "token_endpoint_auth_method", "post_logout_redirect_uri": "post_logout_redirect_uris",
    "skip_consent": "skip_consent", "introspect_any": "introspect_any", "audience": "audience",
    "permission_prefix": "permission_prefixes", "require_mfa": "require_mfa",
    "dpop_bound_access_tokens": "dpop_bound_access_tokens", "jwks_uri": "jwks_uri",
    "id_token_alg": "id_token_signed_response_alg", "require_par": "require_pushed_authorization_requests",
}


def cmd_update(args: argparse.Namespace) -> int:
    """``PATCH`` semantics through the service the admin API and the console use."""
    changes = {field: getattr(args, option) for option, field in UPDATE_OPTIONS.items()
               if getattr(args, option) is not None}
    if args.jwks_file is not None:
        changes["jwks"] = _jwks(args.jwks_file)
    if not changes:
        raise common.CliError("nothing to change: give at least one option (see `clients update --help`)")
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        client = clients.require_client(db, args.client_id)
        before = {name: copy.copy(getattr(client, name)) for name in clients.UPDATABLE}
        updated = clients.update_client(db, ctx.box, args.client_id, actor=common.ACTOR, **changes)
        changed = sorted(name for name, value in before.items() if getattr(client, name) != value)
        body = client_json(updated.client, updated.client_secret)
    if args.json:
        common.print_json(body)
        return 0
    print(f"updated client {args.client_id}: {', '.join(changed)}" if changed
          else f"client {args.client_id} already had these values; nothing changed")
    if updated.client_secret is not None:
        print(f"client_secret: {updated.client_secret}")
        print("The client is now confidential. Store the secret now: it is shown only once.")
    return 0


def cmd_rotate_secret(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        secret = clients.rotate_secret(db, ctx.box, args.client_id, revoked=ctx.revoked, actor=common.ACTOR)
    if args.json:
        common.print_json({"client_id": args.client_id, "client_secret": secret})
    else:
        print(f"client_secret: {secret}")
        print("The old secret no longer works. Store this one now: it is shown only once.")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        clients.delete_client(db, args.client_id, revoked=ctx.revoked, actor=common.ACTOR)
    print(f"deleted client {args.client_id} (its codes and refresh tokens went with it)")
    return 0


def require_client(db: Session, client_id: str) -> Client:
    client = clients.get_client(db, client_id)
    if client is None:
        raise ClientError(f"no such client: {client_id}")
    return client


def cmd_set_roles(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        held = roles.set_client_roles(db, require_client(db, args.client_id), args.roles, actor=common.ACTOR)
    if args.json:
        common.print_json({"client_id": args.client_id, "roles": held})
    else:
        print(f"{args.client_id}: roles {', '.join(held) or '(none)'}")
    return 0


def cmd_set_permission_prefixes(args: argparse.Namespace) -> int:
    with common.open_context() as ctx, transaction(ctx.sessions) as db:
        prefixes = roles.set_client_permission_prefixes(db, require_client(db, args.client_id), args.prefixes,
                                                        actor=common.ACTOR)
    if args.json:
        common.print_json({"client_id": args.client_id, "permission_prefixes": prefixes})
    else:
        print(f"{args.client_id}: permission prefixes {' '.join(prefixes) or '(none)'}")
    return 0
