"""JWKS (RFC 7517 §5): public members of every published key, served from memory."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.context import context_of


async def jwks(request: Request) -> Response:
    ctx = context_of(request)
    return Response(
        ctx.keys.jwks_bytes,
        media_type="application/jwk-set+json",
        headers={"Cache-Control": f"public, max-age={ctx.settings.jwks_max_age}"},
    )


routes = [Route("/jwks.json", jwks, methods=["GET"])]
