"""``authserver serve`` and ``authserver migrate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from authserver.cli import common
from authserver.context import Context
from authserver.db import alembic_config, migrate
from authserver.settings import Settings

if TYPE_CHECKING:
    from authserver.cli.workers import Held

APP = "authserver.app:app_from_env"
MIGRATE_LOCK = 7_261_845_203
"""``pg_advisory_lock`` key: one ``authserver migrate`` at a time."""


def add_commands(sub: common.SubParsers) -> None:
    p = common.command(sub, "serve", cmd_serve, "run the server (migrates SQLite by itself)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    common.command(sub, "migrate", cmd_migrate, "upgrade the database schema to the latest revision")


def cmd_serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise common.CliError("--port must be 1..65535")
    if args.workers < 1:
        raise common.CliError("--workers must be at least 1")
    # Settings first: an unset SECRET_KEY is generated here once, not raced by N workers.
    with common.open_context(need_database=False, serving=True) as ctx:
        settings = ctx.settings
        if settings.is_sqlite:
            migrate(ctx.engine)
        else:
            require_head(ctx)
        ctx.keys.ensure_key()
        ctx.keys.check_permissions()
        _ = ctx.keys.active  # fails now, not in every worker, when no key is usable
    # several workers: a socket each (cli/workers.py), the port held before anything is printed
    holder = hold_port(args.host, args.port) if args.workers > 1 else None
    try:
        return run_server(args, settings, several=holder is not None)
    finally:
        if holder is not None:
            holder.close()


def run_server(args: argparse.Namespace, settings: Settings, *, several: bool) -> int:
    import uvicorn

    from authserver.cli import workers

    prog = program_name()
    issuer = settings.issuer
    print(f"authserver: issuer {issuer}, listening on http://{args.host}:{args.port} "
          f"with {args.workers} worker(s)")
    print(f"Discovery: {issuer}/.well-known/openid-configuration")
    print("Add a user:")
    print(f"  {prog} users create --username alice --email alice@example.com")
    print("Add a client:")
    print(f"  {prog} clients create --name 'My App' --redirect-uri http://127.0.0.1:3000/callback "
          "--grant-type authorization_code refresh_token --scope 'openid profile email offline_access'")
    warn_about_setup(settings, args.port, args.workers)
    if settings.metrics_port:
        start_metrics(settings, args.port)
    sys.stdout.flush()
    options = dict(
        factory=True,
        host=args.host,
        port=args.port,
        proxy_headers=False,  # the app reads X-Forwarded-For itself, from TRUSTED_PROXIES only
        # a request head (line + headers) over 32 KiB gets 431 (security/http_limits.py)
        http="authserver.security.http_limits:LimitedHttpToolsProtocol",
        server_header=False,
        date_header=True,
        access_log=False,
        log_config=None,
    )
    if not several:
        uvicorn.run(APP, **options)
        return 0
    return workers.Supervisor(uvicorn.Config(APP, workers=args.workers, **options), args.workers).run()


def hold_port(host: str, port: int) -> Held:
    from authserver.cli import workers

    try:
        return workers.hold_address(host, port)
    except OSError as exc:
        raise common.CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def start_metrics(settings: Settings, port: int) -> None:
    """The metrics listener of this supervising process (docs/metrics.md): every worker
    writes its own files under ``PROMETHEUS_MULTIPROC_DIR``, this process sums them on
    ``METRICS_HOST:METRICS_PORT`` and reads the key rotation state from the database."""
    if settings.metrics_port == port:
        raise common.CliError(f"AUTHSERVER_METRICS_PORT ({port}) must differ from --port: "
                              "metrics are never served on the public listener")
    from authserver import metrics  # before anything imports prometheus_client

    where = metrics.prepare_multiprocess_dir()
    from authserver.db import create_engine
    from authserver.keys.service import CLOCK_SKEW

    engine = create_engine(settings.database_url, pool_size=1)
    collector = metrics.KeyCollector(
        engine, rotation_interval=settings.key_rotation_interval,
        publish_delay=max(settings.key_activation_delay, settings.jwks_max_age),
        retain_seconds=max(settings.access_token_ttl, settings.id_token_ttl) + CLOCK_SKEW)
    try:
        metrics.serve(settings.metrics_host, settings.metrics_port, [collector])
    except OSError as exc:
        raise common.CliError(f"cannot listen for metrics on {settings.metrics_host}:{settings.metrics_port} "
                              f"(AUTHSERVER_METRICS_HOST/PORT): {exc.strerror}") from None
    print(f"Metrics: http://{settings.metrics_host}:{settings.metrics_port}/metrics (workers' files in {where})")


def program_name() -> str:
    """How the operator invoked us, for the hints printed by ``serve``."""
    argv0 = sys.argv[0] if sys.argv else ""
    return argv0 if Path(argv0).name == "authserver" else "authserver"


def warn_about_setup(settings: Settings, port: int, workers: int) -> None:
    issuer = urlsplit(settings.issuer)
    if issuer.scheme == "http" and (issuer.port or 80) != port:
        print(f"warning: AUTHSERVER_ISSUER {settings.issuer} does not match --port {port}; "
              "clients will be sent to the issuer's port", file=sys.stderr)
    if workers > 1 and not settings.redis_url:
        print("warning: without AUTHSERVER_REDIS_URL each worker keeps its own lockout and "
              "rate-limit counters", file=sys.stderr)


def require_head(ctx: Context) -> None:
    """Refuse to serve a Postgres schema that is not at the latest revision."""
    heads = set(ScriptDirectory.from_config(alembic_config("")).get_heads())
    with ctx.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current != heads:
        raise common.CliError(
            f"the database schema is at {', '.join(sorted(current)) or 'nothing'}, "
            f"not {', '.join(sorted(heads))}; run `authserver migrate`"
        )


def cmd_migrate(args: argparse.Namespace) -> int:
    with common.open_context(need_database=False) as ctx:
        engine = ctx.engine
        if engine.dialect.name == "postgresql":
            # Several machines starting at once: migrations run one after another.
            with engine.connect() as lock:
                lock.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATE_LOCK})
                try:
                    migrate(engine)
                finally:
                    lock.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATE_LOCK})
        else:
            migrate(engine)
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
    print(f"database schema at revision {', '.join(heads)}")
    return 0
