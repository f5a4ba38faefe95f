"""Token endpoint (RFC 6749 §3.2): every grant goes through Authlib via the bridge."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.context import context_of
from authserver.oauth import bridge
from authserver.web.guards import rate_limit


async def token(request: Request) -> Response:
    ctx = context_of(request)
    frozen = await bridge.freeze(request)

    def run() -> bridge.Result:
        rate_limit(ctx, "token", frozen.ip)
        return ctx.oauth.token_response(frozen)

    # client_credentials issues from the cache: on the loop (bridge.call); the other
    # grants read and write the database
    on_loop = frozen.form.get("grant_type") == "client_credentials" and bridge.cache_only(frozen)
    return bridge.to_response(await bridge.call(ctx, run, on_loop=on_loop))


routes = [Route("/token", token, methods=["POST"])]
