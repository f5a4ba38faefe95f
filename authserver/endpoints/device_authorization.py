"""Device authorization endpoint (RFC 8628 §3.1): a device asks for a device code and a
user code. Form parameters only, client authentication as at the token endpoint."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.context import context_of
from authserver.oauth import bridge, device
from authserver.web.guards import rate_limit


async def device_authorization(request: Request) -> Response:
    ctx = context_of(request)
    frozen = await bridge.freeze(request)

    def run() -> bridge.Result:
        rate_limit(ctx, "token", frozen.ip)
        return device.authorization_response(ctx, frozen)

    return bridge.to_response(await bridge.call(ctx, run))


routes = [Route("/device_authorization", device_authorization, methods=["POST"])]
