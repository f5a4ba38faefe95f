"""``authserver``: the command line (DESIGN.md "Command line").

Every command reads the same ``AUTHSERVER_*`` settings as the server. Bad
input exits with status 2 and one line ``error: <reason>`` on stderr, never a
traceback; results are plain text (or one JSON object with ``--json``) on
stdout. Passwords come from a hidden prompt or one line of stdin, never from
argv, and are never printed or logged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import structlog

from authserver.clients.cli_registration import add_registration_commands

if TYPE_CHECKING:
    from authserver.context import Context

EXIT_ERROR = 2
CLEANUP_GRACE = dt.timedelta(days=1)
"""Used codes and dead refresh tokens stay this long so a late replay is still recognised."""

_MIGRATE_LOCK = 7_261_845_203  # pg_advisory_lock key: one `authserver migrate` at a time

log = structlog.get_logger("authserver.cli")


class CliError(Exception):
    """Bad input or state: printed as one ``error:`` line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CliError(message)


# -- plumbing ----------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.handler(args) or 0)
    except SystemExit as exc:  # --help, or uvicorn giving up at start-up
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = describe_error(exc)
        if message is None:
            # A bug, not bad input: still one line; the traceback only at debug level.
            log.debug("cli_unexpected_error", exc_info=True)
            message = f"unexpected {type(exc).__name__}; set AUTHSERVER_LOG_LEVEL=debug for details"
        print(f"error: {message}", file=sys.stderr)
        return EXIT_ERROR


def describe_error(exc: BaseException) -> str | None:
    """The one line shown for an expected failure, or None for a bug.

    Database errors are described from the driver's first line only:
    SQLAlchemy's own text carries the statement parameters (password and
    secret hashes).
    """
    import redis
    import sqlalchemy.exc as sa_exc

    from authserver.keys.service import KeyError_

    if isinstance(exc, sa_exc.DBAPIError):
        orig = exc.orig if exc.orig is not None else exc
        first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        lowered = first.lower()
        if (
            "no such table" in lowered
            or "no such column" in lowered
            or type(orig).__name__ in ("UndefinedTable", "UndefinedColumn")
        ):
            return "the database schema is missing or out of date; run `authserver migrate`"
        if isinstance(exc, sa_exc.IntegrityError):
            return f"conflicts with existing data: {first}"
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return f"cannot use the database: {first}"
        return f"database error: {first}"
    if isinstance(exc, sa_exc.SQLAlchemyError):
        return f"database error: {type(exc).__name__}"
    if isinstance(exc, redis.RedisError):
        return f"cannot use Redis (AUTHSERVER_REDIS_URL): {type(exc).__name__}"
    # SettingsError, AccountError, WeakPasswordError, ClientError are ValueErrors.
    if isinstance(exc, CliError | ValueError | KeyError_):
        return str(exc) or type(exc).__name__
    if isinstance(exc, OSError):
        return str(exc)
    return None


def _settings(*, serving: bool = False) -> Any:
    """Settings from the environment; a command other than ``serve`` logs warnings and
    errors only (its audit events still reach the audit table), unless at debug level."""
    from authserver.logging import configure_logging
    from authserver.settings import Settings

    settings = Settings.from_env()
    level = settings.log_level
    if not serving and level == "info":
        level = "warning"
    configure_logging(settings.log_format, level)
    return settings


@contextmanager
def _context(*, need_database: bool = True, serving: bool = False) -> Iterator[Context]:
    """Settings and a :class:`Context`; refuses a SQLite file that does not exist yet
    (a command run from the wrong directory would otherwise make an empty one)."""
    from authserver.context import Context
    from authserver.db import import_models

    settings = _settings(serving=serving)
    if need_database:
        _require_sqlite_file(settings.database_url)
    import_models()
    ctx = Context(settings)
    try:
        yield ctx
    finally:
        ctx.close()


def _require_sqlite_file(database_url: str) -> None:
    import sqlalchemy as sa

    url = sa.engine.make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    if not Path(url.database).exists():
        raise CliError(
            f"no database at {url.database} (working directory {Path.cwd()}); "
            "run `authserver migrate` (or `authserver serve`) first"
        )


def _audit(db: Any, event: str, **kw: Any) -> None:
    from authserver.audit import service as audit

    audit.record(db, event, actor="cli", **kw)


def _when(value: dt.datetime | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    if not rows:
        print("(none)")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for line in (headers, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def _program() -> str:
    """How the operator invoked us, for the hints printed by ``serve``."""
    argv0 = sys.argv[0] if sys.argv else ""
    return argv0 if Path(argv0).name == "authserver" else "authserver"


# -- serve / migrate ---------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from authserver.db import migrate

    if not 0 < args.port < 65536:
        raise CliError("--port must be 1..65535")
    if args.workers < 1:
        raise CliError("--workers must be at least 1")
    # Settings first: an unset SECRET_KEY is generated here once, not raced by N workers.
    with _context(need_database=False, serving=True) as ctx:
        settings = ctx.settings
        if settings.is_sqlite:
            migrate(ctx.engine)
        else:
            _require_head(ctx)
        ctx.keys.ensure_key()
        ctx.keys.check_permissions()
        _ = ctx.keys.active  # fails now, not in every worker, when no key is usable
    prog = _program()
    issuer = settings.issuer
    print(f"authserver: issuer {issuer}, listening on http://{args.host}:{args.port} "
          f"with {args.workers} worker(s)")
    print(f"Discovery: {issuer}/.well-known/openid-configuration")
    print("Add a user:")
    print(f"  {prog} users create --username alice --email alice@example.com")
    print("Add a client:")
    print(f"  {prog} clients create --name 'My App' --redirect-uri http://127.0.0.1:3000/callback "
          "--grant-type authorization_code refresh_token --scope 'openid profile email offline_access'")
    _serve_warnings(settings, args)
    sys.stdout.flush()
    uvicorn.run(
        "authserver.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=False,  # the app reads X-Forwarded-For itself, from TRUSTED_PROXIES only
        # a request head (line + headers) over 32 KiB gets 431 (security/http_limits.py)
        http="authserver.security.http_limits:LimitedHttpToolsProtocol",
        server_header=False,
        date_header=True,
        access_log=False,
        log_config=None,
    )
    return 0


def _serve_warnings(settings: Any, args: argparse.Namespace) -> None:
    from urllib.parse import urlsplit

    issuer = urlsplit(settings.issuer)
    if issuer.scheme == "http" and (issuer.port or 80) != args.port:
        print(f"warning: AUTHSERVER_ISSUER {settings.issuer} does not match --port {args.port}; "
              "clients will be sent to the issuer's port", file=sys.stderr)
    if args.workers > 1 and not settings.redis_url:
        print("warning: without AUTHSERVER_REDIS_URL each worker keeps its own lockout and "
              "rate-limit counters", file=sys.stderr)


def _require_head(ctx: Context) -> None:
    """Refuse to serve a Postgres schema that is not at the latest revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from authserver.db import alembic_config

    heads = set(ScriptDirectory.from_config(alembic_config("")).get_heads())
    with ctx.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current != heads:
        raise CliError(
            f"the database schema is at {', '.join(sorted(current)) or 'nothing'}, "
            f"not {', '.join(sorted(heads))}; run `authserver migrate`"
        )


def cmd_migrate(args: argparse.Namespace) -> int:
    import sqlalchemy as sa
    from alembic.runtime.migration import MigrationContext

    from authserver.db import migrate

    with _context(need_database=False) as ctx:
        engine = ctx.engine
        if engine.dialect.name == "postgresql":
            # Several machines starting at once: migrations run one after another.
            with engine.connect() as lock:
                lock.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATE_LOCK})
                try:
                    migrate(engine)
                finally:
                    lock.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATE_LOCK})
        else:
            migrate(engine)
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
    print(f"database schema at revision {', '.join(heads)}")
    return 0


# -- users -------------------------------------------------------------------


def _stdin_is_tty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def read_password(from_stdin: bool) -> str:
    """One line of stdin without its line break, or a hidden prompt asked twice."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise CliError("--password-stdin: no password on standard input")
        return password
    if not _stdin_is_tty():
        raise CliError("no terminal to prompt for the password; use --password-stdin")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != password:
        raise CliError("the two passwords differ")
    if not password:
        raise CliError("the password must not be empty")
    return password


def cmd_users_create(args: argparse.Namespace) -> int:
    from authserver.accounts.service import create_user
    from authserver.db import transaction

    with _context() as ctx:
        password = read_password(args.password_stdin)
        with transaction(ctx.sessions) as db:
            user = create_user(db, ctx.passwords, username=args.username, email=args.email,
                               password=password, roles=args.role, name=args.name)
            print(f"created user {user.username} (sub {user.id})")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    from authserver.accounts.service import list_users
    from authserver.db import transaction

    with _context() as ctx, transaction(ctx.sessions) as db:
        rows = [
            [u.username, u.email, ",".join(u.role_names) or "-", "yes" if u.disabled else "no",
             _when(u.created_at)]
            for u in list_users(db)
        ]
    _table(["USERNAME", "EMAIL", "ROLES", "DISABLED", "CREATED"], rows)
    return 0


def _find_user(db: Any, login: str) -> Any:
    from authserver.accounts.service import find_by_login

    user = find_by_login(db, login)
    if user is None:
        raise CliError(f"no such user: {login}")
    return user


def cmd_users_disable(args: argparse.Namespace) -> int:
    """Disable the account, end its browser sessions and revoke its refresh tokens."""
    import sqlalchemy as sa

    from authserver.db import transaction
    from authserver.sessions.models import BrowserSession
    from authserver.tokens.service import revoke_user_families

    with _context() as ctx, transaction(ctx.sessions) as db:
        user = _find_user(db, args.username)
        if user.disabled:
            print(f"{user.username} is already disabled")
            return 0
        user.disabled = True
        tokens = revoke_user_families(db, ctx.revoked, user.id)
        sessions = db.execute(sa.delete(BrowserSession).where(BrowserSession.user_id == user.id))
        _audit(db, "user_disabled", user_id=user.id)
        print(f"disabled {user.username}: {sessions.rowcount or 0} session(s) ended, "  # type: ignore[attr-defined]
              f"{tokens} refresh token(s) revoked")
    return 0


def cmd_users_unlock(args: argparse.Namespace) -> int:
    from authserver.accounts.service import lockout_key
    from authserver.db import transaction

    with _context() as ctx:
        if ctx.redis is None:
            raise CliError(
                "without AUTHSERVER_REDIS_URL the lockout counters live inside the server process; "
                "restart the server to clear them (locks also expire by themselves)"
            )
        ctx.redis.ping()  # a lock in Redis cannot be cleared while Redis is down
        with transaction(ctx.sessions) as db:
            user = _find_user(db, args.username)
            ctx.lockout.unlock(lockout_key(user, args.username))
            if getattr(ctx.counters, "degraded", False):
                raise CliError("Redis became unreachable; the lock was not cleared")
            _audit(db, "account_unlocked", user_id=user.id)
            print(f"unlocked {user.username}")
    return 0


# -- clients -----------------------------------------------------------------


def _client_json(client: Any, secret: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
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


def cmd_clients_create(args: argparse.Namespace) -> int:
    from authserver.clients.service import create_client
    from authserver.db import transaction

    method = args.auth_method
    if args.public:
        if method not in (None, "none"):
            raise CliError(f"--public means --auth-method none, not {method}")
        method = "none"
    with _context() as ctx, transaction(ctx.sessions) as db:
        new = create_client(
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
        )
        client = new.client
        _audit(db, "client_created", client_id=client.client_id, client_name=client.client_name)
    if args.json:
        print(json.dumps(_client_json(client, new.client_secret)))
        return 0
    print(f"client_id:     {client.client_id}")
    if new.client_secret is not None:
        print(f"client_secret: {new.client_secret}")
        print("Store the secret now: it is shown only once (`clients rotate-secret` makes a new one).")
    else:
        print("public client: no secret; it must use PKCE (S256)")
    return 0


def cmd_clients_list(args: argparse.Namespace) -> int:
    from authserver.clients.service import list_clients
    from authserver.db import transaction

    with _context() as ctx, transaction(ctx.sessions) as db:
        clients = list_clients(db)
        if args.json:
            print(json.dumps([_client_json(c, None) for c in clients]))
            return 0
        rows = [
            [c.client_id, c.client_name, c.token_endpoint_auth_method, ",".join(c.grant_types),
             " ".join(c.redirect_uris) or "-", _when(c.created_at)]
            for c in clients
        ]
    _table(["CLIENT_ID", "NAME", "AUTH_METHOD", "GRANT_TYPES", "REDIRECT_URIS", "CREATED"], rows)
    return 0


def cmd_clients_rotate_secret(args: argparse.Namespace) -> int:
    from authserver.clients.service import rotate_secret
    from authserver.db import transaction

    with _context() as ctx, transaction(ctx.sessions) as db:
        secret = rotate_secret(db, ctx.box, args.client_id)
        _audit(db, "client_secret_rotated", client_id=args.client_id)
    if args.json:
        print(json.dumps({"client_id": args.client_id, "client_secret": secret}))
    else:
        print(f"client_secret: {secret}")
        print("The old secret no longer works. Store this one now: it is shown only once.")
    return 0


def cmd_clients_delete(args: argparse.Namespace) -> int:
    from authserver.clients.service import delete_client
    from authserver.db import transaction

    with _context() as ctx, transaction(ctx.sessions) as db:
        delete_client(db, args.client_id)
        _audit(db, "client_deleted", client_id=args.client_id)
    print(f"deleted client {args.client_id} (its codes and refresh tokens went with it)")
    return 0


# -- keys --------------------------------------------------------------------


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from authserver.db import transaction

    if args.delay is not None and args.delay < 0:
        raise CliError("--delay must be zero or more seconds")
    with _context() as ctx, transaction(ctx.sessions) as db:
        # Checked before writing a key, so a broken database leaves no unaudited key behind.
        db.connection()
        key = ctx.keys.rotate(delay=args.delay)
        _audit(db, "key_rotated", kid=key.kid, activates_at=key.activates_at)
    print(f"new key {key.kid}: published now, signs from {_when(key.activates_at)}")
    if key.activates_at > int(dt.datetime.now(dt.UTC).timestamp()):
        print("Every server must see this key file before then (a shared AUTHSERVER_KEYS_DIR).")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    with _context(need_database=False) as ctx:
        keys = ctx.keys.keys()
    rows = [
        [k.kid, k.status, _when(k.created_at), _when(k.activates_at), _when(k.retires_at)]
        for k in keys
    ]
    _table(["KID", "STATUS", "CREATED", "ACTIVATES", "RETIRES"], rows)
    return 0


# -- cleanup -----------------------------------------------------------------


def cleanup(ctx: Context, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete what can no longer be used; returns the number removed per kind.

    Rotated refresh tokens stay until their family expires, so a stolen old
    token presented late still reveals the theft (RFC 9700 §4.14.2).
    """
    import sqlalchemy as sa

    from authserver.accounts.models import EmailCode
    from authserver.clients.models import InitialAccessToken
    from authserver.db import transaction, utcnow
    from authserver.sessions.models import BrowserSession
    from authserver.tokens.models import AuthorizationCode, RefreshToken

    now = now or utcnow()
    grace = now - CLEANUP_GRACE
    statements = {
        "authorization_codes": sa.delete(AuthorizationCode).where(AuthorizationCode.expires_at < grace),
        "refresh_tokens": sa.delete(RefreshToken).where(
            sa.or_(
                RefreshToken.family_expires_at < grace,
                sa.and_(RefreshToken.revoked_at.is_not(None), RefreshToken.expires_at < grace),
                sa.and_(RefreshToken.rotated_at.is_(None), RefreshToken.expires_at < grace),
            )
        ),
        "browser_sessions": sa.delete(BrowserSession).where(BrowserSession.expires_at < now),
        "email_codes": sa.delete(EmailCode).where(EmailCode.expires_at < now),
        "initial_access_tokens": sa.delete(InitialAccessToken).where(
            InitialAccessToken.expires_at.is_not(None), InitialAccessToken.expires_at < now
        ),
    }
    counts: dict[str, int] = {}
    with transaction(ctx.sessions) as db:
        for name, statement in statements.items():
            counts[name] = db.execute(statement).rowcount or 0  # type: ignore[attr-defined]
    counts["retired_keys"] = len(ctx.keys.remove_retired())
    return counts


def cmd_cleanup(args: argparse.Namespace) -> int:
    with _context() as ctx:
        counts = cleanup(ctx)
    for name, count in counts.items():
        print(f"{name}: {count} deleted")
    return 0


# -- deny list ---------------------------------------------------------------


def cmd_deny_list_add(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from authserver.db import transaction
    from authserver.security.models import IpDenyEntry
    from authserver.security.network import parse_cidr

    cidr = parse_cidr(args.cidr)
    with _context() as ctx, transaction(ctx.sessions) as db:
        if db.scalar(sa.select(IpDenyEntry.id).where(IpDenyEntry.cidr == cidr)) is not None:
            raise CliError(f"{cidr} is already on the deny list")
        db.add(IpDenyEntry(cidr=cidr, reason=args.reason))
        _audit(db, "deny_list_changed", action="add", cidr=cidr)
    print(f"denied {cidr}")
    return 0


def cmd_deny_list_remove(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from authserver.db import transaction
    from authserver.security.models import IpDenyEntry
    from authserver.security.network import parse_cidr

    cidr = parse_cidr(args.cidr)
    with _context() as ctx, transaction(ctx.sessions) as db:
        removed = db.execute(sa.delete(IpDenyEntry).where(IpDenyEntry.cidr == cidr))
        if not removed.rowcount:  # type: ignore[attr-defined]
            raise CliError(f"{cidr} is not on the deny list")
        _audit(db, "deny_list_changed", action="remove", cidr=cidr)
    print(f"removed {cidr}")
    return 0


def cmd_deny_list_list(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from authserver.db import transaction
    from authserver.security.models import IpDenyEntry

    with _context() as ctx, transaction(ctx.sessions) as db:
        entries = db.scalars(sa.select(IpDenyEntry).order_by(IpDenyEntry.created_at, IpDenyEntry.id))
        rows = [[e.cidr, e.reason or "-", _when(e.created_at)] for e in entries]
    _table(["CIDR", "REASON", "CREATED"], rows)
    return 0


# -- parser ------------------------------------------------------------------


def _command(sub: Any, name: str, handler: Callable[[argparse.Namespace], int], help: str) -> Any:
    parser = sub.add_parser(name, help=help, description=help)
    parser.set_defaults(handler=handler)
    return parser


def _group(sub: Any, name: str, help: str) -> Any:
    parser = sub.add_parser(name, help=help, description=help)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="authserver", description="OAuth 2.0 / OpenID Connect authorization server.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(sub, "serve", cmd_serve, "run the server (migrates SQLite by itself)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)

    _command(sub, "migrate", cmd_migrate, "upgrade the database schema to the latest revision")

    users = _group(sub, "users", "manage users")
    p = _command(users, "create", cmd_users_create, "create a user (password from a prompt or stdin)")
    p.add_argument("--username", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from one line of standard input")
    p.add_argument("--role", action="append", default=[], help="may be repeated")
    p.add_argument("--name", help="display name (the OIDC `name` claim)")
    _command(users, "list", cmd_users_list, "list users")
    p = _command(users, "disable", cmd_users_disable,
                 "disable a user, end their sessions and revoke their refresh tokens")
    p.add_argument("username")
    p = _command(users, "unlock", cmd_users_unlock, "clear a user's lockout")
    p.add_argument("username")

    clients = _group(sub, "clients", "manage OAuth clients")
    p = _command(clients, "create", cmd_clients_create, "register a client")
    p.add_argument("--name", required=True)
    p.add_argument("--redirect-uri", action="extend", nargs="+", default=[], metavar="URI")
    p.add_argument("--grant-type", action="extend", nargs="+", required=True, metavar="GRANT",
                   help="authorization_code, refresh_token, password, client_credentials")
    p.add_argument("--scope", required=True, help='space-separated, e.g. "openid profile email"')
    p.add_argument("--auth-method", choices=("client_secret_basic", "client_secret_post", "none"))
    p.add_argument("--public", action="store_true", help="same as --auth-method none (no secret)")
    p.add_argument("--post-logout-redirect-uri", action="extend", nargs="+", default=[], metavar="URI")
    p.add_argument("--skip-consent", action="store_true", help="first-party app: never ask for consent")
    p.add_argument("--introspect-any", action="store_true",
                   help="resource server allowed to introspect tokens of any client")
    p.add_argument("--audience", action="extend", nargs="+", default=[], metavar="AUD",
                   help="access-token aud (default: the client_id)")
    p.add_argument("--require-mfa", action="store_true")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p = _command(clients, "list", cmd_clients_list, "list clients")
    p.add_argument("--json", action="store_true")
    p = _command(clients, "rotate-secret", cmd_clients_rotate_secret, "replace a client's secret")
    p.add_argument("client_id")
    p.add_argument("--json", action="store_true")
    p = _command(clients, "delete", cmd_clients_delete, "delete a client")
    p.add_argument("client_id")

    keys = _group(sub, "keys", "manage signing keys")
    p = _command(keys, "rotate", cmd_keys_rotate, "add a signing key, used after the activation delay")
    p.add_argument("--delay", type=int, metavar="SECONDS",
                   help="seconds before it signs (default AUTHSERVER_KEY_ACTIVATION_DELAY)")
    _command(keys, "list", cmd_keys_list, "list signing keys and their status")

    _command(sub, "cleanup", cmd_cleanup, "delete expired codes, tokens, sessions and retired keys")

    deny = _group(sub, "deny-list", "manage the IP/CIDR deny list")
    p = _command(deny, "add", cmd_deny_list_add, "deny an address or network")
    p.add_argument("cidr")
    p.add_argument("--reason", default="")
    p = _command(deny, "remove", cmd_deny_list_remove, "remove an entry")
    p.add_argument("cidr")
    _command(deny, "list", cmd_deny_list_list, "list entries")

    add_registration_commands(sub)
    return parser


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
