"""What cookieless authorization requests store: rows and bytes (docs/decisions.md,
"Nothing is stored for a visitor who has not signed in").

    python bench/strangers.py [--count 200] [--state-bytes 30000] [--database-url URL]

Builds the app in process on a fresh database (a temporary SQLite file, or a new
database created and dropped on the Postgres server of ``--database-url``), registers
one client, sends ``--count`` GET /authorize requests without a cookie and prints the
answers by status, the ``browser_sessions`` rows and the storage grown.
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import os
import secrets
import tempfile
from pathlib import Path

import sqlalchemy as sa
from starlette.testclient import TestClient

from authserver.app import create_app
from authserver.clients.service import create_client
from authserver.context import Context
from authserver.db import create_engine, import_models, migrate, transaction
from authserver.settings import Secret, Settings

ISSUER = "http://127.0.0.1:8000"
REDIRECT_URI = "https://rp.example.com/cb"


def _storage(engine: sa.Engine, sqlite_file: Path | None) -> tuple[int, int]:
    with engine.connect() as conn:
        rows = int(conn.scalar(sa.text("SELECT count(*) FROM browser_sessions")) or 0)
        if sqlite_file is None:
            size = int(conn.scalar(sa.text("SELECT pg_database_size(current_database())")) or 0)
            return rows, size
    return rows, sum(p.stat().st_size for p in sqlite_file.parent.glob(sqlite_file.name + "*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--state-bytes", type=int, default=30000)
    parser.add_argument("--database-url", help="a Postgres server URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    import_models()
    work = Path(tempfile.mkdtemp(prefix="authserver-strangers-"))
    keys = work / "keys"
    keys.mkdir(mode=0o700)
    admin = None
    if args.database_url:
        name = f"authserver_strangers_{secrets.token_hex(4)}"
        admin = sa.create_engine(sa.make_url(args.database_url).set(database="postgres"),
                                 isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url, sqlite_file = sa.make_url(args.database_url).set(database=name).render_as_string(False), None
    else:
        sqlite_file = work / "strangers.db"
        url = f"sqlite:///{sqlite_file}"
    try:
        engine = create_engine(url, pool_size=2)
        migrate(engine)
        settings = Settings(issuer=ISSUER, secret_key=Secret(secrets.token_urlsafe(32)), database_url=url,
                            keys_dir=keys, data_dir=work / "data", rate_limits=False, argon2_memory_cost=8,
                            argon2_time_cost=1, argon2_parallelism=1, log_level="warning")
        ctx = Context(settings)
        ctx.keys.ensure_key()
        with transaction(ctx.sessions) as db:
            client_id = create_client(db, ctx.box, client_name="Bench", redirect_uris=[REDIRECT_URI],
                                      grant_types=["authorization_code"], scope="openid").client.client_id
        challenge = base64.urlsafe_b64encode(hashlib.sha256(os.urandom(32)).digest()).decode().rstrip("=")
        before = _storage(engine, sqlite_file)
        statuses: collections.Counter[int] = collections.Counter()
        with TestClient(create_app(settings, context=ctx), base_url=ISSUER, follow_redirects=False) as http:
            for _ in range(args.count):
                http.cookies.clear()
                statuses[http.get("/authorize", params={
                    "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
                    "scope": "openid", "state": secrets.token_urlsafe(args.state_bytes)[:args.state_bytes],
                    "code_challenge": challenge, "code_challenge_method": "S256"}).status_code] += 1
        after = _storage(engine, sqlite_file)
        print(f"{args.count} cookieless /authorize, state of {args.state_bytes} bytes, "
              f"{'postgres' if sqlite_file is None else 'sqlite'}: answers {dict(statuses)}; "
              f"browser_sessions rows {before[0]} -> {after[0]}; storage {before[1]} -> {after[1]} bytes "
              f"(+{after[1] - before[1]})")
        ctx.close()
        engine.dispose()
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
