"""``clients create|update`` with ``private_key_jwt`` keys and the ID-token algorithm."""

from __future__ import annotations

import json

from tests.oauth.test_private_key_jwt import Signer, cc, jwks


def test_cli_registers_and_changes_the_keys(run, client, tmp_path):
    signer = Signer("ES256")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(signer)))
    status, out, err = run("clients", "create", "--name", "Batch", "--grant-type", "client_credentials",
                           "--scope", "orders:read", "--auth-method", "private_key_jwt", "--jwks-file", str(path),
                           "--json")
    assert status == 0, err
    body = json.loads(out)
    assert "client_secret" not in body and body["jwks"] == jwks(signer)
    cid = body["client_id"]
    assert cc(client, signer.assertion(cid)).status_code == 200
    status, out, err = run("clients", "update", cid, "--jwks-uri", "https://batch.example/jwks.json", "--json")
    assert status == 0, err
    body = json.loads(out)
    assert body["jwks_uri"] == "https://batch.example/jwks.json" and "jwks" not in body
    status, _, err = run("clients", "create", "--name", "Batch", "--grant-type", "client_credentials",
                         "--scope", "x", "--auth-method", "private_key_jwt")
    assert status == 2 and "exactly one of jwks and jwks_uri" in err
    # moving to a secret method drops the keys and prints a secret once
    status, out, err = run("clients", "update", cid, "--auth-method", "client_secret_basic", "--json")
    assert status == 0, err
    body = json.loads(out)
    assert body["client_secret"] and "jwks_uri" not in body


def test_cli_sets_the_id_token_alg_and_par(run):
    status, out, err = run("clients", "create", "--name", "Web", "--redirect-uri", "https://rp.example.com/cb",
                           "--grant-type", "authorization_code", "--scope", "openid", "--id-token-alg", "EdDSA",
                           "--require-par", "--json")
    assert status == 0, err
    body = json.loads(out)
    assert body["id_token_signed_response_alg"] == "EdDSA" and body["require_pushed_authorization_requests"] is True
    status, out, err = run("clients", "update", body["client_id"], "--id-token-alg", "ES256", "--no-require-par",
                           "--json")
    assert status == 0, err
    body = json.loads(out)
    assert body["id_token_signed_response_alg"] == "ES256" and body["require_pushed_authorization_requests"] is False
    status, _, err = run("clients", "update", body["client_id"], "--id-token-alg", "HS256")
    assert status == 2 and "invalid choice" in err
