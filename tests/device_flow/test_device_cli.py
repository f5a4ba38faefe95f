"""``examples/device_login.py``, a real command-line client, against the live server over
real sockets (SQLite and Postgres + Redis): it prints the code and polls while the user's
steps (verification page, login, consent) are done over HTTP like a browser would."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from authserver.app import create_app
from authserver.context import Context
from tests.conftest import _wipe, make_settings
from tests.flows import follow, form_value
from tests.interop.conftest import Live, ServerThread, free_port

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "device_login.py"
GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def start_live(request: pytest.FixtureRequest, backend: str, tmp_path: Path, **overrides: Any) -> tuple[Live, Any]:
    port = free_port()
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir(mode=0o700)
    pg = backend == "postgres"
    settings = make_settings(
        issuer=f"http://127.0.0.1:{port}",
        database_url=request.getfixturevalue("postgres_url" if pg else "sqlite_url"),
        redis_url=request.getfixturevalue("redis_url") if pg else None,
        redis_prefix=f"authserver-test:{secrets.token_hex(6)}:",
        keys_dir=keys_dir, data_dir=tmp_path / "data", **overrides)
    ctx = Context(settings)
    ctx.keys.ensure_key()
    server = ServerThread(create_app(settings, context=ctx), port)
    server.start()
    return Live(settings.issuer, ctx, port), server


@pytest.fixture
def live(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[Live]:
    live, server = start_live(request, backend, tmp_path, device_code_interval=1)
    try:
        yield live
    finally:
        server.stop()
        _wipe(live.ctx)
        live.ctx.close()


def run_script(live: Live, client_id: str, scope: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--issuer", live.url, "--client-id", client_id,
                             "--scope", scope], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"open (\S+) and enter the code ([A-Z]{4}-[A-Z]{4})", line)
    assert match, line
    assert match.group(1) == f"{live.url}/device"
    return proc, match.group(2)


def user_steps(live: Live, user_code: str, decision: str) -> httpx.Response:
    with live.http() as browser:
        page = browser.get("/device")
        r = browser.post("/device", data={"csrf_token": form_value(page.text, "csrf_token"),
                                          "user_code": user_code.lower()})
        return follow(browser, r, consent=decision, max_steps=12)


def test_cli_signs_in_with_the_device_grant_and_is_told_when_denied(live):
    user = live.make_user()
    cid, _ = live.make_client(token_endpoint_auth_method="none", redirect_uris=[],
                              grant_types=[GRANT, "refresh_token"], scope="openid profile offline_access")
    proc, user_code = run_script(live, cid, "openid")
    try:
        assert "Access denied" in user_steps(live, user_code, "deny").text
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1 and "access_denied" in err

    proc, user_code = run_script(live, cid, "openid offline_access")
    try:
        done = user_steps(live, user_code, "allow")
        assert done.status_code == 200 and "Device connected" in done.text
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    tokens = json.loads(out.strip().splitlines()[-1])
    assert tokens["refresh_token"] and tokens["scope"] == "openid offline_access"
    # the ID token verifies against the live JWKS
    keys = jwt.PyJWKClient(f"{live.url}/jwks.json")
    claims = jwt.decode(tokens["id_token"], keys.get_signing_key_from_jwt(tokens["id_token"]).key,
                        algorithms=["RS256"], audience=cid, issuer=live.url)
    assert claims["sub"] == user.id and claims["sid"]
