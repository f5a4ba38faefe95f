"""A bounded schemathesis run against the admin API through the ASGI app: with an
admin token, no response is a 5xx and every response matches the document
(status code, content type, body schema). A few examples per operation keep it
well under two minutes per backend; ``ADMIN_API_EXAMPLES`` raises the count."""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

EXAMPLES = int(os.environ.get("ADMIN_API_EXAMPLES", "8"))


def test_the_admin_api_matches_its_document(app, admin, make_user, make_client):
    make_user("alice", roles=["admin"])
    make_client()
    schema = schemathesis.openapi.from_asgi("/admin/api/openapi.json", app)
    run_checks = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
                  checks.response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case: object) -> None:
            case.call_and_validate(headers=admin, checks=run_checks)  # type: ignore[attr-defined]

        run()
