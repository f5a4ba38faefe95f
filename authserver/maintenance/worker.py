"""Periodic maintenance inside the server: cleanup, staged key rotation, and the
delivery of back-channel logout tokens.

Every worker of every node runs :meth:`MaintenanceWorker.run` in its lifespan
and wakes every ``MAINTENANCE_INTERVAL`` seconds (with jitter); a pass happens
only in the one worker that takes the maintenance lock (Postgres
``pg_try_advisory_xact_lock``; on SQLite the ``BEGIN IMMEDIATE`` write lock)
and finds the last pass, recorded in ``cluster_state``, at least an interval
old. So across N nodes maintenance runs about once per interval, never twice
at the same time; ``authserver cleanup`` stays for cron users.

Back-channel logout tokens (:mod:`authserver.backchannel.service`) are delivered by a
second task of every worker: at once when a transaction of this process queued some
(it is woken after the commit), and otherwise every ``BACKCHANNEL_LOGOUT_RETRY_DELAY``
(at most ``MAINTENANCE_INTERVAL``) for retries and rows queued by other nodes. Rows are
claimed, so any number of workers and nodes share the outbox without sending twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio.to_thread
import sqlalchemy as sa
import structlog
from sqlalchemy.orm import Session

from authserver.audit import service as audit
from authserver.backchannel import service as backchannel
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
        self._deliveries: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._waker: Callable[[], None] | None = None

    def start(self) -> None:
        if self.ctx.settings.maintenance_interval > 0:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._loop())

            def wake() -> None:  # from a request's worker thread, after its commit
                loop.call_soon_threadsafe(self._wake.set)

            self._waker = wake
            backchannel.add_waker(wake)
            self._deliveries = loop.create_task(self._deliver())

    async def stop(self) -> None:
        if self._waker is not None:
            backchannel.remove_waker(self._waker)
        for task in (self._task, self._deliveries):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _deliver(self) -> None:
        s = self.ctx.settings
        period = max(1, min(s.backchannel_logout_retry_delay, s.maintenance_interval))
        while True:
            self._wake.clear()  # before the pass: a wake-up during it is not lost
            try:
                counts = await anyio.to_thread.run_sync(backchannel.deliver_due, self.ctx)
            except Exception as exc:  # the database may be away; try again next time
                log.warning("backchannel_logout_pass_failed", error=type(exc).__name__)
            else:
                if any(counts.values()):
                    log.info("backchannel_logout_pass", **counts)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=period)

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
