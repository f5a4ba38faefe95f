"""Pure ASGI middleware refusing requests from the admin IP/CIDR deny list.

Installed inside :class:`RequestContextMiddleware`, so ``scope["state"]["client_ip"]``
(proxy-aware) is set. The list comes from ``ip_deny_entries`` and is re-read
at most every :data:`REFRESH_SECONDS` in a worker thread; while one request
refreshes, the others use the previous list. If the database cannot be read
the previous list stays in force. A hit answers 403 before any other work and
is audited at most once per address per :data:`AUDIT_EVERY` seconds per worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import structlog
from sqlalchemy import select
from starlette.types import ASGIApp, Receive, Scope, Send

from authserver import errors
from authserver.audit import service as audit
from authserver.db import transaction
from authserver.security.models import IpDenyEntry
from authserver.security.network import DenyList

if TYPE_CHECKING:
    from authserver.context import Context

log = structlog.get_logger("authserver.denylist")
REFRESH_SECONDS = 5.0
AUDIT_EVERY = 60.0


class DenyListMiddleware:
    def __init__(self, app: ASGIApp, context: Context, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.ctx = context
        self.clock = clock
        self.deny = DenyList(())
        self.loaded_at: float | None = None
        self._lock = anyio.Lock()
        self._audited: dict[str, float] = {}

    def _load(self) -> DenyList:
        with transaction(self.ctx.sessions) as db:
            cidrs = list(db.scalars(select(IpDenyEntry.cidr)))
        good = []
        for cidr in cidrs:
            try:
                DenyList([cidr])
                good.append(cidr)
            except ValueError:
                log.warning("deny_list_bad_entry", cidr=cidr)
        return DenyList(good)

    async def refresh(self, *, force: bool = False) -> None:
        now = self.clock()
        if not force and self.loaded_at is not None and now - self.loaded_at < REFRESH_SECONDS:
            return
        if self._lock.locked() and self.loaded_at is not None:
            return  # another request is refreshing; use the current list meanwhile
        async with self._lock:
            if not force and self.loaded_at is not None and self.clock() - self.loaded_at < REFRESH_SECONDS:
                return
            try:
                self.deny = await anyio.to_thread.run_sync(self._load)
            except Exception as exc:
                log.warning("deny_list_refresh_failed", error=type(exc).__name__)
            self.loaded_at = self.clock()

    def _audit(self, ip: str, path: str) -> None:
        with transaction(self.ctx.sessions) as db:
            audit.record(db, "deny_list_hit", ip=ip, path=path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.refresh()
        ip = scope.get("state", {}).get("client_ip")
        if not ip or not len(self.deny) or not self.deny.contains(ip):
            await self.app(scope, receive, send)
            return
        now = self.clock()
        if now - self._audited.get(ip, -AUDIT_EVERY) >= AUDIT_EVERY:
            if len(self._audited) > 10_000:
                self._audited.clear()
            self._audited[ip] = now
            try:
                await anyio.to_thread.run_sync(self._audit, ip, scope["path"])
            except Exception as exc:
                log.warning("deny_list_audit_failed", error=type(exc).__name__)
        await errors.render(errors.AccessDenied())(scope, receive, send)
