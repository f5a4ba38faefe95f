"""The admin API as one table of operations, from which both the Starlette routes and
the OpenAPI 3.1 document are built, so the two cannot drift.

Each :class:`Operation` names its method, path, permission, parameters, request and
response schemas and a synchronous handler. :func:`endpoint` wraps every handler the
same way: read the body once, then in one database transaction (``bridge.call``)
authenticate the token, check the permission, validate the input against the
operation's schemas (400 with a sentence naming the field) and call the handler,
which calls domain services only. Errors are raised, never built: the app's one
error path (``errors.py``) writes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.orm import Session
from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authserver.admin.api import auth
from authserver.admin.api.schema import Schema, check, enforceable, parse_parameter
from authserver.context import Context, context_of
from authserver.errors import DomainError
from authserver.oauth import bridge, dpop
from authserver.oauth.vocabulary import NO_STORE

PREFIX: Final = "/admin/api"
PATH_PARAMETER = re.compile(r"{([a-z_]+)}")


class InvalidInput(DomainError):
    """A parameter or the body does not match the operation's schema."""

    json_only = True


class NotFound(DomainError):
    """The path names something that does not exist."""

    status_code = 404
    error = "not_found"
    hint = "There is nothing with this id."
    json_only = True


@dataclass(frozen=True)
class Call:
    """What a handler gets: the context, the transaction, the caller and the checked input."""

    ctx: Context
    db: Session
    admin: auth.Admin
    path: Mapping[str, Any]
    query: Mapping[str, Any]
    body: Mapping[str, Any]
    #: what runs once the response is sent, after the commit (a mail to the user)
    after: list[Callable[[], object]] = field(default_factory=list)

    @property
    def actor(self) -> str:
        return self.admin.actor


Handler = Callable[[Call], object]


@dataclass(frozen=True)
class Operation:
    """One row of the table. ``response`` is None for 204 No Content; ``path`` is below
    :data:`PREFIX` in OpenAPI template syntax; every ``{name}`` needs a schema in
    ``path_parameters``."""

    method: str
    path: str
    permission: str
    summary: str
    handler: Handler
    tag: str
    response: Schema | None
    status: int = 200
    request: Schema | None = None
    query: Mapping[str, Schema] = field(default_factory=dict)
    path_parameters: Mapping[str, Schema] = field(default_factory=dict)

    def __post_init__(self) -> None:
        named = set(PATH_PARAMETER.findall(self.path))
        if named != set(self.path_parameters):
            raise AssertionError(f"{self.method} {self.path}: path parameters {sorted(named)} "
                                 f"need schemas, got {sorted(self.path_parameters)}")
        if not self.permission.startswith("admin:"):
            raise AssertionError(f"{self.method} {self.path}: permission {self.permission!r}")

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.strip("_")

    @property
    def full_path(self) -> str:
        return PREFIX + self.path


def _read_json(raw: bytes) -> object:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidInput("The body must be a JSON object.") from None


def endpoint(operation: Operation, components: Mapping[str, Schema]) -> Callable[[Request], Any]:
    """The Starlette endpoint of ``operation``."""

    async def run(request: Request) -> Response:
        ctx = context_of(request)
        token = dpop.presented(request.headers.get("authorization"), request.headers, request.method,
                               ctx.settings.issuer + request.url.path)
        raw = await request.body() if operation.request is not None else b""
        query_items = list(request.query_params.multi_items())
        path_items = dict(request.path_params)

        after: list[Callable[[], object]] = []

        def work() -> object:
            db = bridge.current_db.get()
            admin = auth.authenticate(ctx, db, token)
            auth.authorize(admin, operation.permission)
            path, query, body = _checked(operation, components, path_items, query_items, raw)
            return operation.handler(Call(ctx, db, admin, path, query, body, after))

        result = await bridge.call(ctx, work)
        response = (Response(status_code=operation.status, headers=NO_STORE) if operation.response is None
                    else JSONResponse(result, operation.status, headers=NO_STORE))
        if after:
            tasks = BackgroundTasks()
            for task in after:
                tasks.add_task(task)
            response.background = tasks
        return response

    run.__name__ = operation.operation_id
    return run


def _checked(operation: Operation, components: Mapping[str, Schema], path_items: Mapping[str, str],
             query_items: Sequence[tuple[str, str]],
             raw: bytes) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    try:
        path = {name: parse_parameter(schema, path_items[name], name, components)
                for name, schema in operation.path_parameters.items()}
        query: dict[str, Any] = {}
        for name, raw_value in query_items:
            if name not in operation.query:
                raise ValueError(f"unknown query parameter: {name[:60]!r}")
            if name in query:
                raise ValueError(f"{name} is given twice")
            query[name] = parse_parameter(operation.query[name], raw_value, name, components)
        body: dict[str, Any] = {}
        if operation.request is not None:
            value = _read_json(raw)
            check(operation.request, value, "body", components)
            assert isinstance(value, dict)
            body = value
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    return path, query, body


def routes(operations: Sequence[Operation], components: Mapping[str, Schema]) -> list[Route]:
    """One Starlette route per path, dispatching on the method (405 for another)."""
    by_path: dict[str, dict[str, Operation]] = {}
    names = [op.operation_id for op in operations]
    if len(set(names)) != len(names):
        raise AssertionError(f"operation ids must be unique: {sorted(names)}")
    for op in operations:
        for name, schema in {**op.path_parameters, **op.query}.items():
            enforceable(schema, components, f"{op.method} {op.path} {name}")
        if op.request is not None:
            enforceable(op.request, components, f"{op.method} {op.path} body")
        if op.method in by_path.setdefault(op.full_path, {}):
            raise AssertionError(f"{op.method} {op.full_path} is in the table twice")
        by_path[op.full_path][op.method] = op
    result = []
    for path, methods in by_path.items():
        handlers = {method: endpoint(op, components) for method, op in methods.items()}
        result.append(Route(path, _dispatch(handlers), methods=list(handlers)))
    return result


def _dispatch(handlers: Mapping[str, Callable[[Request], Any]]) -> Callable[[Request], Any]:
    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        response: Response = await handlers[method](request)
        return response

    return dispatch


# -- the OpenAPI document ------------------------------------------------------------

_ERRORS: Final[dict[int, str]] = {
    400: "The input does not match the schema or a rule refused it (`error_description` says which).",
    401: "No access token, or an invalid, expired or revoked one (RFC 6750 §3.1); "
         "see `WWW-Authenticate`.",
    403: "The token lacks the `authserver:admin` scope (`insufficient_scope`), or the caller's "
         "roles lack the operation's permission (`forbidden`).",
    404: "Nothing has this id.",
}


def _parameters(operation: Operation) -> list[dict[str, Any]]:
    params = [{"name": name, "in": "path", "required": True, "schema": schema}
              for name, schema in operation.path_parameters.items()]
    params += [{"name": name, "in": "query", "required": False, "schema": schema}
               for name, schema in operation.query.items()]
    return params


def _responses(operation: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if operation.response is None:
        responses[str(operation.status)] = {"description": "Done."}
    else:
        responses[str(operation.status)] = {
            "description": "Done.", "content": {"application/json": {"schema": operation.response}}}
    for status, description in _ERRORS.items():
        if status == 404 and not operation.path_parameters:
            continue
        responses[str(status)] = {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return responses


def openapi(operations: Sequence[Operation], components: Mapping[str, Schema], *, issuer: str,
            version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations`` (``x-permission`` names each
    operation's permission)."""
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        entry: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "x-permission": op.permission,
            "description": f"Needs the permission `{op.permission}`.",
            "parameters": _parameters(op),
            "responses": _responses(op),
        }
        if op.request is not None:
            entry["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": op.request}}}
        paths.setdefault(op.full_path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "authserver admin API",
            "version": version,
            "description": (
                "Administration of this authorization server. Every operation needs an access token "
                "of this server (`Authorization: Bearer`, or `Authorization: DPoP` with a `DPoP` proof "
                "for a DPoP-bound token, RFC 9449 §7.1) with the scope `authserver:admin`, e.g. "
                "from the `client_credentials` grant at `/token`; the roles of the user or client "
                "decide which operations it may call (`x-permission`)."),
        },
        "servers": [{"url": issuer}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": dict(components),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
