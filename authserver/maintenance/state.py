"""Change counters in ``cluster_state`` and the per-process watcher that polls them.

A writer bumps a counter in the transaction that makes the change; every
process reads all counters with one query at most once per ``interval``
(1 s) and drops the caches whose counter moved. That is the bound within
which a process without Redis sees another process's revocation or new key.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from authserver.db import create_engine
from authserver.maintenance.models import ClusterState

REVOCATIONS = "revocations"
SIGNING_KEYS = "signing_keys"
MAINTENANCE_AT = "maintenance_at"

log = structlog.get_logger("authserver.maintenance")


def _upsert(db: Session, name: str, value: Any, initial: int) -> None:
    if db.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg = pg_insert(ClusterState).values(name=name, value=initial)
        db.execute(pg.on_conflict_do_update(index_elements=["name"], set_={"value": value}))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        lite = sqlite_insert(ClusterState).values(name=name, value=initial)
        db.execute(lite.on_conflict_do_update(index_elements=["name"], set_={"value": value}))


def bump(db: Session, name: str) -> None:
    """Increase counter ``name`` once per transaction (it is committed with the change)."""
    done: set[str] = db.info.setdefault("bumped", set())
    if name in done:
        return
    done.add(name)
    _upsert(db, name, ClusterState.value + 1, 1)


def get(db: Session, name: str) -> int:
    return db.scalar(sa.select(ClusterState.value).where(ClusterState.name == name)) or 0


def put(db: Session, name: str, value: int) -> None:
    _upsert(db, name, value, value)


def read_all(engine: Engine) -> dict[str, int]:
    """Every counter, read outside any transaction (takes no lock on SQLite)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return {name: int(value) for name, value in conn.execute(sa.select(ClusterState.name, ClusterState.value))}


class ChangeWatcher:
    """The counters as this process last read them, re-read at most once per ``interval``.

    Never blocks a request on another thread's poll; a failed poll keeps the
    last values and is retried after ``interval``. Reads go through
    :attr:`engine`, a one-connection engine of its own: a request thread that
    holds a connection of the main pool (and, on SQLite, the write lock) must
    never wait for a second one from the same pool.
    """

    def __init__(self, engine: Engine, interval: float = 1.0) -> None:
        self.engine = create_engine(engine.url.render_as_string(hide_password=False), pool_size=1)
        self.interval = interval
        self._values: dict[str, int] = {}
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> dict[str, int]:
        if time.monotonic() - self._checked_at < self.interval or not self._lock.acquire(blocking=False):
            return self._values
        try:
            self._values = read_all(self.engine)
        except SQLAlchemyError as exc:
            log.warning("change_poll_failed", error=type(exc).__name__)
        finally:
            self._checked_at = time.monotonic()
            self._lock.release()
        return self._values

    def close(self) -> None:
        self.engine.dispose()

    def expire(self) -> None:
        """Read again on the next call (after this process changed something itself)."""
        self._checked_at = float("-inf")
