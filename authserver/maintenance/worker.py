"""Periodic maintenance inside the server: cleanup and staged key rotation.

Every worker of every node runs :meth:`MaintenanceWorker.run` in its lifespan
and wakes every ``MAINTENANCE_INTERVAL`` seconds (with jitter); a pass happens
only in the one worker that takes the maintenance lock (Postgres
``pg_try_advisory_xact_lock``; on SQLite the ``BEGIN IMMEDIATE`` write lock)
and finds the last pass, recorded in ``cluster_state``, at least an interval
old. So across N nodes maintenance runs about once per interval, never twice
at the same time; ``authserver cleanup`` stays for cron users.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import TYPE_CHECKING

import anyio.to_thread
import sqlalchemy as sa
import structlog
from sqlalchemy.orm import Session

from authserver.audit import service as audit
from authserver.db import transaction
from authserver.maintenance import state
from authserver.maintenance.service import run_cleanup

if TYPE_CHECKING:
    from authserver.context import Context

MAINTENANCE_LOCK = 7_261_845_205
"""pg_advisory_xact_lock key of a maintenance pass."""

log = structlog.get_logger("authserver.maintenance")


def try_lock(db: Session, lock: int) -> bool:
    """Take ``lock`` for ``db``'s transaction if it is free (Postgres); on SQLite the
    transaction's write lock already excludes every other writer."""
    if db.get_bind().dialect.name == "postgresql":
        return bool(db.scalar(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lock}))
    db.connection()
    return True


def run_maintenance(ctx: Context, *, force: bool = False, now: int | None = None) -> dict[str, object] | None:
    """One maintenance pass, or None when another worker holds the lock or ran one
    less than an interval ago (``force`` skips that last check, not the lock).

    Returns the figures: rows deleted per kind and the ``kid`` of a key added by
    the staged rotation (``rotated``, or None).
    """
    now = int(time.time()) if now is None else now
    interval = ctx.settings.maintenance_interval
    with transaction(ctx.sessions) as db:
        if not try_lock(db, MAINTENANCE_LOCK):
            return None
        # a little early is fine: the wake-ups are jittered around the interval
        if not force and now - state.get(db, state.MAINTENANCE_AT) < interval * 0.8:
            return None
        state.put(db, state.MAINTENANCE_AT, now)
        figures: dict[str, object] = dict(run_cleanup(ctx, db))
        added = ctx.keys.rotate_if_due_all(db, now)
        for key in added:
            audit.record(db, "key_rotated", kid=key.kid, alg=key.alg, activates_at=key.activates_at,
                         actor="maintenance")
        figures["rotated"] = added[0].kid if added else None
    return figures


class MaintenanceWorker:
    """The lifespan task of one worker process (off when ``MAINTENANCE_INTERVAL`` is 0)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.ctx.settings.maintenance_interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        interval = self.ctx.settings.maintenance_interval
        # first pass soon after start (a rotation may be due), spread across workers
        await asyncio.sleep(random.uniform(1.0, min(10.0, interval)))  # noqa: S311 (jitter)
        while True:
            started = time.monotonic()
            try:
                figures = await anyio.to_thread.run_sync(run_maintenance, self.ctx)
            except Exception as exc:  # the database may be away; try again next time
                log.warning("maintenance_failed", error=type(exc).__name__)
            else:
                if figures is not None:
                    log.info("maintenance_done", seconds=round(time.monotonic() - started, 3), **figures)
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))  # noqa: S311 (jitter)
