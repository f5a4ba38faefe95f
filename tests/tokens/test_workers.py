"""Two workers of one ``authserver serve --workers 2`` on the embedded default (SQLite,
no Redis) agree on a revocation within a second: each polls the database's change
counter at most once a second, so neither keeps answering from a stale cache."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving import AUTHSERVER, free_port, serve

pytestmark = pytest.mark.slow

REQUESTS = 24  # each on a new connection, so the kernel spreads them over both workers


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    env = {name: value for name, value in os.environ.items() if not name.startswith("AUTHSERVER_")}
    env.update({"AUTHSERVER_DATABASE_URL": f"sqlite:///{tmp_path / 'auth.db'}", "AUTHSERVER_KEYS_DIR": str(keys),
                "AUTHSERVER_ISSUER": base, "AUTHSERVER_RATE_LIMITS": "off", "AUTHSERVER_LOG_LEVEL": "warning"})
    with serve(port, env):
        yield base, env


def introspect_many(base: str, auth: tuple[str, str], token: str) -> set[bool]:
    answers = set()
    for _ in range(REQUESTS):
        r = httpx.post(f"{base}/introspect", data={"token": token}, auth=auth, timeout=10)
        assert r.status_code == 200, r.text
        answers.add(bool(r.json()["active"]))
    return answers


def test_both_workers_honour_a_revocation_within_a_second(server):
    import json

    base, env = server
    created = subprocess.run([str(AUTHSERVER), "clients", "create", "--name", "api", "--grant-type",
                              "client_credentials", "--scope", "api", "--json"],
                             env=env, capture_output=True, text=True, timeout=60, check=True)
    body = json.loads(created.stdout)
    auth = (body["client_id"], body["client_secret"])
    r = httpx.post(f"{base}/token", data={"grant_type": "client_credentials", "scope": "api"}, auth=auth)
    token = r.json()["access_token"]
    assert introspect_many(base, auth, token) == {True}  # both workers now cache "active"
    assert httpx.post(f"{base}/revoke", data={"token": token}, auth=auth).status_code == 200
    time.sleep(1.05)
    assert introspect_many(base, auth, token) == {False}
