"""Registration policy by allow-list (issue 10): redirect URI schemes (RFC 8252 §7.1, §7.3),
printable ``client_name``, https information URLs."""

from __future__ import annotations

from typing import Any

import pytest

from authserver.clients.errors import ClientError
from authserver.clients.service import validate_redirect_uri
from tests.endpoints.test_register import WEB_APP, initial_token, register  # noqa: F401 (fixture)

NATIVE = {"client_name": "Native App", "grant_types": ["authorization_code", "refresh_token"],
          "token_endpoint_auth_method": "none", "scope": "openid offline_access"}

@pytest.mark.parametrize("uri", [
    "blob:https://rp.example.com/0a1b", "filesystem:https://rp.example.com/temporary/cb", "data:text/html,x",
    "javascript:alert(1)", "vbscript:x", "file:///etc/passwd", "ftp://rp.example.com/cb", "ws://127.0.0.1/cb",
    "myapp:/cb",  # private-use but not reverse-domain
    "http://rp.example.com/cb", "http://127.0.0.1.evil.example/cb", "https:///cb", "https://[::1/cb",
    "https://rp.example.com/c b", "https://rp.example.com/cb\u202e", "https://rp.example.com/#x",
])
def test_refused_redirect_uris(client, initial_token, uri):  # noqa: F811
    for metadata in (WEB_APP, NATIVE):
        r = register(client, initial_token, **{**metadata, "redirect_uris": [uri]})
        assert r.status_code == 400, (uri, r.text)
        assert r.json()["error"] == "invalid_redirect_uri"

@pytest.mark.parametrize("uri", ["https://rp.example.com/cb", "http://127.0.0.1:7777/cb", "http://[::1]:7777/cb",
                                 "http://localhost:3000/cb"])
def test_web_redirect_uris_allowed(client, initial_token, uri):  # noqa: F811
    r = register(client, initial_token, **{**WEB_APP, "redirect_uris": [uri]})
    assert r.status_code == 201, r.text

@pytest.mark.parametrize("extra", [{"token_endpoint_auth_method": "none"}, {"application_type": "native"}])
def test_private_use_scheme_for_native_clients(client, initial_token, extra):  # noqa: F811
    r = register(client, initial_token, **{**WEB_APP, **extra, "redirect_uris": ["com.example.app:/oauth2redirect"]})
    assert r.status_code == 201, r.text
    assert r.json()["redirect_uris"] == ["com.example.app:/oauth2redirect"]

def test_private_use_scheme_refused_for_web_clients(client, initial_token):  # noqa: F811
    r = register(client, initial_token, **{**WEB_APP, "redirect_uris": ["com.example.app:/oauth2redirect"]})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_redirect_uri"
    assert "native" in r.json()["error_description"]

def test_post_logout_uris_follow_the_same_policy(client, initial_token):  # noqa: F811
    r = register(client, initial_token, **{**WEB_APP, "post_logout_redirect_uris": ["blob:https://x/y"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata"

@pytest.mark.parametrize("name", ["Pay\u202eLAPYAP", "Bank\u200b", "A\u2066B\u2069", "Tab\there", "New\nline",
                                  "Bell\x07", "Soft\u00adhyphen"])
def test_client_name_must_be_printable(client, initial_token, name):  # noqa: F811
    r = register(client, initial_token, **{**WEB_APP, "client_name": name})
    assert r.status_code == 400, r.text
    if r.json()["error"] == "invalid_request":  # C0 controls other than tab/LF/CR: the input edge answers first
        assert name == "Bell\x07"
    else:
        assert r.json()["error"] == "invalid_client_metadata"
        assert "client_name" in r.json()["error_description"]

def test_client_name_may_be_any_script(client, initial_token):  # noqa: F811
    r = register(client, initial_token, **{**WEB_APP, "client_name": "Café, 東京 مرحبا"})
    assert r.status_code == 201, r.text

@pytest.mark.parametrize("name", ["client_uri", "logo_uri", "policy_uri", "tos_uri"])
@pytest.mark.parametrize("value, problem", [
    ("http://rp.example.com/", "must be an https URL"),
    ("javascript:alert(1)", "must be an https URL"),
    ("https://", "must be an https URL"),
    ("https://user:pw@rp.example.com/", "must be an https URL"),
    ("https://:@rp.example.com/", "must be an https URL"),
    (42, "must be an https URL of at most 2000 characters"),
    ("https://rp.example.com/\u202e", "must be an https URL of at most 2000 characters"),
    ("https://rp.example.com/a b", "must be an https URL of at most 2000 characters"),
    ("https://rp.example.com/" + "x" * 1978, "must be an https URL of at most 2000 characters"),
])
def test_information_uris_must_be_https(client, initial_token, name, value, problem):  # noqa: F811
    """RFC 7591 §2 information URLs: https with a host, printable, no spaces, at most 2000 characters."""
    r = register(client, initial_token, **{**WEB_APP, name: value})
    assert r.status_code == 400, r.text
    assert r.json() == {"error": "invalid_client_metadata", "error_description": f"{name} {problem}"}

def test_https_information_uris_accepted(client, initial_token):  # noqa: F811
    uris = {n: f"https://rp.example.com/{n}" for n in ("client_uri", "logo_uri", "policy_uri", "tos_uri")}
    r = register(client, initial_token, **{**WEB_APP, **uris})
    assert r.status_code == 201, r.text

def test_update_follows_the_policy(client, initial_token):  # noqa: F811
    body = register(client, initial_token, **WEB_APP).json()
    r = client.put(f"/register/{body['client_id']}", json={**WEB_APP, "client_id": body["client_id"],
                                                          "redirect_uris": ["blob:https://x/y"]},
                   headers={"Authorization": f"Bearer {body['registration_access_token']}"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_redirect_uri"

def test_admin_created_clients_use_the_same_allow_list():
    with pytest.raises(ClientError):
        validate_redirect_uri("blob:https://x/y")
    assert validate_redirect_uri("com.example.app:/cb") == "com.example.app:/cb"  # an admin may register natives
    with pytest.raises(ClientError):
        validate_redirect_uri("com.example.app:/cb", native=False)

def _unused(_: Any) -> None: ...
