"""``create_app(settings)``: the Starlette application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from authserver import branding, errors, metrics
from authserver.admin import api as admin_api
from authserver.admin.console import routes as console
from authserver.context import Context, context_of
from authserver.endpoints import (
    authorize,
    device_authorization,
    discovery,
    health,
    introspect,
    jwks,
    logout,
    par,
    register,
    revoke,
    token,
    userinfo,
)
from authserver.interaction import routes as interaction
from authserver.logging import configure_logging
from authserver.maintenance.worker import MaintenanceWorker
from authserver.middleware import RequestContextMiddleware
from authserver.security.denylist_middleware import DenyListMiddleware
from authserver.security.input import InputEdgeMiddleware
from authserver.settings import Settings


def create_app(settings: Settings, *, context: Context | None = None) -> Starlette:
    """Build the app. Keys must exist (``ensure_key``) and the schema be migrated."""
    configure_logging(settings.log_format, settings.log_level)
    ctx = context or Context(settings)
    if settings.metrics_port:
        metrics.enable()  # the listener is `authserver serve`'s (docs/metrics.md)
    ctx.keys.check_permissions()
    ctx.oauth  # noqa: B018  (build the protocol engine now, not on the first request)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Authlib runs in worker threads; size the limiter with the DB pool
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threadpool_size
        maintenance = MaintenanceWorker(ctx)
        maintenance.start()
        yield
        await maintenance.stop()
        ctx.close()

    routes: list[BaseRoute] = [
        *discovery.routes, *jwks.routes, *authorize.routes, *token.routes, *par.routes, *introspect.routes,
        *revoke.routes, *userinfo.routes, *logout.routes, *register.routes, *health.routes,
        *device_authorization.routes,
        *interaction.routes, *admin_api.routes,
        *interaction.routes, *console.routes,
        Route(branding.BRAND_CSS_PATH, brand_css, methods=["GET", "HEAD"]),
        Mount("/static", _static_files(ctx), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestContextMiddleware, settings=settings),
                    Middleware(DenyListMiddleware, context=ctx),
                    Middleware(InputEdgeMiddleware)],
        exception_handlers=errors.HANDLERS,
        lifespan=lifespan,
    )
    app.state.context = ctx
    app.state.discovery = discovery.render(settings)
    return app


def _static_files(ctx: Context) -> StaticFiles:
    """``/static/``: the theme folder's ``static/`` first (when set), then the built-in files."""
    dirs = ctx.static_dirs
    static = StaticFiles(directory=str(dirs[-1]))
    static.all_directories = [str(d) for d in dirs]
    return static


async def brand_css(request: Request) -> Response:
    """The brand's colours as CSS custom properties (``style.css`` uses them)."""
    return Response(context_of(request).brand.css, media_type="text/css",
                    headers={"Cache-Control": "public, max-age=3600"})


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` (and ``authserver serve`` workers)."""
    settings = Settings.from_env()
    ctx = Context(settings)
    if settings.is_sqlite:
        from authserver.db import migrate

        migrate(ctx.engine)
    ctx.keys.ensure_key()
    return create_app(settings, context=ctx)
