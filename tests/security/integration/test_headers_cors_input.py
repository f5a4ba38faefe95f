"""Security headers on pages, CORS only where allowed, body limits, malformed input."""

from __future__ import annotations

import pytest

ORIGIN = "https://spa.example.com"


@pytest.fixture
def settings_overrides():
    return {"cors_origins": (ORIGIN,), "max_body_bytes": 4096}


@pytest.mark.parametrize("path", ["/login", "/signup", "/password/reset", "/authorize?client_id=x",
                                  "/.well-known/openid-configuration", "/account"])
def test_security_headers(client, path):
    r = client.get(path, headers={"accept": "text/html"})
    csp = r.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in r.headers  # the issuer is http://127.0.0.1
    assert "server" not in r.headers


def test_hsts_when_issuer_is_https():
    from authserver.middleware import _security_headers
    from tests.conftest import make_settings

    headers = dict(_security_headers(make_settings(issuer="https://id.example.com")))
    assert headers[b"strict-transport-security"].startswith(b"max-age=")


@pytest.mark.parametrize("path", ["/token", "/jwks.json", "/userinfo", "/.well-known/openid-configuration"])
def test_cors_for_configured_origin_on_allowed_paths(client, path):
    r = client.options(path, headers={"origin": ORIGIN, "access-control-request-method": "POST"})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == ORIGIN
    r = client.get(path, headers={"origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("path", ["/authorize", "/login", "/account", "/consent", "/login/mfa"])
def test_no_cors_on_browser_pages(client, path):
    r = client.get(path, headers={"origin": ORIGIN})
    assert "access-control-allow-origin" not in r.headers
    r = client.options(path, headers={"origin": ORIGIN, "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("path", ["/token", "/login", "/introspect", "/signup"])
def test_oversized_body_is_413(client, path):
    r = client.post(path, content=b"a=" + b"x" * 5000,
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


@pytest.mark.parametrize(("path", "body", "ctype", "status"), [
    ("/token", b"grant_type=%ZZ&&&==", "application/x-www-form-urlencoded", 400),
    ("/token", b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded", 400),
    ("/token", b'{"grant_type": "client_credentials"}', "application/json", 400),
    ("/introspect", b"token=\x00\x01", "application/x-www-form-urlencoded", 401),  # no client
    ("/login", b"csrf_token=%ff%fe&username=\x00", "application/x-www-form-urlencoded", 400),
    ("/login/mfa", b"code=%00", "application/x-www-form-urlencoded", 400),
    ("/authorize", b"client_id=%ff", "application/x-www-form-urlencoded", 400),
    ("/account/password", b"\x00", "text/plain", 400),
])
def test_malformed_input_is_4xx_not_500(client, path, body, ctype, status):
    r = client.post(path, content=body, headers={"content-type": ctype})
    assert r.status_code == status, (r.status_code, r.text[:200])


def test_bad_content_length_is_400(client):
    r = client.post("/token", content=b"x", headers={"content-length": "abc"})
    assert r.status_code == 400


@pytest.mark.parametrize("path", ["/login", "/login/mfa", "/consent", "/signup", "/password/reset",
                                  "/account/password", "/logout"])
def test_non_ascii_csrf_token_with_a_session_is_not_500(client, path):
    client.get("/login")  # a session exists, so the token is actually compared
    r = client.post(path, content=b"csrf_token=%C3%A9&rid=x",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    # refused as a forged form; /logout without a logged-in user has nothing to end
    assert r.status_code == (200 if path == "/logout" else 400), (r.status_code, r.text[:200])
