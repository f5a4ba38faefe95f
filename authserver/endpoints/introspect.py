"""Token introspection (RFC 7662)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.endpoints.guards import rate_limit
from authserver.oauth import bridge


async def introspect(request: Request) -> Response:
    ctx = request.app.state.context
    frozen = await bridge.freeze(request)

    def run() -> tuple:
        rate_limit(ctx, "introspection", frozen.ip)
        return ctx.oauth.introspect(frozen)

    return bridge.to_response(await bridge.call(ctx, run))


routes = [Route("/introspect", introspect, methods=["POST"])]
