"""panva's openid-client 6 (Node) as the relying party, against the live server.

``node/rp.mjs`` runs discovery, code + PKCE through the HTML forms, the code
grant (ID token validated by the library, RFC 9207 ``iss`` required),
userinfo, refresh, introspection, revocation and RP-initiated logout, and
prints a JSON summary that this test checks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, REQUIRE_SERVICES
from tests.interop.conftest import Live, free_port

pytestmark = pytest.mark.interop

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture(scope="module")
def node_ready() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        if REQUIRE_SERVICES:
            pytest.fail("node and npm are required (AUTHSERVER_TEST_REQUIRE_SERVICES=1)")
        pytest.skip("node/npm not installed: the openid-client interop test needs Node >= 20")
    if not (NODE_DIR / "node_modules" / "openid-client").is_dir():
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    return node


def test_openid_client_full_flow(live: Live, node_ready: str) -> None:
    live.make_user("alice")
    rp = f"http://127.0.0.1:{free_port()}"
    cid, secret = live.make_client(redirect_uris=[f"{rp}/cb"], post_logout_redirect_uris=[f"{rp}/logged-out"])
    assert secret
    env = {**os.environ, "ISSUER": live.url, "CLIENT_ID": cid, "CLIENT_SECRET": secret,
           "REDIRECT_URI": f"{rp}/cb", "POST_LOGOUT_REDIRECT_URI": f"{rp}/logged-out",
           "USERNAME": "alice", "PASSWORD": PASSWORD}
    result = subprocess.run([node_ready, "rp.mjs"], cwd=NODE_DIR, env=env, capture_output=True, text=True,
                            timeout=60)
    try:
        summary = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"rp.mjs printed no summary (exit {result.returncode}):\n"
                    f"{result.stdout}\n{result.stderr}")
    assert result.returncode == 0 and summary["ok"], json.dumps(summary, indent=2) + result.stderr

    assert summary["discovery"]["issuer"] == live.url
    assert summary["authorize"]["pages"] == ["login", "consent"]
    assert {"code", "state", "iss"} <= set(summary["authorize"]["callback_params"])
    id_token = summary["code_grant"]["id_token"]
    assert id_token["nonce_ok"] and id_token["aud"] == cid and id_token["auth_time"] and id_token["sid"]
    assert summary["code_grant"]["token_type"].lower() == "bearer"
    assert summary["userinfo"] == {"sub": id_token["sub"], "email": "alice@example.com",
                                   "preferred_username": "alice"}
    assert summary["refresh"]["rotated"] is True
    assert summary["introspection"] == {
        "access_token_active": True, "access_token_sub": id_token["sub"], "access_token_client_id": cid,
        "refresh_token_active_before_revocation": True, "refresh_token_active_after_revocation": False,
    }
    assert summary["refresh_after_revocation"]["result"] == "invalid_grant"
    assert summary["end_session"]["state_ok"] and summary["end_session"]["pages"] == []
    assert summary["prompt_none_after_logout"] == {"error": "login_required", "iss": live.url}
