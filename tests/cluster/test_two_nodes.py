"""Two ``authserver serve`` nodes behind haproxy, on one Postgres and one Redis.

The nodes have different keys directories and no shared filesystem: what they
agree on (signing keys, sessions, codes, refresh families, revocations) comes
from the database. The browser flow runs through the balancer; then the code is
exchanged at node B, refreshed at A, revoked at B and introspected at A. A key
rotation while traffic flows must not fail a single request.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.harness import HaProxy, Node, free_port, running
from tests.flows import exchange, get_code, refresh

pytestmark = pytest.mark.cluster

ROTATION_ENV = {"AUTHSERVER_KEY_ACTIVATION_DELAY": "2", "AUTHSERVER_JWKS_MAX_AGE": "1"}


def _nodes(cluster: Cluster) -> tuple[HaProxy, Node, Node]:
    port = free_port()
    env = cluster.env(issuer=f"http://127.0.0.1:{port}", **ROTATION_ENV)
    a = Node("a", env, cluster.workdir)
    b = Node("b", env, cluster.workdir)
    return HaProxy(port, [a, b], cluster.workdir), a, b


class Jwks:
    """A resource server's view of the JWKS: cached, refetched on an unknown kid."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.keys: dict[str, Any] = {}
        self.lock = threading.Lock()

    def key(self, kid: str) -> Any:
        with self.lock:
            if kid not in self.keys:
                body = httpx.get(self.url, timeout=5).json()
                self.keys = {k["kid"]: jwt.PyJWK(k).key for k in body["keys"]}
            return self.keys[kid]

    def verify(self, token: str, issuer: str) -> dict[str, Any]:
        kid = jwt.get_unverified_header(token)["kid"]
        return dict(jwt.decode(token, self.key(kid), algorithms=["RS256"], issuer=issuer,
                               options={"verify_aud": False}))


def test_login_exchange_refresh_revoke_across_nodes(cluster: Cluster) -> None:
    cluster.make_user()
    client_id, secret = cluster.make_client(skip_consent=False)
    balancer, a, b = _nodes(cluster)
    with running(a, b, balancer):
        jwks_a = httpx.get(a.url + "/jwks.json").json()
        jwks_b = httpx.get(b.url + "/jwks.json").json()
        assert jwks_a == jwks_b and jwks_a["keys"], "both nodes publish the same keys"

        with httpx.Client(base_url=balancer.url, follow_redirects=False, timeout=10) as browser:
            code, verifier, params = get_code(browser, client_id)
        with httpx.Client(base_url=b.url, timeout=10) as node_b, httpx.Client(base_url=a.url, timeout=10) as node_a:
            issued = exchange(node_b, client_id, secret, code, verifier)
            assert issued.status_code == 200, issued.text
            first = issued.json()
            claims = Jwks(a.url + "/jwks.json").verify(first["id_token"], balancer.url)
            assert claims["nonce"] == params["nonce"]

            rotated = refresh(node_a, client_id, secret, first["refresh_token"])
            assert rotated.status_code == 200, rotated.text
            second = rotated.json()

            revoked = node_b.post("/revoke", data={"token": second["access_token"]}, auth=(client_id, secret))
            assert revoked.status_code == 200
            seen = node_a.post("/introspect", data={"token": second["access_token"]}, auth=(client_id, secret))
            assert seen.json() == {"active": False}

            # the first refresh token was rotated at A: its reuse at B revokes the family everywhere
            reuse = refresh(node_b, client_id, secret, first["refresh_token"])
            assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
            dead = refresh(node_a, client_id, secret, second["refresh_token"])
            assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"


def test_key_rotation_under_traffic(cluster: Cluster) -> None:
    client_id, secret = cluster.make_client(grant_types=["client_credentials"], scope="api")
    balancer, a, b = _nodes(cluster)
    with running(a, b, balancer):
        jwks = Jwks(balancer.url + "/jwks.json")
        failures: Counter[str] = Counter()
        kids: Counter[str] = Counter()
        stop = threading.Event()

        def traffic() -> None:
            with httpx.Client(base_url=balancer.url, timeout=10) as http:
                while not stop.is_set():
                    try:
                        response = http.post("/token", data={"grant_type": "client_credentials", "scope": "api"},
                                             auth=(client_id, secret))
                        if response.status_code != 200:
                            failures[f"status {response.status_code}"] += 1
                            continue
                        token = response.json()["access_token"]
                        jwks.verify(token, balancer.url)
                        kids[jwt.get_unverified_header(token)["kid"]] += 1
                        check = http.post("/introspect", data={"token": token}, auth=(client_id, secret))
                        if check.status_code != 200 or check.json().get("active") is not True:
                            failures[f"introspection {check.status_code}"] += 1
                    except Exception as exc:
                        failures[type(exc).__name__] += 1

        threads = [threading.Thread(target=traffic) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            time.sleep(1)
            env = cluster.env(issuer=balancer.url, **ROTATION_ENV)
            env["AUTHSERVER_KEYS_DIR"] = str(cluster.workdir / "cli-keys")
            rotate = subprocess.run([str(Path(sys.executable).parent / "authserver"), "keys", "rotate"], env=env,
                                    capture_output=True, text=True, timeout=60)
            assert rotate.returncode == 0, rotate.stderr
            deadline = time.monotonic() + 30
            while len(kids) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        print(f"rotation under traffic: tokens by kid {dict(kids)}, failures {dict(failures)}")
        assert len(kids) == 2, f"the new key never signed: {dict(kids)}"
        assert not failures, dict(failures)
