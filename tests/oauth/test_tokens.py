"""Access tokens (RFC 9068) and ID tokens, verified against the JWKS of a live
uvicorn server with PyJWT's ``PyJWKClient``, as a resource server would."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
import uvicorn

from authserver.app import create_app
from tests.flows import tokens, unverified


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def port() -> int:
    return _free_port()


@pytest.fixture
def settings_overrides(port: int) -> dict[str, Any]:
    return {"issuer": f"http://127.0.0.1:{port}"}


@pytest.fixture
def live(ctx: Any, port: int) -> Iterator[str]:
    app = create_app(ctx.settings, context=ctx)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None,
                            access_log=False, ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield ctx.settings.issuer
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def http(live: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live, follow_redirects=False, timeout=10) as c:
        yield c


def test_tokens_verify_against_the_live_jwks(live, http, ctx, make_user, make_client):
    user = make_user()
    cid, secret = make_client()
    body = tokens(http, cid, secret)
    jwks = jwt.PyJWKClient(f"{live}/jwks.json", cache_keys=False)

    access_key = jwks.get_signing_key_from_jwt(body["access_token"])
    access = jwt.decode(body["access_token"], access_key.key, algorithms=["RS256"], audience=cid,
                        issuer=live, options={"require": ["exp", "iat", "iss", "sub", "aud", "jti"]})
    header = jwt.get_unverified_header(body["access_token"])
    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": ctx.keys.active.kid}
    assert access_key.key_id == ctx.keys.active.kid
    assert access["sub"] == user.id and access["client_id"] == cid
    assert access["scope"] == "openid profile email offline_access"
    assert access["amr"] == ["pwd"] and isinstance(access["auth_time"], int)
    assert access["exp"] - access["iat"] == ctx.settings.access_token_ttl
    assert set(access) >= {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "auth_time", "amr"}

    id_key = jwks.get_signing_key_from_jwt(body["id_token"])
    id_claims = jwt.decode(body["id_token"], id_key.key, algorithms=["RS256"], audience=cid, issuer=live)
    assert jwt.get_unverified_header(body["id_token"])["kid"] == ctx.keys.active.kid
    assert id_claims["nonce"] == body["_params"]["nonce"]
    assert id_claims["sub"] == user.id and id_claims["auth_time"] == access["auth_time"]

    # the resource server's other path: introspection over the socket
    response = http.post("/introspect", data={"token": body["access_token"]}, auth=(cid, secret))
    assert response.json()["active"] is True and response.json()["jti"] == access["jti"]


def test_discovery_of_the_live_server_names_its_issuer(live, http):
    meta = http.get("/.well-known/openid-configuration").json()
    assert meta["issuer"] == live
    assert meta["jwks_uri"] == f"{live}/jwks.json"
    keys = http.get(meta["jwks_uri"]).json()["keys"]
    assert keys and all(k["kty"] in ("RSA", "EC", "OKP") and "d" not in k and "p" not in k for k in keys)
    assert {k["alg"] for k in keys} == {"RS256", "ES256", "EdDSA"}


def test_access_token_is_rfc9068(live, http, ctx, make_user, make_client):
    make_user()
    cid, secret = make_client(audience=["https://api.example.com"])
    body = tokens(http, cid, secret, scope="openid roles")
    claims = unverified(body["access_token"])
    assert claims["aud"] == "https://api.example.com"
    assert claims["iss"] == live and claims["scope"] == "openid roles"
    assert claims["roles"] == []
    assert len(claims["jti"]) >= 16
    assert "nonce" not in claims and "at_hash" not in claims
    # the ID token's audience stays the client
    assert unverified(body["id_token"])["aud"] == cid


def test_jti_is_unique_across_processes():
    """jti is a per-process random prefix plus a counter: a forked child gets a new prefix."""
    import os

    from authserver.oauth.tokens import new_jti

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.write(write, new_jti().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 200).decode()
    parent = new_jti()
    assert child[:24] != parent[:24]
    assert len({new_jti() for _ in range(1000)}) == 1000
