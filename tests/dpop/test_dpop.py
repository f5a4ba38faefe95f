"""DPoP (RFC 9449) end to end: real proofs over HTTP to a live server, on SQLite and on
Postgres + Redis (the ``live`` fixture of this directory)."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from starlette.datastructures import Headers

from authserver.db import transaction
from authserver.oauth.dpop import DPoP
from authserver.oauth.errors import InvalidDPoPProofError
from authserver.tokens.models import RefreshToken
from tests import flows
from tests.conftest import PASSWORD
from tests.dpop.proofs import DPoPKey, ath, rfc7638_thumbprint, small_rsa_proof, unsigned
from tests.interop.conftest import Live

CC = {"grant_type": "client_credentials"}


def confidential(live: Live, **kw: Any) -> tuple[str, str]:
    kw.setdefault("grant_types", ["client_credentials", "password", "refresh_token"])
    kw.setdefault("scope", "openid profile offline_access")
    kw.setdefault("redirect_uris", [])
    client_id, secret = live.make_client(**kw)
    assert secret is not None
    return client_id, secret


def user(live: Live) -> str:
    name = f"u{secrets.token_hex(4)}"
    live.make_user(name)
    return name


def token_request(http: httpx.Client, data: dict[str, str], auth: tuple[str, str] | None = None,
                  proof: str | list[str] | None = None) -> httpx.Response:
    headers: list[tuple[str, str]] = []
    for value in [proof] if isinstance(proof, str) else proof or []:
        headers.append(("DPoP", value))
    return http.post("/token", data=data, auth=auth, headers=headers)


def password_grant(live: Live, http: httpx.Client, key: DPoPKey | None,
                   client: tuple[str, str] | None = None) -> dict[str, Any]:
    client = client or confidential(live)
    proof = key.proof("POST", f"{live.url}/token") if key else None
    response = token_request(http, {"grant_type": "password", "username": user(live), "password": PASSWORD,
                                    "scope": "openid profile offline_access"}, client, proof)
    assert response.status_code == 200, response.text
    return dict(response.json())


def get_code(live: Live, http: httpx.Client, client_id: str, **extra: str) -> tuple[str, str]:
    """The browser flow for a new user (the server lives for the module: names must differ)."""
    verifier, challenge = flows.pkce()
    response = flows.follow(http, http.get("/authorize", params=flows.auth_params(client_id, challenge, **extra)),
                            username=user(live))
    assert response.status_code in (302, 303), response.text[:300]
    return flows.query(response.headers["location"])["code"], verifier


def refused(response: httpx.Response, error: str, words: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert words in body["error_description"], body


# -- binding at the token endpoint (§5, §6) -------------------------------------------------


def test_discovery_names_the_proof_algorithms(live: Live, http: httpx.Client) -> None:
    meta = http.get("/.well-known/openid-configuration").json()
    assert {"ES256", "RS256", "PS256"} <= set(meta["dpop_signing_alg_values_supported"])
    assert "none" not in meta["dpop_signing_alg_values_supported"]
    assert not any(alg.startswith("HS") for alg in meta["dpop_signing_alg_values_supported"])


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "Ed25519"])
def test_client_credentials_token_is_bound_and_introspected(live: Live, http: httpx.Client, alg: str) -> None:
    client = confidential(live)
    key = DPoPKey(alg)
    response = token_request(http, CC, client, key.proof("POST", f"{live.url}/token"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert flows.unverified(body["access_token"])["cnf"] == {"jkt": key.jkt}
    assert key.jkt == rfc7638_thumbprint(key.public_jwk)
    info = flows.introspect(http, *client, body["access_token"])
    assert info["active"] is True and info["token_type"] == "DPoP" and info["cnf"] == {"jkt": key.jkt}


def test_without_a_proof_tokens_stay_bearer(live: Live, http: httpx.Client) -> None:
    client = confidential(live)
    body = token_request(http, CC, client).json()
    assert body["token_type"] == "Bearer" and "cnf" not in flows.unverified(body["access_token"])
    info = flows.introspect(http, *client, body["access_token"])
    assert info["token_type"] == "Bearer" and "cnf" not in info


def test_password_and_refresh_grants_bind_confidential_refresh_not_bound(live: Live, http: httpx.Client) -> None:
    client = confidential(live)
    key = DPoPKey()
    body = password_grant(live, http, key, client)
    assert body["token_type"] == "DPoP" and flows.unverified(body["access_token"])["cnf"]["jkt"] == key.jkt
    with transaction(live.ctx.sessions) as db:
        rows = db.scalars(select(RefreshToken).where(RefreshToken.client_id == client[0])).all()
        assert [row.dpop_jkt for row in rows] == [None]  # §5: a confidential client's is not bound
    # the refresh_token grant binds what it issues to the proof it carries, and only then
    again = flows.refresh(http, *client, body["refresh_token"])
    assert again.status_code == 200 and again.json()["token_type"] == "Bearer"
    other = DPoPKey()
    bound = token_request(http, {"grant_type": "refresh_token", "refresh_token": again.json()["refresh_token"]},
                          client, other.proof("POST", f"{live.url}/token"))
    assert bound.status_code == 200 and bound.json()["token_type"] == "DPoP"
    assert flows.unverified(bound.json()["access_token"])["cnf"]["jkt"] == other.jkt


def test_public_client_refresh_token_is_bound_to_the_key(live: Live, http: httpx.Client) -> None:
    client_id, _ = live.make_client(token_endpoint_auth_method="none", redirect_uris=[flows.REDIRECT_URI])
    key = DPoPKey()
    code, verifier = get_code(live, http, client_id)
    response = token_request(http, {"grant_type": "authorization_code", "code": code, "client_id": client_id,
                                    "redirect_uri": flows.REDIRECT_URI, "code_verifier": verifier},
                             proof=key.proof("POST", f"{live.url}/token"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP" and "refresh_token" in body
    refresh = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": client_id}
    refused(token_request(http, refresh), "invalid_grant", "bound to a DPoP key")
    refused(token_request(http, refresh, proof=DPoPKey().proof("POST", f"{live.url}/token")),
            "invalid_grant", "bound to a DPoP key")
    # the refusals burned nothing: the holder of the key still refreshes, and the new token is bound too
    ok = token_request(http, refresh, proof=key.proof("POST", f"{live.url}/token"))
    assert ok.status_code == 200, ok.text
    assert ok.json()["token_type"] == "DPoP"
    next_refresh = {**refresh, "refresh_token": ok.json()["refresh_token"]}
    refused(token_request(http, next_refresh), "invalid_grant", "bound to a DPoP key")


def test_code_bound_with_dpop_jkt(live: Live, http: httpx.Client) -> None:
    """§10: a code requested with dpop_jkt is exchanged only with a proof of that key."""
    client_id, _ = live.make_client(token_endpoint_auth_method="none", redirect_uris=[flows.REDIRECT_URI])
    key = DPoPKey()

    def exchange(proof: str | None) -> httpx.Response:
        code, verifier = get_code(live, http, client_id, dpop_jkt=key.jkt)
        return token_request(http, {"grant_type": "authorization_code", "code": code, "client_id": client_id,
                                    "redirect_uri": flows.REDIRECT_URI, "code_verifier": verifier}, proof=proof)

    sentence = "The code is bound to a DPoP key (dpop_jkt): send a DPoP proof signed with it."
    refused(exchange(None), "invalid_grant", "dpop_jkt")
    assert exchange(None).json()["error_description"] == sentence
    refused(exchange(DPoPKey().proof("POST", f"{live.url}/token")), "invalid_grant", "dpop_jkt")
    ok = exchange(key.proof("POST", f"{live.url}/token"))
    assert ok.status_code == 200, ok.text
    assert flows.unverified(ok.json()["access_token"])["cnf"] == {"jkt": key.jkt}

    _, challenge = flows.pkce()
    bad = http.get("/authorize", params=flows.auth_params(client_id, challenge, dpop_jkt="not-a-thumbprint"))
    assert bad.status_code in (302, 303)
    assert flows.query(bad.headers["location"])["error"] == "invalid_request"


# -- the checks of §4.3, one by one, at the token endpoint ---------------------------------------


def _hs256(key: DPoPKey, htu: str) -> str:
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public_jwk}
    return unsigned(header, {"jti": secrets.token_urlsafe(8), "htm": "POST", "htu": htu, "iat": int(time.time())},
                    mac_key=b"k" * 32)


def _none(key: DPoPKey, htu: str) -> str:
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk}
    return unsigned(header, {"jti": secrets.token_urlsafe(8), "htm": "POST", "htu": htu, "iat": int(time.time())})


BROKEN: dict[str, tuple[Any, str]] = {
    # name: (build(key, htu) -> header value(s), words of the error description)
    "two headers": (lambda k, u: [k.proof("POST", u), k.proof("POST", u)], "exactly one DPoP header"),
    "not a JWT": (lambda k, u: "not-a-jwt", "not a JWT"),
    "typ missing": (lambda k, u: k.proof("POST", u, header={"typ": None}), "typ must be dpop+jwt"),
    "typ JWT": (lambda k, u: k.proof("POST", u, header={"typ": "JWT"}), "typ must be dpop+jwt"),
    "alg none": (_none, "alg must be one of"),
    "alg HS256": (_hs256, "alg must be one of"),
    "alg not the key's": (lambda k, u: DPoPKey("RS256").proof("POST", u, header={"jwk": k.public_jwk}),
                          "is not a key for RS256"),
    "signed by another key": (lambda k, u: k.proof("POST", u, sign_with=DPoPKey()), "signature does not verify"),
    "private jwk": (lambda k, u: k.proof("POST", u, header={"jwk": k.key.as_dict(private=True)}),
                    "must not contain a private key"),
    "no jwk": (lambda k, u: k.proof("POST", u, header={"jwk": None}), "needs a jwk"),
    "jwk not a point": (lambda k, u: k.proof("POST", u, header={"jwk": {"kty": "EC", "crv": "P-256", "x": "AAAA",
                                                                        "y": "AAAA"}}), "is not a valid key"),
    "small RSA key": (lambda k, u: small_rsa_proof(u), "at least 2048 bits"),
    "htm GET": (lambda k, u: k.proof("GET", u), "htm does not match"),
    "htm lower case": (lambda k, u: k.proof("post", u), "htm does not match"),
    "htu other path": (lambda k, u: k.proof("POST", u.replace("/token", "/introspect")), "htu does not match"),
    "htu other host": (lambda k, u: k.proof("POST", u.replace("127.0.0.1", "localhost")), "htu does not match"),
    "htu other scheme": (lambda k, u: k.proof("POST", u.replace("http:", "https:")), "htu does not match"),
    "iat too old": (lambda k, u: k.proof("POST", u, iat=time.time() - 75), "too old"),
    "iat in the future": (lambda k, u: k.proof("POST", u, iat=time.time() + 30), "in the future"),
    "iat a string": (lambda k, u: k.proof("POST", u, claims={"iat": str(int(time.time()))}), "needs iat"),
    "no jti": (lambda k, u: k.proof("POST", u, drop=("jti",)), "needs a jti"),
    "no htu": (lambda k, u: k.proof("POST", u, drop=("htu",)), "needs htm and htu"),
    "jti too long": (lambda k, u: k.proof("POST", u, jti="j" * 257), "needs a jti"),
    "three parts, not a JWS": (lambda k, u: "YWJj.YWJj.YWJj", "is not a JWT"),
    "padding inside": (lambda k, u: k.proof("POST", u).replace(".", "=.", 1), "is not a JWT"),
    "not base64url": (lambda k, u: (proof := k.proof("POST", u))[:-4] + "!" + proof[-4:], "is not a JWT"),
    "payload an array": (lambda k, u: unsigned({"typ": "dpop+jwt", "alg": "ES256", "jwk": k.public_jwk}, [u]),
                         "payload is not a JSON object"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_proof_is_refused(live: Live, http: httpx.Client, case: str) -> None:
    client = confidential(live)
    build, words = BROKEN[case]
    response = token_request(http, CC, client, build(DPoPKey(), f"{live.url}/token"))
    refused(response, "invalid_dpop_proof", words)
    # the whole sentence as written (a client developer reads it): its subject, a full stop
    sentence = response.json()["error_description"]
    assert re.fullmatch(r"(The DPoP (proof|header)|Send exactly one DPoP header)\b.*\.", sentence), sentence
    assert response.headers["cache-control"] == "no-store"


def test_htu_is_compared_after_normalisation_and_without_query(live: Live, http: httpx.Client) -> None:
    client = confidential(live)
    key = DPoPKey()
    host, port = "127.0.0.1", live.port
    for htu in (f"HTTP://{host}:{port}/token?x=1#frag", f"http://{host}:{port}/./%74oken", f"http://{host}:{port}/token"):
        response = token_request(http, CC, client, key.proof("POST", htu))
        assert response.status_code == 200, (htu, response.text)


def test_proof_iat_slightly_in_the_future_is_accepted(live: Live, http: httpx.Client) -> None:
    client = confidential(live)
    response = token_request(http, CC, client, DPoPKey().proof("POST", f"{live.url}/token", iat=time.time() + 5))
    assert response.status_code == 200, response.text


def test_a_proof_is_accepted_once(live: Live, http: httpx.Client) -> None:
    client = confidential(live)
    proof = DPoPKey().proof("POST", f"{live.url}/token")
    assert token_request(http, CC, client, proof).status_code == 200
    refused(token_request(http, CC, client, proof), "invalid_dpop_proof", "already used")


def test_replayed_proof_is_refused_by_another_server_process(live: Live, http: httpx.Client) -> None:
    """With Redis the jti cache is shared: a second DPoP instance (another worker or node)
    refuses a proof the live server accepted. Without Redis each process has its own."""
    client = confidential(live)
    proof = DPoPKey().proof("POST", f"{live.url}/token")
    assert token_request(http, CC, client, proof).status_code == 200
    other = DPoP(live.ctx.settings, live.ctx.redis)
    headers = Headers({"dpop": proof})
    if live.ctx.redis is None:
        assert other.check(headers, "POST", f"{live.url}/token") is not None
    else:
        with pytest.raises(InvalidDPoPProofError, match="already used"):
            other.check(headers, "POST", f"{live.url}/token")


# -- the per-client flag (§5.2) -------------------------------------------------------------------


def test_dpop_bound_client_is_refused_without_a_proof_and_keeps_its_code(live: Live, http: httpx.Client) -> None:
    client = confidential(live, dpop_bound_access_tokens=True)
    response = token_request(http, CC, client)
    refused(response, "invalid_dpop_proof", "dpop_bound_access_tokens")
    assert response.json()["error_description"] == "This client must send a DPoP proof (dpop_bound_access_tokens)."
    assert token_request(http, CC, client, DPoPKey().proof("POST", f"{live.url}/token")).json()["token_type"] == "DPoP"

    code_client = live.make_client(redirect_uris=[flows.REDIRECT_URI], dpop_bound_access_tokens=True)
    code, verifier = get_code(live, http, code_client[0])
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": flows.REDIRECT_URI,
            "code_verifier": verifier}
    auth = (code_client[0], str(code_client[1]))
    refused(token_request(http, data, auth), "invalid_dpop_proof", "dpop_bound_access_tokens")
    # refused before the code was claimed: the same code still works with a proof
    response = token_request(http, data, auth, DPoPKey().proof("POST", f"{live.url}/token"))
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"


def test_registration_and_admin_api_set_the_flag(live: Live, http: httpx.Client) -> None:
    from authserver.clients.registration import create_initial_access_token

    with transaction(live.ctx.sessions) as db:
        initial = create_initial_access_token(db, live.ctx.box)
    auth = {"authorization": f"Bearer {initial}"}
    metadata = {"redirect_uris": [flows.REDIRECT_URI], "dpop_bound_access_tokens": True}
    registered = http.post("/register", json=metadata, headers=auth)
    assert registered.status_code == 201, registered.text
    assert registered.json()["dpop_bound_access_tokens"] is True
    bad = http.post("/register", json={**metadata, "dpop_bound_access_tokens": "yes"}, headers=auth)
    refused(bad, "invalid_client_metadata", "dpop_bound_access_tokens")

    # an automation client that only ever gets DPoP-bound tokens uses the admin API with DPoP
    admin = confidential(live, grant_types=["client_credentials"], scope="authserver:admin",
                         dpop_bound_access_tokens=True)
    key = DPoPKey()
    token = token_request(http, {**CC, "scope": "authserver:admin"}, admin,
                          key.proof("POST", f"{live.url}/token")).json()["access_token"]
    path = f"/admin/api/clients/{registered.json()['client_id']}"
    patch = http.patch(path, json={"dpop_bound_access_tokens": False}, headers={
        "authorization": f"DPoP {token}", "dpop": key.proof("PATCH", f"{live.url}{path}", token=token)})
    assert patch.status_code == 200, patch.text
    assert patch.json()["dpop_bound_access_tokens"] is False
    as_bearer = http.get(path, headers={"authorization": f"Bearer {token}"})
    assert as_bearer.status_code == 401 and "DPoP" in as_bearer.headers["www-authenticate"]
    assert as_bearer.json()["error"] == "invalid_token"


# -- protected resources (§7) ---------------------------------------------------------------------


def userinfo(http: httpx.Client, live: Live, access_token: str, key: DPoPKey | None, scheme: str = "DPoP",
             **proof: Any) -> httpx.Response:
    headers = {"authorization": f"{scheme} {access_token}"}
    if key is not None:
        proof.setdefault("token", access_token)
        headers["dpop"] = key.proof(proof.pop("htm", "GET"), proof.pop("htu", f"{live.url}/userinfo"), **proof)
    return http.get("/userinfo", headers=headers)


def challenged(response: httpx.Response, error: str, words: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == error and words in response.json()["error_description"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("DPoP algs=") and f'error="{error}"' in challenge


def test_userinfo_takes_a_bound_token_with_its_proof(live: Live, http: httpx.Client) -> None:
    key = DPoPKey()
    token = password_grant(live, http, key)["access_token"]
    ok = userinfo(http, live, token, key)
    assert ok.status_code == 200, ok.text
    assert ok.json()["sub"]
    assert userinfo(http, live, token, key, htm="GET").status_code == 200  # a fresh proof each time

    challenged(userinfo(http, live, token, None, scheme="Bearer"), "invalid_token", "bound to a DPoP key")
    challenged(userinfo(http, live, token, None), "invalid_dpop_proof", "proof is required")
    challenged(userinfo(http, live, token, key, token="another-token"), "invalid_dpop_proof", "ath does not match")
    challenged(userinfo(http, live, token, key, drop=("ath",)), "invalid_dpop_proof", "ath does not match")
    challenged(userinfo(http, live, token, DPoPKey()), "invalid_token", "Invalid DPoP key binding")
    challenged(userinfo(http, live, token, key, htm="POST"), "invalid_dpop_proof", "htm does not match")
    challenged(userinfo(http, live, token, key, htu=f"{live.url}/token"), "invalid_dpop_proof", "htu does not match")
    proof = key.proof("GET", f"{live.url}/userinfo", token=token)
    headers = {"authorization": f"DPoP {token}", "dpop": proof}
    assert http.get("/userinfo", headers=headers).status_code == 200
    challenged(http.get("/userinfo", headers=headers), "invalid_dpop_proof", "already used")


def test_userinfo_keeps_bearer_for_unbound_tokens(live: Live, http: httpx.Client) -> None:
    token = password_grant(live, http, None)["access_token"]
    assert userinfo(http, live, token, None, scheme="Bearer").status_code == 200
    challenged(userinfo(http, live, token, DPoPKey()), "invalid_token", "not DPoP-bound")


# -- server nonces (§8, §9) -----------------------------------------------------------------------


def test_nonce_flow(live: Live, http: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live.ctx.oauth.dpop, "require_nonce", True)
    client = confidential(live)
    key = DPoPKey()
    first = token_request(http, CC, client, key.proof("POST", f"{live.url}/token"))
    refused(first, "use_dpop_nonce", "nonce")
    nonce = first.headers["dpop-nonce"]
    refused(token_request(http, CC, client, key.proof("POST", f"{live.url}/token", nonce="x" + nonce)),
            "use_dpop_nonce", "nonce")
    ok = token_request(http, CC, client, key.proof("POST", f"{live.url}/token", nonce=nonce))
    assert ok.status_code == 200, ok.text
    assert ok.headers["dpop-nonce"]  # §8.2: the next nonce rides on the success

    # stateless: another process with the same SECRET_KEY hands out and accepts the same nonce
    assert DPoP(live.ctx.settings, None).nonce() in (nonce, ok.headers["dpop-nonce"])

    monkeypatch.setattr(live.ctx.oauth.dpop, "require_nonce", False)  # a user's token for userinfo
    user_token = password_grant(live, http, key)["access_token"]
    monkeypatch.setattr(live.ctx.oauth.dpop, "require_nonce", True)
    refused_rs = userinfo(http, live, user_token, key)
    challenged(refused_rs, "use_dpop_nonce", "nonce")
    good = userinfo(http, live, user_token, key, nonce=refused_rs.headers["dpop-nonce"])
    assert good.status_code == 200, good.text


# -- interop: a proof made by PyJWT, the thumbprint computed by hand -------------------------------


def test_pyjwt_made_proof(live: Live, http: httpx.Client) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = pyjwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    proof = pyjwt.encode({"jti": secrets.token_urlsafe(12), "htm": "POST", "htu": f"{live.url}/token",
                          "iat": int(time.time())}, private, algorithm="ES256",
                         headers={"typ": "dpop+jwt", "jwk": jwk})
    client = confidential(live)
    body = token_request(http, CC, client, proof).json()
    assert body["token_type"] == "DPoP"
    assert pyjwt.decode(body["access_token"], options={"verify_signature": False})["cnf"]["jkt"] == \
        rfc7638_thumbprint(jwk)
    info = flows.introspect(http, *client, body["access_token"])
    assert info["cnf"]["jkt"] == rfc7638_thumbprint(jwk)
    assert ath("abc") == "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"  # RFC 9449 helper sanity: SHA-256("abc")
