"""UserInfo endpoint (OIDC Core §5.3), GET and POST, token in the header only.

``Authorization: Bearer`` (RFC 6750 §2.1) for an unbound token, ``Authorization: DPoP``
with a ``DPoP`` proof carrying ``ath`` for a DPoP-bound one (RFC 9449 §7.1); a bound
token sent as Bearer is refused (§7.2). An access token in the query string or the
body is ignored (RFC 6750 §2.3, §5.3: no bearer tokens in URLs): such a request is
unauthenticated. Refusals are the RFC 6750 §3 errors of :mod:`authserver.errors` and
the DPoP challenges of :mod:`authserver.oauth.dpop`, rendered by the app's one error handler.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authserver.accounts import service as accounts
from authserver.context import context_of
from authserver.errors import InsufficientScope, InvalidToken
from authserver.oauth import bridge, dpop
from authserver.oauth.tokens import requested_claims, user_claims
from authserver.oauth.vocabulary import NO_STORE, OPENID


async def userinfo(request: Request) -> Response:
    ctx = context_of(request)
    presented = dpop.presented(request.headers.get("authorization"), request.headers, request.method,
                               ctx.settings.issuer + request.url.path)

    def run() -> dict[str, Any]:
        claims = ctx.oauth.token_issuer.verify_access_token(presented.token)
        if claims is None:
            raise InvalidToken
        dpop.check_presented(ctx.oauth.dpop, claims, presented)
        if OPENID not in str(claims.get("scope", "")).split():
            raise InsufficientScope("The access token lacks the openid scope.")
        user = accounts.get_user(bridge.current_db.get(), claims["sub"])
        if user is None or user.disabled:
            raise InvalidToken
        body = user_claims(user, claims["scope"])
        body.update(requested_claims(user, claims["scope"], claims.get("claims_request"), "userinfo"))
        return body

    return JSONResponse(await bridge.call(ctx, run), headers={**NO_STORE, **dict(ctx.oauth.dpop.nonce_headers())})


routes = [Route("/userinfo", userinfo, methods=["GET", "POST"])]
