"""ID tokens signed with RS256, ES256 or EdDSA per client (``id_token_signed_response_alg``),
verified as a relying party would: PyJWT's ``PyJWKClient`` fetching the JWKS over HTTP."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt as pyjwt
import pytest

from tests.conftest import ISSUER
from tests.flows import tokens

ALGS = ["RS256", "ES256", "EdDSA"]


@pytest.fixture
def jwks_url(ctx: Any) -> Iterator[str]:
    """The server's JWKS (what ``/jwks.json`` serves) on a loopback port, for ``PyJWKClient``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = ctx.keys.jwks_bytes
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()


def verify(jwks_url: str, id_token: str, alg: str, audience: str) -> dict[str, Any]:
    key = pyjwt.PyJWKClient(jwks_url, cache_jwk_set=False).get_signing_key_from_jwt(id_token)
    return dict(pyjwt.decode(id_token, key, algorithms=[alg], audience=audience, issuer=ISSUER))


def test_each_client_gets_id_tokens_in_its_alg(client, ctx, make_user, make_client, jwks_url):
    make_user()
    assert client.get("/jwks.json").json() == ctx.keys.jwks  # the fixture serves what the server does
    for alg in ALGS:
        cid, secret = make_client(**({"id_token_signed_response_alg": alg} if alg != "RS256" else {}))
        body = tokens(client, cid, secret)
        header = pyjwt.get_unverified_header(body["id_token"])
        assert header["alg"] == alg and header["kid"] == ctx.keys.active_for(alg).kid
        claims = verify(jwks_url, body["id_token"], alg, cid)
        assert claims["nonce"] == body["_params"]["nonce"]
        # access tokens stay RS256
        assert pyjwt.get_unverified_header(body["access_token"])["alg"] == "RS256"
        # our own check of an ID token (id_token_hint) knows every algorithm
        assert ctx.oauth.token_issuer.verify_id_token_hint(body["id_token"])["sub"] == claims["sub"]
    meta = client.get("/.well-known/openid-configuration").json()
    assert meta["id_token_signing_alg_values_supported"] == ALGS


def test_rotation_covers_every_alg(client, ctx, make_user, make_client, jwks_url):
    make_user()
    clients = {alg: make_client(id_token_signed_response_alg=alg) for alg in ALGS}
    before = {alg: tokens(client, *clients[alg])["id_token"] for alg in ALGS}
    old_kids = {alg: ctx.keys.active_for(alg).kid for alg in ALGS}
    new = ctx.keys.rotate(delay=0)
    time.sleep(max(0.0, new.activates_at - time.time()) + 0.05)
    for alg in ALGS:
        token = tokens(client, *clients[alg])["id_token"]
        kid = pyjwt.get_unverified_header(token)["kid"]
        assert kid != old_kids[alg] and kid == ctx.keys.active_for(alg).kid
        verify(jwks_url, token, alg, clients[alg][0])
        verify(jwks_url, before[alg], alg, clients[alg][0])  # the old key stays published


def test_registration_and_cli_choose_the_alg(client, ctx, make_client):
    from authserver.clients.service import update_client
    from authserver.db import transaction
    from authserver.errors import AppError

    cid, _ = make_client(id_token_signed_response_alg="EdDSA")
    with transaction(ctx.sessions) as db:
        assert update_client(db, ctx.box, cid, actor="test", id_token_signed_response_alg="ES256").client.\
            id_token_signed_response_alg == "ES256"
        for bad in ("HS256", "none", "PS256"):
            with pytest.raises(AppError, match="id_token_signed_response_alg"):
                update_client(db, ctx.box, cid, actor="test", id_token_signed_response_alg=bad)


def test_dynamic_registration_takes_the_alg(client, ctx):
    from authserver.clients.registration import create_initial_access_token
    from authserver.db import transaction

    with transaction(ctx.sessions) as db:
        token = create_initial_access_token(db, ctx.box, "tests", expires_in=3600)
    headers = {"Authorization": f"Bearer {token}"}
    base = {"redirect_uris": ["https://rp.example.com/cb"]}
    r = client.post("/register", json={**base, "id_token_signed_response_alg": "ES256"}, headers=headers)
    assert r.status_code == 201 and r.json()["id_token_signed_response_alg"] == "ES256"
    r = client.post("/register", json=base, headers=headers)
    assert r.json()["id_token_signed_response_alg"] == "RS256"
    r = client.post("/register", json={**base, "id_token_signed_response_alg": "HS256"}, headers=headers)
    assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata"
