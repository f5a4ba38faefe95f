"""Token revocation (RFC 7009)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.context import context_of
from authserver.oauth import bridge


async def revoke(request: Request) -> Response:
    ctx = context_of(request)
    frozen = await bridge.freeze(request)
    return bridge.to_response(await bridge.call(ctx, lambda: ctx.oauth.revoke(frozen)))


routes = [Route("/revoke", revoke, methods=["POST"])]
