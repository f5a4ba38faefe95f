"""An API that decides from the permissions in authserver access tokens (docs/roles.md).

The worked example of docs/roles.md: an "orders" API whose routes each need one
permission. Tokens are validated offline exactly as in
:mod:`examples.resource_server` (JWKS, ``typ: at+jwt``, RS256, ``iss``, ``aud``,
``exp``); the API then looks for the route's permission in the token's
``entitlements`` claim (RFC 9068 §2.2.3.1), which authserver fills when

* the client asked for the ``roles`` scope, and
* the permission is under one of the client's ``permission_prefixes``
  (``orders`` here), so this API never sees another API's permissions.

Routes::

    GET  /orders        needs orders:read
    POST /orders        needs orders:write

A token without the permission gets ``403`` with ``error="insufficient_scope"``
(RFC 6750 §3.1: "requires higher privileges than provided by the access
token") and names the missing permission; a bad token gets ``401``.

Run it::

    RS_ISSUER=http://127.0.0.1:8000 RS_AUDIENCE=orders-api \\
        uvicorn --factory examples.orders_api:app_from_env --port 9001

Needs ``starlette`` and ``pyjwt[crypto]``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from examples.resource_server import TokenError, Validator, _unauthorized

Handler = Callable[[Request, dict[str, Any]], Awaitable[JSONResponse]]


def permissions(claims: dict[str, Any]) -> frozenset[str]:
    """The permissions an access token grants: its ``entitlements`` (absent when the
    client did not ask for the ``roles`` scope: then none)."""
    value = claims.get("entitlements")
    if not isinstance(value, list):
        return frozenset()
    return frozenset(p for p in value if isinstance(p, str))


def requires(permission: str, validator: Validator, handler: Handler) -> Callable[[Request], Awaitable[JSONResponse]]:
    """Wrap ``handler``: a valid access token holding ``permission``, or 401/403."""

    async def endpoint(request: Request) -> JSONResponse:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized(None)
        try:
            claims = await run_in_threadpool(validator.validate, token.strip())
        except TokenError as exc:
            return _unauthorized(str(exc))
        if permission not in permissions(claims):
            description = f"this needs the permission {permission}"
            return JSONResponse(
                {"error": "insufficient_scope", "error_description": description}, status_code=403,
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", '
                                             f'error_description="{description}"'})
        return await handler(request, claims)

    return endpoint


def create_app(validator: Validator) -> Starlette:
    orders: list[dict[str, Any]] = []

    async def list_orders(request: Request, claims: dict[str, Any]) -> JSONResponse:
        return JSONResponse({"orders": orders, "sub": claims["sub"]})

    async def create_order(request: Request, claims: dict[str, Any]) -> JSONResponse:
        order = {"id": len(orders) + 1, "by": claims["sub"]}
        orders.append(order)
        return JSONResponse(order, status_code=201)

    return Starlette(routes=[
        Route("/orders", requires("orders:read", validator, list_orders), methods=["GET"]),
        Route("/orders", requires("orders:write", validator, create_order), methods=["POST"]),
    ])


def app_from_env() -> Starlette:
    return create_app(Validator(os.environ.get("RS_ISSUER", "http://127.0.0.1:8000"), os.environ["RS_AUDIENCE"],
                                os.environ.get("RS_JWKS_URI") or None))
