"""Token endpoint (RFC 6749 §3.2): every grant goes through Authlib via the bridge."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.context import context_of
from authserver.oauth import bridge
from authserver.web.guards import client_id_of, rate_limit


async def token(request: Request) -> Response:
    ctx = context_of(request)
    frozen = await bridge.freeze(request)

    def run() -> bridge.Result:
        rate_limit(ctx, "token", frozen.ip, client_id_of(frozen))
        return ctx.oauth.token_response(frozen)

    return bridge.to_response(await bridge.call(ctx, run))


routes = [Route("/token", token, methods=["POST"])]
