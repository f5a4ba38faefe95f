"""panva's openid-client 6 (Node) as a DPoP public client against the live server, with
server nonces on: the library answers ``use_dpop_nonce`` by itself, at the token endpoint
(400, §8) and at userinfo (401 ``WWW-Authenticate: DPoP``, §9)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess

import pytest

from tests.conftest import PASSWORD
from tests.dpop.proofs import rfc7638_thumbprint
from tests.interop.conftest import Live, free_port
from tests.interop.test_openid_client import NODE_DIR, node_ready

pytestmark = pytest.mark.interop
__all__ = ["node_ready"]  # the fixture, imported for this module


def test_openid_client_dpop_public_client(live: Live, node_ready: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live.ctx.oauth.dpop, "require_nonce", True)
    username = f"node{secrets.token_hex(4)}"
    live.make_user(username)
    redirect_uri = f"http://127.0.0.1:{free_port()}/cb"
    client_id, _ = live.make_client(token_endpoint_auth_method="none", redirect_uris=[redirect_uri],
                                    scope="openid profile offline_access", dpop_bound_access_tokens=True)
    env = {**os.environ, "ISSUER": live.url, "CLIENT_ID": client_id, "REDIRECT_URI": redirect_uri,
           "USERNAME": username, "PASSWORD": PASSWORD}
    result = subprocess.run([node_ready, "dpop.mjs"], cwd=NODE_DIR, env=env, capture_output=True, text=True,
                            timeout=60)
    try:
        summary = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"dpop.mjs printed no summary (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    assert result.returncode == 0 and summary["ok"], json.dumps(summary, indent=2) + result.stderr

    jkt = rfc7638_thumbprint(summary["public_jwk"])
    assert "ES256" in summary["dpop_signing_alg_values_supported"]
    assert summary["code_grant"] == {"token_type": "dpop", "cnf": {"jkt": jkt}, "refresh_token": True}
    assert summary["userinfo"] == {"sub_ok": True}
    assert summary["refresh"] == {"token_type": "dpop", "cnf": {"jkt": jkt}}
    assert summary["refresh_with_another_key"] == "invalid_grant"
    assert summary["refresh_again"] == {"token_type": "dpop"}
