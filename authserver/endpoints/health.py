"""``/health``: database and Redis status; degraded Redis is reported, not fatal."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authserver.context import context_of
from authserver.oauth.vocabulary import NO_STORE

if TYPE_CHECKING:
    from authserver.context import Context


def _check(ctx: Context) -> dict[str, str]:
    result = {"database": "ok", "redis": "not_configured"}
    try:
        with ctx.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception:
        result["database"] = "unavailable"
    if ctx.redis is not None:
        try:
            ctx.redis.ping()
            result["redis"] = "ok"
        except Exception:
            result["redis"] = "unavailable"
    return result


async def health(request: Request) -> JSONResponse:
    checks = await run_in_threadpool(_check, context_of(request))
    if checks["database"] != "ok":
        status = "unavailable"
    elif checks["redis"] == "unavailable":
        status = "degraded"  # lockout and rate limits fall back to in-process counters
    else:
        status = "ok"
    return JSONResponse({"status": status, **checks}, 503 if status == "unavailable" else 200,
                        headers=NO_STORE)


routes = [Route("/health", health, methods=["GET"])]
