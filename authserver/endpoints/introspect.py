"""Token introspection (RFC 7662)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.context import context_of
from authserver.oauth import bridge
from authserver.web.guards import rate_limit


async def introspect(request: Request) -> Response:
    ctx = context_of(request)
    frozen = await bridge.freeze(request)

    def run() -> bridge.Result:
        rate_limit(ctx, "introspection", frozen.ip)
        return ctx.oauth.introspect(frozen)

    # a JWT access token is checked from the cache: on the loop (bridge.call); an opaque
    # (refresh) token is looked up in the database
    on_loop = frozen.form.get("token", "").count(".") == 2 and bridge.cache_only(frozen)
    return bridge.to_response(await bridge.call(ctx, run, on_loop=on_loop))


routes = [Route("/introspect", introspect, methods=["POST"])]
