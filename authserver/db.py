"""Engine, session factory and the one declarative ``Base``.

The protocol engine is synchronous (Authlib), so the app uses sync SQLAlchemy
sessions in worker threads; the connection pool is sized with the thread pool
(see :func:`create_engine`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute, Session, sessionmaker

from authserver.resources import resource_dir

T = TypeVar("T")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Stores naive UTC, returns aware UTC: the same on SQLite and Postgres."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: sa.JSON, list[str]: sa.JSON}


def _private_sqlite_file(path: Path) -> None:
    """The SQLite file holds password hashes: its directory is created 0700 and the
    file 0600 (and so its ``-wal``/``-shm`` files, which SQLite creates with the
    database's mode). An existing file readable by others is narrowed to 0600."""
    missing = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
    for directory in reversed(missing):  # pathlib gives only the last one ``mode``
        directory.mkdir(mode=0o700, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)


def create_engine(database_url: str, *, pool_size: int = 20) -> Engine:
    """Create the engine; SQLite gets WAL mode and a busy timeout."""
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[-1]
        if path and path != ":memory:" and not path.startswith("file:"):
            _private_sqlite_file(Path(path))
        engine = sa.create_engine(
            database_url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=0,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy issue BEGIN itself so a write lock is taken at once
            # (BEGIN IMMEDIATE) and not upgraded mid-transaction (deadlock-prone).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # An AUTOCOMMIT connection only reads (the per-second change polls): no lock.
            if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # No pre-ping: it costs a round trip per checkout on the hot path. A
    # connection dropped by a database restart fails one request and is
    # replaced (pool_recycle bounds a connection's age).
    return sa.create_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=2,
        pool_recycle=1800,
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(engine, expire_on_commit=False)
    event.listen(factory, "loaded_as_persistent", _keep_loaded)
    return factory


#: ``Session.info`` key: a list there makes the session hold the rows it loads (below)
KEEP_LOADED = "keep_loaded"


def _keep_loaded(session: Session, instance: object) -> None:
    """In a request's session (``bridge.call`` sets :data:`KEEP_LOADED`), hold the rows
    of models marked ``keep_in_request`` (users, clients, TOTP factors: read, rarely
    written, never changed behind the ORM's back without ``expire``) until it ends.
    SQLAlchemy's identity map keeps rows only weakly, so a user or client looked up
    by one step of a request (the page wrapper's sign-in check) and dropped was
    fetched again by the next (the pipeline): six statements of a code flow. Held
    here, ``Session.get`` answers from the identity map instead.
    Rows changed by Core ``UPDATE`` statements (codes, refresh tokens) are not held,
    so a re-read sees the database. Long-lived sessions (CLI, jobs) hold nothing."""
    kept = session.info.get(KEEP_LOADED)
    if kept is not None and getattr(instance, "keep_in_request", False):
        kept.append(instance)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session committed on success, rolled back on error."""
    with factory() as session, session.begin():
        yield session


def import_models() -> None:
    """Import every domain's models so ``Base.metadata`` is complete."""
    from authserver.accounts import models as _accounts  # noqa: F401
    from authserver.audit import models as _audit  # noqa: F401
    from authserver.backchannel import models as _backchannel  # noqa: F401
    from authserver.clients import models as _clients  # noqa: F401
    from authserver.consents import models as _consents  # noqa: F401
    from authserver.device_flow import models as _device_flow  # noqa: F401
    from authserver.keys import models as _keys  # noqa: F401
    from authserver.maintenance import models as _maintenance  # noqa: F401
    from authserver.passkeys import models as _passkeys  # noqa: F401
    from authserver.roles import models as _roles  # noqa: F401
    from authserver.security import models as _security  # noqa: F401
    from authserver.sessions import models as _sessions  # noqa: F401
    from authserver.tokens import models as _tokens  # noqa: F401


def alembic_config(database_url: str, connection: Any = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resource_dir("migrations")))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Alembic ``upgrade`` to ``revision`` on ``engine`` (the only way the schema is made)."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(alembic_config(str(engine.url), conn), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(alembic_config(str(engine.url), conn), revision)


#: the ``session.info`` key of the callbacks :func:`on_commit` holds
ON_COMMIT = "on_commit"


def on_commit(session: Session, callback: Any) -> None:
    """Run ``callback()`` once ``session``'s transaction has committed (never on rollback).

    For in-process caches: noting a change before the commit could be undone
    by a concurrent reload from the database that does not see it yet.
    """
    session.info.setdefault(ON_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_on_commit(session: Session) -> None:
    for callback in session.info.pop(ON_COMMIT, []):
        callback()


@event.listens_for(Session, "after_rollback")
def _drop_on_commit(session: Session) -> None:
    session.info.pop(ON_COMMIT, None)


@dataclass(frozen=True)
class Window(Generic[T]):
    """One page of a listing: ``items`` from ``offset``; ``has_more`` when a next page exists
    (found by reading one row more, so no ``COUNT(*)`` over a large table)."""

    items: list[T]
    offset: int
    limit: int
    has_more: bool


def window(db: Session, stmt: sa.Select[T], *, offset: int, limit: int) -> Window[T]:
    """Run ``stmt`` (already ordered) for one page of at most ``limit`` rows."""
    offset, limit = max(offset, 0), max(1, min(limit, 500))
    rows = list(db.scalars(stmt.offset(offset).limit(limit + 1)))
    return Window(rows[:limit], offset, limit, len(rows) > limit)


def contains(column: sa.ColumnElement[str] | QueryableAttribute[str], text: str) -> sa.ColumnElement[bool]:
    """Case-insensitive substring match with ``%`` and ``_`` taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sa.func.lower(column).like(f"%{escaped}%", escape="\\")
