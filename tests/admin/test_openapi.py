"""The OpenAPI 3.1 document and the routes are built from one table: neither can
have an operation the other lacks."""

from __future__ import annotations

import pytest

from authserver.admin.api import OPERATIONS
from authserver.admin.api.schema import enforceable

METHODS = {"get", "post", "put", "patch", "delete"}


def test_the_document_lists_exactly_the_served_operations(client, admin):
    document = client.get("/admin/api/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    listed = {(method.upper(), path) for path, item in document["paths"].items() for method in item
              if method in METHODS}
    assert listed == {(op.method, op.full_path) for op in OPERATIONS}
    for method, path in listed:
        entry = document["paths"][path][method.lower()]
        op = next(o for o in OPERATIONS if (o.method, o.full_path) == (method, path))
        assert entry["x-permission"] == op.permission
        # every listed operation is served: authenticated, it is never the router's 404/405
        response = client.request(method, path.replace("{", "").replace("}", ""), headers=admin,
                                  json={} if op.request is not None else None)
        assert response.status_code != 405
        assert response.json().get("error") not in (None, "method_not_allowed") or response.status_code < 300


def test_every_reference_resolves(client):
    document = client.get("/admin/api/openapi.json").json()
    components = document["components"]["schemas"]
    refs = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in components, ref


def test_the_document_is_public_and_names_the_scope(client):
    response = client.get("/admin/api/openapi.json")
    assert response.status_code == 200
    assert "authserver:admin" in response.json()["info"]["description"]


@pytest.mark.parametrize("schema", [
    {"type": "string", "format": "email"},
    {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}},
    {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/Loose"}}},
])
def test_a_request_schema_must_say_only_what_the_validator_enforces(schema):
    with pytest.raises(AssertionError):
        enforceable(schema, {"Loose": {"type": "integer", "multipleOf": 2}})
