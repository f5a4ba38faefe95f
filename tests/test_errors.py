"""The one error path (``authserver/errors.py``): endpoint refusals, middleware refusals
and unexpected exceptions all become responses there, on both backends."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from authserver import errors
from authserver.audit.models import AuditEvent
from authserver.db import transaction
from authserver.logging import configure_logging
from authserver.security.models import IpDenyEntry
from tests.conftest import ISSUER


def _rerouted(app: Any) -> list[str]:
    """Replace the app's ``AppError`` handler with one that marks its responses: a
    refusal that comes back marked went through the one mapping."""
    seen: list[str] = []

    async def marking(request: Request, exc: Exception) -> Response:
        seen.append(type(exc).__name__)
        response = await errors.handle_app_error(request, exc)
        response.headers["x-mapped"] = "yes"
        return response

    app.add_exception_handler(errors.AppError, marking)
    return seen


@pytest.fixture
def mapped_client(app: Any) -> Any:
    seen = _rerouted(app)
    with TestClient(app, base_url=ISSUER) as c:
        c.seen = seen
        yield c


def _client_credentials_token(client: Any, make_client: Any) -> str:
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="openid profile")
    r = client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_userinfo_without_token_is_a_bare_rfc6750_challenge(mapped_client):
    r = mapped_client.get("/userinfo", headers={"Authorization": "Basic eDp5"})
    assert r.status_code == 401 and r.json() == {}
    assert r.headers["www-authenticate"] == 'Bearer realm="authserver"'  # RFC 6750 §3.1: no error code
    assert r.headers["cache-control"] == "no-store" and r.headers["x-mapped"] == "yes"
    assert mapped_client.seen == ["MissingToken"]


def test_userinfo_invalid_token_names_the_error_in_body_and_challenge(mapped_client):
    r = mapped_client.get("/userinfo", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    assert r.json() == {"error": "invalid_token", "error_description": "The access token is invalid or expired."}
    assert r.headers["www-authenticate"] == (
        'Bearer realm="authserver", error="invalid_token", '
        'error_description="The access token is invalid or expired."')
    assert r.headers["x-mapped"] == "yes" and mapped_client.seen == ["InvalidToken"]


def test_userinfo_without_openid_scope_is_403_insufficient_scope(mapped_client, make_client):
    token = _client_credentials_token(mapped_client, make_client)  # openid is dropped for client_credentials
    r = mapped_client.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403
    assert r.json() == {"error": "insufficient_scope",
                        "error_description": "The access token lacks the openid scope."}
    assert r.headers["www-authenticate"] == (
        'Bearer realm="authserver", error="insufficient_scope", '
        'error_description="The access token lacks the openid scope."')
    assert r.headers["x-mapped"] == "yes"


def test_userinfo_refusal_is_json_even_for_a_browser(mapped_client):
    r = mapped_client.get("/userinfo", headers={"Accept": "text/html", "Authorization": "Bearer x"})
    assert r.status_code == 401 and r.headers["content-type"] == "application/json"


@pytest.mark.parametrize(("headers", "challenge"), [
    ({}, 'Bearer realm="authserver"'),
    ({"Authorization": "Bearer wrong"}, 'Bearer realm="authserver", error="invalid_token"'),
])
def test_register_refusals_go_through_the_mapping(mapped_client, headers, challenge):
    r = mapped_client.post("/register", json={"client_name": "x"}, headers={**headers, "Accept": "text/html"})
    assert r.status_code == 401 and r.headers["content-type"] == "application/json"
    assert r.json() == {"error": "invalid_token", "error_description": "A valid bearer token is required."}
    assert r.headers["www-authenticate"] == challenge
    assert (r.headers["cache-control"], r.headers["pragma"]) == ("no-store", "no-cache")
    assert r.headers["x-mapped"] == "yes" and mapped_client.seen == ["RegistrationError"]


def test_register_metadata_error_is_mapped(mapped_client, ctx):
    from authserver.clients.registration import create_initial_access_token

    with transaction(ctx.sessions) as db:
        token = create_initial_access_token(db, ctx.box, "tests")
    r = mapped_client.post("/register", json={"redirect_uris": ["http://rp.example.com/cb"]},
                           headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_redirect_uri"
    assert r.headers["x-mapped"] == "yes"


def test_deny_list_refusal_is_rendered_by_errors(app, ctx):
    with transaction(ctx.sessions) as db:
        db.add(IpDenyEntry(cidr="198.51.100.0/24", reason="test"))
    expected = errors.render(errors.AccessDenied())
    with TestClient(app, base_url=ISSUER, client=("198.51.100.7", 50000)) as c:
        r = c.get("/.well-known/openid-configuration")
        assert c.get("/jwks.json").status_code == 403
    assert r.status_code == 403 and r.content == expected.body == b'{"error":"access_denied"}'
    assert (r.headers["cache-control"], r.headers["pragma"]) == ("no-store", "no-cache")
    # audited once per address and period, not once per request (a flood is not an audit flood)
    with transaction(ctx.sessions) as db:
        hits = db.scalars(sa.select(AuditEvent).where(AuditEvent.event == "deny_list_hit")).all()
        assert [(e.ip, e.detail) for e in hits] == [("198.51.100.7", {"path": "/.well-known/openid-configuration"})]


@pytest.mark.parametrize(("headers", "status", "body"), [
    ({"content-length": "x"}, 400, {"error": "invalid_request", "error_description": "The request is malformed."}),
    ({"content-length": str(10**9)}, 413,
     {"error": "invalid_request", "error_description": "The request body is too large."}),
])
def test_middleware_refusals_are_rendered_by_errors(client, headers, status, body):
    r = client.post("/token", headers=headers)
    assert r.status_code == status and r.json() == body
    assert r.headers["cache-control"] == "no-store" and r.headers["x-request-id"]


def test_domain_errors_are_app_errors_not_value_errors():
    from authserver.accounts.errors import AccountError
    from authserver.clients.errors import ClientError
    from authserver.clients.registration import RegistrationError
    from authserver.keys.service import KeyError_
    from authserver.security.passwords import WeakPasswordError
    from authserver.settings import SettingsError

    for cls in (AccountError, ClientError, WeakPasswordError):
        assert issubclass(cls, errors.DomainError) and not issubclass(cls, ValueError)
    for cls in (RegistrationError, KeyError_, SettingsError):
        assert issubclass(cls, errors.AppError) and not issubclass(cls, ValueError)


class _Bug(RuntimeError):
    pass


@pytest.fixture
def buggy(app: Any) -> Any:
    async def boom(request: Request) -> Response:
        raise _Bug("secret-internal-detail")

    async def ok(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app.router.routes.append(Route("/boom", boom))
    app.router.routes.append(Route("/ok", ok))
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    with TestClient(app, base_url=ISSUER) as c:
        c.log = stream
        yield c


def _log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def test_unexpected_exception_is_a_500_without_a_trace_logged_with_the_request_id(buggy):
    r = buggy.get("/boom", headers={"X-Request-Id": "req-unexpected-1"})
    assert r.status_code == 500
    assert r.json() == {"error": "server_error", "error_description": "The server could not handle the request."}
    assert "secret-internal-detail" not in r.text and "Traceback" not in r.text
    assert r.headers["x-request-id"] == "req-unexpected-1" and r.headers["x-frame-options"] == "DENY"
    logged = [e for e in _log_lines(buggy.log) if e["event"] == "unhandled_error"]
    assert len(logged) == 1
    assert logged[0]["request_id"] == "req-unexpected-1" and logged[0]["exc_type"] == "_Bug"
    assert logged[0]["path"] == "/boom" and "secret-internal-detail" in logged[0]["exception"]
    access = [e for e in _log_lines(buggy.log) if e["event"] == "request"]
    assert access[-1]["status"] == 500 and access[-1]["request_id"] == "req-unexpected-1"
    assert buggy.get("/ok").status_code == 200  # the app carries on


def test_unexpected_exception_gives_a_browser_the_generic_page(buggy):
    r = buggy.get("/boom", headers={"Accept": "text/html"})
    assert r.status_code == 500 and r.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in r.text and "secret-internal-detail" not in r.text
    assert r.headers["cache-control"] == "no-store"


def test_every_error_description_written_in_the_code_can_be_sent():
    """RFC 6749 §5.2 allows only %x20-21 / %x23-5B / %x5D-7E in ``error_description``
    (RFC 7591 §3.2.2: ASCII); Authlib raises ValueError on anything else, so a "§" in a
    message replaced the intended refusal by a generic one (found in PAR's two checks).
    Every string literal given to an error class or an error page is checked here."""
    import ast
    import re
    from pathlib import Path

    allowed = re.compile(r"[\x20-\x21\x23-\x5B\x5D-\x7E]*")  # RFC 6749 §5.2
    ascii_text = re.compile(r"[\x20-\x7E]*")  # RFC 7591 §3.2.2, for registration's own JSON errors
    registration = {"_metadata_error", "_redirect_error", "RegistrationError", "ClientError"}
    root = Path(__file__).resolve().parent.parent / "authserver"
    bad = []
    for path in [p for package in ("oauth", "clients", "device_flow") for p in (root / package).rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", "")
            if not (name.endswith("Error") or name in {"Outcome", *registration}):
                continue
            charset = ascii_text if name in registration else allowed
            for arg in [*node.args, *(k.value for k in node.keywords if k.arg in {"description", "error_description"})]:
                for const in ast.walk(arg):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str) \
                            and not charset.fullmatch(const.value):
                        bad.append(f"{path.relative_to(root)}:{const.lineno}: {const.value!r}")
    assert bad == []


def test_a_statement_refused_after_a_lost_connection_is_database_unavailable():
    """``database_unavailable``: SQLAlchemy's ``PendingRollbackError`` (a statement made on a
    session whose connection was lost: undoing a claim while handling that loss, say)
    counts as the database being away when the loss is its cause, and as a bug (a 500)
    when a bad statement or value is."""
    from sqlalchemy import exc as sa_exc

    lost = sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    def refused_while_handling(cause: BaseException) -> sa_exc.PendingRollbackError:
        try:
            try:
                raise cause
            except BaseException:
                raise sa_exc.PendingRollbackError("Can't reconnect until invalid transaction is rolled back")
        except sa_exc.PendingRollbackError as refused:
            return refused

    assert errors.database_unavailable(lost)
    assert errors.database_unavailable(refused_while_handling(lost))
    assert not errors.database_unavailable(refused_while_handling(ValueError("bad value")))
    assert not errors.database_unavailable(sa_exc.PendingRollbackError("no cause"))
    assert not errors.database_unavailable(sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")))
