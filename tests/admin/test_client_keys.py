"""Admin API: ``private_key_jwt`` clients and their keys."""

from __future__ import annotations

from tests.oauth.test_private_key_jwt import Signer, cc, jwks


def test_admin_api_registers_a_private_key_jwt_client(client, client_token):
    admin = {"Authorization": f"Bearer {client_token(roles=['admin'])}"}
    signer = Signer("EdDSA")
    r = client.post("/admin/api/clients", headers=admin, json={
        "client_name": "Batch", "grant_types": ["client_credentials"], "scope": "orders:read",
        "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks(signer)})
    assert r.status_code == 201, r.text
    body = r.json()
    assert "client_secret" not in body and body["jwks"] == jwks(signer) and body["jwks_uri"] is None
    assert cc(client, signer.assertion(body["client_id"])).status_code == 200
    r = client.post("/admin/api/clients", headers=admin, json={
        "client_name": "Batch", "grant_types": ["client_credentials"], "scope": "orders:read",
        "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [Signer("RS256").private_jwk]}})
    assert r.status_code == 400 and "public keys only" in r.json()["error_description"]
