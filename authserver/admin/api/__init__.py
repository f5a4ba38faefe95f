"""The admin API under ``/admin/api/``: JSON, described by the OpenAPI 3.1 document at
``/admin/api/openapi.json``, both built from :data:`OPERATIONS` (one module per
resource). Authentication and permissions: :mod:`authserver.admin.api.auth`; the
table and the shared handler wrapper: :mod:`authserver.admin.api.table`."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authserver.admin.api import audit, clients, consents, deny_list, keys, registration_tokens, users
from authserver.admin.api.schema import Schema, obj, text
from authserver.admin.api.table import PREFIX, Operation, openapi
from authserver.admin.api.table import routes as build_routes
from authserver.context import context_of

_RESOURCES = (users, clients, keys, consents, registration_tokens, deny_list, audit)
OPERATIONS: Final[tuple[Operation, ...]] = tuple(op for module in _RESOURCES for op in module.OPERATIONS)
COMPONENTS: Final[dict[str, Schema]] = {
    "Error": obj({"error": text(100), "error_description": text(1000)},
                 description="RFC 6749 §5.2 shape; empty when no token was sent (RFC 6750 §3.1)"),
    **{name: schema for module in _RESOURCES for name, schema in module.SCHEMAS.items()},
}


def _version() -> str:
    try:
        return version("authserver")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0"


def document(issuer: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the admin API."""
    return openapi(OPERATIONS, COMPONENTS, issuer=issuer, version=_version())


async def openapi_json(request: Request) -> Response:
    """Public: it describes the API and holds nothing secret."""
    return JSONResponse(document(context_of(request).settings.issuer))


routes: list[Route] = [Route(f"{PREFIX}/openapi.json", openapi_json, methods=["GET"]),
                       *build_routes(OPERATIONS, COMPONENTS)]
