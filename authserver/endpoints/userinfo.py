"""UserInfo endpoint (OIDC Core §5.3), GET and POST, Bearer header only.

An access token in the query string is ignored (RFC 9700 §4.3.2, RFC 6750 §2.3):
such a request is unauthenticated. Errors follow RFC 6750 §3.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authserver.accounts import service as accounts
from authserver.oauth import bridge
from authserver.oauth.tokens import requested_claims, user_claims


def _challenge(status: int, error: str | None = None, description: str | None = None) -> Response:
    value = 'Bearer realm="authserver"'
    if error:
        value += f', error="{error}"'
        if description:
            value += f', error_description="{description}"'
    body = {"error": error, "error_description": description} if error else {}
    return JSONResponse(body, status, headers={"WWW-Authenticate": value, "Cache-Control": "no-store"})


async def userinfo(request: Request) -> Response:
    ctx = request.app.state.context
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return _challenge(401)

    def run() -> dict[str, Any] | str:
        claims = ctx.oauth.token_issuer.verify_access_token(token)
        if claims is None:
            return "invalid_token"
        if "openid" not in str(claims.get("scope", "")).split():
            return "insufficient_scope"
        user = accounts.get_user(bridge.current_db.get(), claims["sub"])
        if user is None or user.disabled:
            return "invalid_token"
        body = user_claims(user, claims["scope"])
        body.update(requested_claims(user, claims["scope"], claims.get("claims_request"), "userinfo"))
        return body

    result = await bridge.call(ctx, run)
    if result == "invalid_token":
        return _challenge(401, "invalid_token", "The access token is invalid or expired.")
    if result == "insufficient_scope":
        return _challenge(403, "insufficient_scope", "The access token lacks the openid scope.")
    return JSONResponse(result, headers={"Cache-Control": "no-store"})


routes = [Route("/userinfo", userinfo, methods=["GET", "POST"])]
