"""JWKS (RFC 7517 §5): public members of every published key, served from memory.

The response is built once per key set, with an ``ETag``: a client revalidating with
``If-None-Match`` gets ``304`` until a key is added, activated or retired, on this node
or any other (every process reloads the key set within a second of a change, and the
tag is a hash of the body, so all nodes give the same tag for the same keys).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.context import context_of
from authserver.web.prebuilt import Prebuilt


async def jwks(request: Request) -> Response:
    ctx = context_of(request)
    body = ctx.keys.jwks_bytes  # the same object until the key set or a key's status changes
    state = request.app.state
    prebuilt: Prebuilt | None = getattr(state, "jwks", None)
    if prebuilt is None or prebuilt.body is not body:
        prebuilt = Prebuilt(body, "application/jwk-set+json", f"public, max-age={ctx.settings.jwks_max_age}")
        state.jwks = prebuilt
    return prebuilt.answer(request)


routes = [Route("/jwks.json", jwks, methods=["GET"])]
