"""Issue 15 item 3: the admin surface enforces permissions, route by route.

Driven by the route table itself, so a new route is covered the day it is added:
for every operation, a token lacking its permission gets 403 and a token holding
only that permission does not; an ``auditor`` reads everything and changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.routing import Route

from authserver.admin.api import OPERATIONS
from authserver.admin.api.table import PREFIX, Operation
from authserver.roles.permissions import ADMIN_PERMISSIONS, READ, WRITE

IDS = {"user_id": "00000000-0000-4000-8000-000000000000", "client_id": "no-such-client", "sid": "no-such-sid",
       "consent_id": "999999", "token_id": "999999", "entry_id": "999999"}


def url(op: Operation) -> str:
    return re.sub(r"{([a-z_]+)}", lambda m: IDS[m.group(1)], op.full_path)


def send(client: Any, op: Operation, token: str) -> Any:
    return client.request(op.method, url(op), headers={"Authorization": f"Bearer {token}"},
                          json={} if op.request is not None else None)


def test_every_operation_needs_an_admin_permission():
    for op in OPERATIONS:
        assert op.permission in ADMIN_PERMISSIONS, f"{op.method} {op.path}: {op.permission}"
        # reading needs :read, everything else :write, so a read-only role can change nothing
        assert op.permission.endswith(f":{READ}" if op.method == "GET" else f":{WRITE}"), (op.method, op.path)


def test_every_admin_route_comes_from_the_table(app):
    served = {(method, route.path) for route in app.routes if isinstance(route, Route)
              and route.path.startswith(PREFIX) and route.path != f"{PREFIX}/openapi.json"
              for method in (route.methods or set()) - {"HEAD"}}
    assert served == {(op.method, op.full_path) for op in OPERATIONS}


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
def test_the_operation_needs_its_permission(client, client_token, op):
    others = [p for p in ADMIN_PERMISSIONS if p != op.permission]
    refused = send(client, op, client_token(permissions=others))
    assert refused.status_code == 403, refused.text
    assert refused.json() == {"error": "forbidden",
                              "error_description": f"Your roles do not grant {op.permission}."}
    allowed = send(client, op, client_token(permissions=[op.permission]))
    assert allowed.status_code not in (401, 403), allowed.text
    assert allowed.status_code < 500


def test_an_auditor_reads_everything_and_changes_nothing(client, client_token):
    token = client_token(roles=["auditor"])
    for op in OPERATIONS:
        response = send(client, op, token)
        if op.method == "GET":
            assert response.status_code in (200, 404), (op.method, op.path, response.text)
        else:
            assert response.status_code == 403, (op.method, op.path, response.text)


def test_support_manages_users_and_sessions_only(client, client_token):
    token = client_token(roles=["support"])
    for op in OPERATIONS:
        response = send(client, op, token)
        resource = op.permission.split(":")[1]
        if resource in ("users", "sessions"):
            assert response.status_code != 403, (op.method, op.path)
        else:
            assert response.status_code == 403, (op.method, op.path)
