"""Browser session cookie, session fixation, request ids and the access log
(README "Security model", Browser and Logs)."""

from __future__ import annotations

import io
import json

import pytest
from starlette.testclient import TestClient

from authserver.app import create_app
from authserver.context import Context
from authserver.logging import configure_logging
from tests.account_flows import login
from tests.conftest import make_settings


def _set_cookies(response) -> list[str]:
    return response.headers.get_list("set-cookie")


def test_session_cookie_is_httponly_and_lax_and_changes_at_login(client, make_user):
    make_user()
    client.get("/login")
    anonymous = client.cookies.get("authserver_session")
    assert anonymous
    response = login(client)
    assert response.status_code == 303
    (cookie,) = [c for c in _set_cookies(response) if c.startswith("authserver_session=")]
    attributes = [a.strip().lower() for a in cookie.split(";")]
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    assert "secure" not in attributes  # the test issuer is http://127.0.0.1
    # session fixation: the id the browser had before the password is not the one after
    assert client.cookies.get("authserver_session") not in (None, anonymous)


def test_https_issuer_uses_host_prefix_and_secure(ctx, tmp_path):
    settings = make_settings(issuer="https://127.0.0.1:8000", database_url=ctx.settings.database_url,
                             keys_dir=ctx.settings.keys_dir, data_dir=tmp_path / "data")
    https_ctx = Context(settings)
    try:
        app = create_app(settings, context=https_ctx)
        with TestClient(app, base_url="https://127.0.0.1:8000") as https:
            response = https.get("/login")
        (cookie,) = _set_cookies(response)
        attributes = [a.strip().lower() for a in cookie.split(";")]
        assert cookie.startswith("__Host-authserver_session=")
        assert "secure" in attributes and "httponly" in attributes and "path=/" in attributes
        assert not any(a.startswith("domain=") for a in attributes)  # __Host- forbids Domain
    finally:
        https_ctx.close()


@pytest.fixture
def log_lines(settings):
    buffer = io.StringIO()
    configure_logging("json", "debug", stream=buffer)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    finally:
        configure_logging(settings.log_format, settings.log_level)


def test_every_log_line_of_a_request_carries_its_request_id(client, make_user, log_lines):
    make_user()
    response = login(client, password="wrong password here")
    request_id = response.headers["x-request-id"]
    assert request_id
    lines = [line for line in log_lines() if line.get("request_id") == request_id]
    assert {line["event"] for line in lines} >= {"login_failed", "request"}
    # the next request gets another id
    assert client.get("/health").headers["x-request-id"] != request_id


def test_access_log_has_the_path_and_never_the_query(client, log_lines):
    response = client.get("/authorize", params={"client_id": "x", "state": "query-secret-value"})
    assert response.status_code == 400
    (line,) = [line for line in log_lines() if line["event"] == "request"]
    assert line["path"] == "/authorize" and line["status"] == 400
    assert "query-secret-value" not in json.dumps(log_lines())


def test_incoming_request_id_is_kept_only_when_well_formed(client):
    assert client.get("/health", headers={"x-request-id": "abc-1234"}).headers["x-request-id"] == "abc-1234"
    forged = client.get("/health", headers={"x-request-id": "x\" injected=1"}).headers["x-request-id"]
    assert forged != "x\" injected=1" and "injected" not in forged
