"""Token endpoint (RFC 6749 §3.2): every grant goes through Authlib via the bridge."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.endpoints.guards import rate_limit
from authserver.oauth import bridge


async def token(request: Request) -> Response:
    ctx = request.app.state.context
    frozen = await bridge.freeze(request)

    def run() -> tuple:
        rate_limit(ctx, "token", frozen.ip)
        return ctx.oauth.token_response(frozen)

    return bridge.to_response(await bridge.call(ctx, run))


routes = [Route("/token", token, methods=["POST"])]
