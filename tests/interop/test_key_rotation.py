"""Key rotation under load, seen by a JWKS-caching verifier (PyJWT's PyJWKClient).

Threads fetch ``client_credentials`` tokens from the live server and verify
each at once against a cached JWKS (lifespan = the server's JWKS max-age)
while ``authserver keys rotate --delay 3`` runs in another process half-way:
the new key is published before it signs (activation delay > JWKS max-age +
the key store's one-second re-read), so no verification fails. Then: both
keys in the JWKS after activation, an old-key token still verifies, and once
the old key retires (a clock moved past ``retires_at`` — retention is the
longest token lifetime plus a minute of skew) it is gone from /jwks.json.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from authserver.keys import service as key_service
from tests.interop.conftest import Live

pytestmark = [pytest.mark.interop, pytest.mark.slow]

ROTATE_DELAY = 3
JWKS_MAX_AGE = 1


@pytest.fixture
def live_overrides() -> dict[str, Any]:
    return {"access_token_ttl": 10, "id_token_ttl": 10, "jwks_max_age": JWKS_MAX_AGE}


def jwks_client(live: Live) -> jwt.PyJWKClient:
    options: dict[str, Any] = {}
    if "cooldown_duration" in inspect.signature(jwt.PyJWKClient).parameters:
        options["cooldown_duration"] = 30  # PyJWT's default: no help from unknown-kid refetches here
    return jwt.PyJWKClient(f"{live.url}/jwks.json", cache_jwk_set=True, lifespan=JWKS_MAX_AGE,
                           cache_keys=True, **options)


def rotate_with_cli(live: Live) -> str:
    """``authserver keys rotate`` in another process, on the server's key directory."""
    settings = live.ctx.settings
    env = {**os.environ, "AUTHSERVER_DATABASE_URL": settings.database_url,
           "AUTHSERVER_KEYS_DIR": str(settings.keys_dir), "AUTHSERVER_SECRET_KEY": settings.secret_key.get(),
           "AUTHSERVER_ISSUER": settings.issuer, "AUTHSERVER_LOG_FORMAT": "json"}
    env.pop("AUTHSERVER_REDIS_URL", None)
    cli = Path(sys.executable).with_name("authserver")
    command = [str(cli)] if cli.exists() else [sys.executable, "-c",
                                                "from authserver.cli import main; main()"]
    result = subprocess.run([*command, "keys", "rotate", "--delay", str(ROTATE_DELAY)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[2].rstrip(":")  # "new key <kid>: published now, ..."


def test_rotation_under_load(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    cid, secret = live.make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api:read")
    assert secret is not None
    old_kid = live.ctx.keys.active.kid
    verifier = jwks_client(live)
    stop = threading.Event()
    failures: list[str] = []
    seen: dict[str, int] = {}
    old_tokens: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=live.url, timeout=10) as http:
            while not stop.is_set():
                try:
                    r = http.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))
                    r.raise_for_status()
                    token = r.json()["access_token"]
                    key = verifier.get_signing_key_from_jwt(token)
                    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=cid, issuer=live.url)
                    assert claims["sub"] == cid
                    kid = jwt.get_unverified_header(token)["kid"]
                    with lock:
                        seen[kid] = seen.get(kid, 0) + 1
                        if kid == old_kid:
                            old_tokens[:] = [token]
                except Exception as exc:  # every failure is counted
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    new_kid = rotate_with_cli(live)
    activates_at = time.time() + ROTATE_DELAY
    time.sleep(ROTATE_DELAY + 3)
    stop.set()
    for t in threads:
        t.join(15)

    assert not failures, failures[:5]
    assert seen.get(old_kid, 0) > 5 and seen.get(new_kid, 0) > 5, seen
    assert set(seen) == {old_kid, new_kid}

    # after activation the old key is still published, and its tokens still verify
    assert time.time() > activates_at
    store = live.ctx.keys
    statuses = {k.kid: k.status for k in store.keys(now=None, alg="RS256")}
    assert statuses == {old_kid: "published", new_kid: "active"}
    kids = [k["kid"] for k in httpx.get(f"{live.url}/jwks.json").json()["keys"] if k["alg"] == "RS256"]
    assert sorted(kids) == sorted([old_kid, new_kid])
    old_token = old_tokens[0]
    fresh = jwks_client(live)  # a verifier that never saw the old key before
    claims = jwt.decode(old_token, fresh.get_signing_key_from_jwt(old_token).key, algorithms=["RS256"],
                        audience=cid, issuer=live.url, leeway=60)
    assert claims["client_id"] == cid

    # retirement: the longest token lifetime plus clock skew after the new key activated
    listed = {k.kid: k for k in store.keys(now=None)}
    old = listed[old_kid]
    assert old.retires_at is not None
    assert old.retires_at == listed[new_kid].activates_at + 10 + 60
    status_at = {when: {k.kid: k.status for k in store.keys(now=when)}[old_kid]
                 for when in (old.retires_at - 1, old.retires_at)}
    assert status_at == {old.retires_at - 1: "published", old.retires_at: "retired"}

    # move the key store's clock past retires_at: the live JWKS drops the old kid
    offset = old.retires_at - time.time() + 1
    fake_time = types.SimpleNamespace(time=lambda: time.time() + offset, monotonic=time.monotonic)
    monkeypatch.setattr(key_service, "time", fake_time)
    body = httpx.get(f"{live.url}/jwks.json").json()
    assert [k["kid"] for k in body["keys"] if k["alg"] == "RS256"] == [new_kid]
    with pytest.raises(jwt.PyJWKClientError):
        jwks_client(live).get_signing_key_from_jwt(old_token)
