"""Discovery documents, validated with Authlib's own metadata models."""

from __future__ import annotations

import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata

from tests.conftest import ISSUER

PATHS = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]


@pytest.mark.parametrize("path", PATHS)
def test_metadata_validates(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    meta = response.json()
    OpenIDProviderMetadata(meta).validate()
    AuthorizationServerMetadata(meta).validate()
    assert meta["issuer"] == ISSUER


def test_metadata_names_what_works(client):
    meta = client.get(PATHS[0]).json()
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                 "revocation_endpoint", "introspection_endpoint", "end_session_endpoint"):
        assert meta[name].startswith(ISSUER + "/")
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert meta["request_parameter_supported"] is False
    assert meta["request_uri_parameter_supported"] is False
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert set(meta["scopes_supported"]) >= {"openid", "profile", "email", "offline_access", "roles"}
    assert "implicit" not in meta["grant_types_supported"]


def test_every_named_endpoint_answers(client):
    meta = client.get(PATHS[0]).json()
    assert client.get(meta["jwks_uri"].removeprefix(ISSUER)).status_code == 200
    # an empty POST: the token endpoint misses grant_type, the others a client
    for name, status, error in (("token_endpoint", 400, "invalid_request"),
                                ("revocation_endpoint", 401, "invalid_client"),
                                ("introspection_endpoint", 401, "invalid_client")):
        r = client.post(meta[name].removeprefix(ISSUER), data={})
        assert (r.status_code, r.json()["error"]) == (status, error), name
    assert client.get(meta["userinfo_endpoint"].removeprefix(ISSUER)).status_code == 401
    assert client.get(meta["authorization_endpoint"].removeprefix(ISSUER)).status_code == 400
    assert client.get(meta["end_session_endpoint"].removeprefix(ISSUER)).status_code == 200


def test_no_member_points_at_a_missing_page(client):
    """Every URL of this server that discovery names exists (issue 10: service_documentation gave 404)."""
    meta = client.get(PATHS[0]).json()
    urls = {name: value for name, value in meta.items() if isinstance(value, str) and value.startswith(ISSUER + "/")}
    assert "jwks_uri" in urls
    for name, url in urls.items():
        assert client.get(url.removeprefix(ISSUER)).status_code != 404, name


def test_discovery_etag_answers_304(client):
    first = client.get("/.well-known/openid-configuration")
    etag = first.headers["etag"]
    assert client.get("/.well-known/oauth-authorization-server").headers["etag"] == etag
    again = client.get("/.well-known/openid-configuration", headers={"If-None-Match": f'W/{etag}, "x"'})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/.well-known/openid-configuration",
                      headers={"If-None-Match": '"x"'}).json()["issuer"] == first.json()["issuer"]
