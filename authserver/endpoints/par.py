"""Pushed authorization request endpoint (RFC 9126 §2): ``POST /par``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.context import context_of
from authserver.oauth import authorization, bridge
from authserver.web.guards import rate_limit


async def par(request: Request) -> Response:
    ctx = context_of(request)
    frozen = await bridge.freeze(request)

    def run() -> bridge.Result:
        rate_limit(ctx, "token", frozen.ip)
        return authorization.push(ctx, frozen)

    return bridge.to_response(await bridge.call(ctx, run))


routes = [Route("/par", par, methods=["POST"])]
