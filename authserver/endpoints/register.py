"""RFC 7591 registration (``POST /register``) and RFC 7592 management
(``GET``/``PUT``/``DELETE /register/{client_id}``); the work is in
:mod:`authserver.clients.registration`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authserver.clients import registration
from authserver.context import context_of
from authserver.oauth import bridge
from authserver.oauth.vocabulary import NO_STORE
from authserver.web.guards import rate_limit


def bearer_token(request: Request | bridge.FrozenJsonRequest) -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1), else None.
    A token in the query or body is never accepted."""
    scheme, _, token = (request.headers.get("authorization") or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


async def _run(request: Request, work: Callable[[Session], dict[str, Any] | None], status: int) -> Response:
    """Run ``work`` in a transaction; a ``RegistrationError`` rolls it back and goes to
    the app's error handler (``authserver.errors``)."""
    ctx = context_of(request)
    result = await bridge.call(ctx, lambda: work(bridge.current_db.get()))
    if result is None:
        return Response(status_code=status, headers=NO_STORE)
    return JSONResponse(result, status, headers=NO_STORE)


async def register(request: Request) -> Response:
    ctx = context_of(request)
    frozen = await bridge.freeze_json(request)
    token = bearer_token(frozen)

    def work(db: Session) -> dict[str, Any]:
        rate_limit(ctx, "registration", frozen.ip)
        return registration.register_client(db, ctx.box, initial_token=token, body=frozen.payload.data,
                                            issuer=ctx.settings.issuer, ip=frozen.ip)

    return await _run(request, work, 201)


async def configure(request: Request) -> Response:
    ctx = context_of(request)
    client_id = request.path_params["client_id"]
    token = bearer_token(request)
    issuer = ctx.settings.issuer
    ip = request.state.client_ip
    if request.method == "PUT":
        frozen = await bridge.freeze_json(request)
        return await _run(request, lambda db: registration.update_client(
            db, ctx.box, client_id=client_id, token=token, body=frozen.payload.data, issuer=issuer,
            ip=ip), 200)
    if request.method == "DELETE":
        return await _run(request, lambda db: registration.delete_registered_client(
            db, ctx.box, client_id=client_id, token=token, ip=ip), 204)
    return await _run(request, lambda db: registration.read_client(  # GET (and HEAD)
        db, ctx.box, client_id=client_id, token=token, issuer=issuer), 200)


routes = [
    Route("/register", register, methods=["POST"]),
    Route("/register/{client_id}", configure, methods=["GET", "PUT", "DELETE"]),
]
