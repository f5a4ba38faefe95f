"""Token introspection (RFC 7662)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.context import context_of
from authserver.oauth import bridge
from authserver.web.guards import client_id_of, rate_limit


async def introspect(request: Request) -> Response:
    ctx = context_of(request)
    frozen = await bridge.freeze(request)

    def run() -> bridge.Result:
        rate_limit(ctx, "introspection", frozen.ip, client_id_of(frozen))
        return ctx.oauth.introspect(frozen)

    return bridge.to_response(await bridge.call(ctx, run))


routes = [Route("/introspect", introspect, methods=["POST"])]
