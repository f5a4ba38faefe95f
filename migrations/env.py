"""Alembic environment: the URL and connection come from authserver.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from authserver.db import Base, create_engine, import_models

import_models()
target_metadata = Base.metadata
config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", pool_size=1)
    engine.pool = pool.NullPool(engine.pool._creator)  # one-off connection
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite ALTER TABLE support
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `authserver migrate`")
run_migrations_online()
