"""``private_key_jwt`` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9), on both
backends: assertions are made with PyJWT (an implementation other than the server's)."""

from __future__ import annotations

import contextlib
import http.server
import json
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.jwk import JWKRegistry

from authserver.app import create_app
from authserver.context import Context
from authserver.db import transaction
from authserver.oauth.client_auth import ClientKeys
from tests.conftest import ISSUER

# the server reaches sites on this machine: no proxy of the environment in between
pytestmark = pytest.mark.usefixtures("no_ambient_proxy")

TOKEN_URL = f"{ISSUER}/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Signer:
    """A client's key pair: the private key signs, ``jwk`` is what the client registers."""

    def __init__(self, alg: str = "ES256", kid: str | None = None) -> None:
        self.alg = alg
        if alg in ("RS256", "PS256"):
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()
        pem = self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = kid or secrets.token_hex(4)
        self.kty = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}.get(alg, "OKP")
        self.jwk = {**JWKRegistry.import_key(pem, self.kty).as_dict(private=False), "kid": self.kid, "use": "sig"}

    @property
    def private_jwk(self) -> dict[str, Any]:
        pem = self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        return {**JWKRegistry.import_key(pem, self.kty).as_dict(private=True), "kid": self.kid}

    def assertion(self, client_id: str, *, aud: Any = TOKEN_URL, iss: str | None = None, kid: Any = "own",
                  lifetime: int = 60, without: tuple[str, ...] = (), **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": iss or client_id, "sub": client_id, "aud": aud, "exp": now + lifetime, "iat": now,
                   "jti": secrets.token_urlsafe(12), **claims}
        payload = {k: v for k, v in payload.items() if v is not None and k not in without}
        headers = {"kid": self.kid if kid == "own" else kid} if kid else None
        return pyjwt.encode(payload, self.private, algorithm=self.alg, headers=headers)


def jwks(*signers: Signer) -> dict[str, Any]:
    return {"keys": [s.jwk for s in signers]}


def cc(client: Any, assertion: str, **extra: str) -> Any:
    return client.post("/token", data={"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                                       "client_assertion": assertion, **extra})


@pytest.fixture
def machine(make_client: Any) -> Any:
    """``machine(signer, **kw)``: a client_credentials client registered with private_key_jwt."""

    def make(signer: Signer | None = None, **kw: Any) -> str:
        kw.setdefault("jwks", jwks(signer) if signer is not None and "jwks_uri" not in kw else None)
        cid, secret = make_client(token_endpoint_auth_method="private_key_jwt", grant_types=["client_credentials"],
                                  redirect_uris=[], scope="orders:read", **kw)
        assert secret is None  # no secret for a key-authenticated client
        return cid

    return make


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
def test_each_allowed_alg_authenticates(client, machine, alg):
    signer = Signer(alg)
    cid = machine(signer)
    r = cc(client, signer.assertion(cid))
    assert r.status_code == 200, r.text
    assert pyjwt.decode(r.json()["access_token"], options={"verify_signature": False})["client_id"] == cid


def test_audience_is_the_issuer_or_the_token_endpoint(client, machine):
    signer = Signer()
    cid = machine(signer)
    for aud in (ISSUER, TOKEN_URL, [TOKEN_URL, "https://other.example"]):
        assert cc(client, signer.assertion(cid, aud=aud)).status_code == 200
    for aud in ("https://other.example/token", f"{ISSUER}/userinfo", None):
        r = cc(client, signer.assertion(cid, aud=aud))
        assert r.status_code == 401 and r.json()["error"] == "invalid_client", aud


def test_a_jti_is_single_use(client, machine):
    signer = Signer()
    cid = machine(signer)
    assertion = signer.assertion(cid)
    assert cc(client, assertion).status_code == 200
    r = cc(client, assertion)
    assert r.status_code == 401 and "used before" in r.json()["error_description"]
    r = cc(client, signer.assertion(cid, jti=None))
    assert r.status_code == 401, "jti is required"


def test_a_replay_is_refused_by_another_node(ctx, client, machine):
    """The replay store is the database: a second server on it refuses the same assertion."""
    from starlette.testclient import TestClient

    signer = Signer()
    cid = machine(signer)
    assertion = signer.assertion(cid)
    assert cc(client, assertion).status_code == 200
    other = Context(ctx.settings)
    try:
        with TestClient(create_app(ctx.settings, context=other), base_url=ISSUER) as node2:
            assert cc(node2, assertion).status_code == 401
            assert cc(node2, signer.assertion(cid)).status_code == 200
    finally:
        other.close()


def test_time_claims(client, machine):
    signer = Signer()
    cid = machine(signer)
    now = int(time.time())
    for claims, why in [({"exp": None}, "exp is required"),
                        ({"lifetime": -120}, "expired"),
                        ({"lifetime": 3600}, "more than 300 s ahead"),
                        ({"iat": now + 600}, "issued in the future"),
                        ({"nbf": now + 600}, "not yet valid")]:
        r = cc(client, signer.assertion(cid, **claims))
        assert r.status_code == 401 and r.json()["error"] == "invalid_client", why
    assert cc(client, signer.assertion(cid, lifetime=290)).status_code == 200


def test_issuer_subject_and_client_id_must_be_the_client(client, machine):
    signer = Signer()
    cid = machine(signer)
    other = machine(Signer())
    assert cc(client, signer.assertion(cid, iss=other)).status_code == 401
    assert cc(client, signer.assertion(cid), client_id=other).status_code == 401
    assert cc(client, signer.assertion(cid), client_id=cid).status_code == 200
    # the other client's key cannot speak for this one
    assert cc(client, signer.assertion(other)).status_code == 401


def test_each_refused_assertion_says_why(client, machine):
    """RFC 7523 §3: the claim checks, each with its own description, so a client developer
    can tell them apart (the error stays invalid_client)."""
    signer = Signer()
    cid = machine(signer)
    now = int(time.time())
    invalid = "The client assertion is invalid: "
    cases = [
        ({"without": ("iss",)}, invalid + "Missing claim: 'iss'"),
        ({"iss": "someone-else"}, invalid + "Invalid claim: 'iss'"),
        ({"aud": None}, invalid + "Missing claim: 'aud'"),
        ({"jti": None}, invalid + "Missing claim: 'jti'"),
        ({"exp": None}, invalid + "Missing claim: 'exp'"),
        ({"lifetime": -120}, invalid + "The token is expired"),
        ({"lifetime": 3600}, "The client assertion must expire within 300 seconds."),
        ({"jti": 7}, invalid + "Claim 'jti' must be a string"),
        ({"jti": "j" * 257}, "The client assertion's 'jti' must be a string."),
        ({"nbf": now + 600}, invalid + "The token is not yet valid"),
        ({"iat": now + 600}, invalid + "The token was issued in the future"),
    ]
    for claims, description in cases:
        r = cc(client, signer.assertion(cid, **claims))
        assert (r.status_code, r.json()) == (401, {"error": "invalid_client", "error_description": description}), \
            claims
    assertion = signer.assertion(cid, jti="j" * 256)  # the longest jti taken
    assert cc(client, assertion).status_code == 200
    r = cc(client, assertion)
    assert r.json()["error_description"] == "The client assertion was used before."


@pytest.mark.parametrize("registered", [{"use": "enc"}, {"alg": "PS256"}])
def test_a_registered_key_for_another_use_or_alg_does_not_verify(client, machine, registered):
    """RFC 7517 §4.2, §4.4: a key registered for encryption, or for another algorithm, is
    not used to verify an assertion, even though its signature would check out."""
    signer = Signer("RS256")
    cid = machine(jwks={"keys": [{**signer.jwk, **registered}]})
    r = cc(client, signer.assertion(cid))
    assert (r.status_code, r.json()["error_description"]) == (401, "The client assertion's signature is invalid.")
    assert cc(client, Signer("RS256").assertion(cid)).status_code == 401


def test_algorithms_outside_the_allow_list_are_refused(client, machine):
    signer = Signer("RS256")
    cid = machine(signer)
    now = int(time.time())
    claims = {"iss": cid, "sub": cid, "aud": TOKEN_URL, "exp": now + 60, "jti": secrets.token_hex(8)}
    unsigned = pyjwt.encode(claims, None, algorithm="none", headers={"kid": signer.kid})
    # the classic confusion: HS256 keyed with the public key's bytes
    public_pem = signer.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    head = b64(json.dumps({"alg": "HS256", "kid": signer.kid}).encode())
    body = b64(json.dumps({**claims, "jti": "hs"}).encode())
    hs256 = f"{head}.{body}.{b64(hmac.new(public_pem, f'{head}.{body}'.encode(), hashlib.sha256).digest())}"
    rs384 = pyjwt.encode({**claims, "jti": "rs384"}, signer.private, algorithm="RS384", headers={"kid": signer.kid})
    for assertion in (unsigned, hs256, rs384):
        r = cc(client, assertion)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_a_key_of_another_type_or_a_forged_signature_fails(client, machine):
    registered = Signer("ES256", kid="k1")
    cid = machine(registered)
    forger = Signer("ES256", kid="k1")
    assert cc(client, forger.assertion(cid)).status_code == 401
    # no kid: the registered key is found by type
    assert cc(client, registered.assertion(cid, kid=None)).status_code == 200
    assert cc(client, forger.assertion(cid, kid=None)).status_code == 401


def test_a_kid_that_is_not_a_string_is_refused(client, machine):
    """RFC 7515 §4.1.4: ``kid`` is a string; an assertion whose header says otherwise is
    refused, although its signature is good."""
    import base64

    registered = Signer("ES256", kid="k1")
    cid = machine(registered)
    _head, body, _signature = registered.assertion(cid).split(".")

    def signed(kid: Any) -> str:
        head = base64.urlsafe_b64encode(json.dumps({"alg": "ES256", "typ": "JWT", "kid": kid}).encode())
        signing_input = head.rstrip(b"=") + b"." + body.encode()
        algorithm = pyjwt.algorithms.ECAlgorithm(pyjwt.algorithms.ECAlgorithm.SHA256)
        signature = base64.urlsafe_b64encode(algorithm.sign(signing_input, registered.private)).rstrip(b"=")
        return (signing_input + b"." + signature).decode()

    r = cc(client, signed(7))
    assert (r.status_code, r.json()["error_description"]) == (401, "The client assertion's signature is invalid.")
    assert cc(client, signed("k1")).status_code == 200  # the same token with a string kid


def test_method_is_exactly_the_registered_one(client, machine, make_client):
    signer = Signer()
    cid = machine(signer)
    # no secret, no bare client_id for a private_key_jwt client
    assert client.post("/token", data={"grant_type": "client_credentials", "client_id": cid}).status_code == 401
    r = client.post("/token", data={"grant_type": "client_credentials", "client_id": cid, "client_secret": "x"})
    assert r.status_code == 401
    r = cc(client, signer.assertion(cid), client_secret="x")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    # a secret client cannot switch to an assertion
    scid, _secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="orders:read")
    assert cc(client, signer.assertion(scid)).status_code == 401


def test_introspection_and_revocation_accept_private_key_jwt(client, machine):
    signer = Signer("EdDSA")
    cid = machine(signer)
    token = cc(client, signer.assertion(cid)).json()["access_token"]
    auth = {"client_assertion_type": ASSERTION_TYPE}
    r = client.post("/introspect", data={"token": token, **auth, "client_assertion": signer.assertion(cid)})
    assert r.status_code == 200 and r.json()["active"] is True
    r = client.post("/revoke", data={"token": token, **auth, "client_assertion": signer.assertion(cid)})
    assert r.status_code == 200
    r = client.post("/introspect", data={"token": token, **auth, "client_assertion": signer.assertion(cid)})
    assert r.json() == {"active": False}
    r = client.post("/introspect", data={"token": token, **auth, "client_assertion": "not.a.jwt"})
    assert r.status_code == 401


# -- jwks_uri ------------------------------------------------------------------


class JwksServer:
    """A relying party's JWK Set on a loopback port, counting fetches."""

    def __init__(self) -> None:
        self.body: bytes = b'{"keys": []}'
        self.fetches = 0
        self.delay = 0.0
        self.accept: str | None = None
        self.host: str | None = None
        self.declare = True  # send Content-Length
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                outer.accept = self.headers.get("Accept")
                outer.host = self.headers.get("Host")
                time.sleep(outer.delay)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if outer.declare:
                    self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(outer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, *signers: Signer) -> None:
        self.body = json.dumps(jwks(*signers)).encode()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


def test_jwks_uri_is_fetched_cached_and_refetched_for_a_new_kid(ctx, client, machine, jwks_server):
    first = Signer(kid="one")
    jwks_server.publish(first)
    cid = machine(jwks_uri=jwks_server.url)
    keys: ClientKeys = ctx.oauth.client_keys
    keys.min_refetch = 0
    assert cc(client, first.assertion(cid)).status_code == 200
    assert cc(client, first.assertion(cid)).status_code == 200
    assert jwks_server.fetches == 1, "cached"
    second = Signer(kid="two")
    jwks_server.publish(first, second)  # the client rotates its key
    assert cc(client, second.assertion(cid)).status_code == 200
    assert jwks_server.fetches == 2, "an unknown kid refetches once"
    # an unknown kid again within min_refetch: no fetch in a loop
    keys.min_refetch = 60
    assert cc(client, Signer(kid="three").assertion(cid)).status_code == 401
    assert cc(client, Signer(kid="four").assertion(cid)).status_code == 401
    assert jwks_server.fetches == 2


def test_jwks_uri_size_cap_timeout_and_private_keys(ctx, client, machine, jwks_server):
    signer = Signer()
    keys: ClientKeys = ctx.oauth.client_keys
    keys.min_refetch = 0
    keys.max_bytes = 4096  # a set this size would be fine otherwise (validate_jwks takes 20,000 characters)
    jwks_server.body = json.dumps({"keys": [signer.jwk], "pad": "x" * 6000}).encode()
    cid = machine(jwks_uri=jwks_server.url)
    r = cc(client, signer.assertion(cid))
    assert r.status_code == 401 and "jwks_uri" in r.json()["error_description"]
    jwks_server.publish(signer)
    keys.timeout = 0.3
    jwks_server.delay = 1.0
    assert cc(client, signer.assertion(cid)).status_code == 401
    jwks_server.delay = 0
    private = Signer("RS256")
    jwks_server.body = json.dumps({"keys": [private.private_jwk]}).encode()
    assert cc(client, private.assertion(cid)).status_code == 401, "a JWK Set with private members is refused"
    jwks_server.publish(signer)
    assert cc(client, signer.assertion(cid)).status_code == 200


def test_http_jwks_uri_is_not_fetched_by_an_https_server(ctx, jwks_server):
    from authlib.oauth2.rfc6749.errors import InvalidClientError

    from authserver.clients.models import Client

    signer = Signer()
    jwks_server.publish(signer)
    keys = ClientKeys(allow_http=False, allow_private=True)
    with pytest.raises(InvalidClientError) as caught:
        keys.keys(Client(jwks_uri=jwks_server.url), kid=None)
    assert caught.value.description == "The client's jwks_uri must be https."
    assert jwks_server.fetches == 0
    allowed = ClientKeys(allow_http=True, allow_private=True)
    assert allowed.keys(Client(jwks_uri=jwks_server.url), kid=None)[0]["kid"] == signer.kid


@pytest.mark.parametrize("declared", [True, False])
def test_a_jwks_uri_answer_of_exactly_the_cap_is_taken_and_one_byte_more_is_not(jwks_server, declared):
    """The cap holds whether or not the answer declares its length; the fetch asks for JSON."""
    from authlib.oauth2.rfc6749.errors import InvalidClientError

    from authserver.clients.models import Client

    signer = Signer()
    jwks_server.publish(signer)
    size = len(jwks_server.body)
    jwks_server.declare = declared
    at_cap = ClientKeys(allow_http=True, allow_private=True, max_bytes=size)
    assert at_cap.keys(Client(jwks_uri=jwks_server.url), kid=None)[0]["kid"] == signer.kid
    assert jwks_server.accept == "application/json"
    below = ClientKeys(allow_http=True, allow_private=True, max_bytes=size - 1)
    with pytest.raises(InvalidClientError) as caught:
        below.keys(Client(jwks_uri=jwks_server.url), kid=None)
    assert caught.value.description == "The client's jwks_uri did not return a usable JWK Set."


# -- registration, CLI, admin API, discovery ------------------------------------


def test_registration_takes_a_public_jwks_or_a_jwks_uri(client, ctx):
    from authserver.clients.registration import create_initial_access_token

    with transaction(ctx.sessions) as db:
        token = create_initial_access_token(db, ctx.box, "tests", expires_in=3600)
    signer = Signer()
    base = {"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt", "scope": ""}
    headers = {"Authorization": f"Bearer {token}"}
    r = client.post("/register", json={**base, "jwks": jwks(signer)}, headers=headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert "client_secret" not in body and body["jwks"] == jwks(signer)
    assert cc(client, signer.assertion(body["client_id"])).status_code == 200
    private = Signer("RS256")
    d = private.private_jwk
    for metadata, fragment in [
        ({"jwks": {"keys": [d]}}, "public keys only"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "public keys only"),
        ({"jwks": jwks(signer), "jwks_uri": "https://rp.example.com/jwks"}, "exactly one"),
        ({"jwks_uri": "http://rp.example.com/jwks"}, "https"),
        ({"jwks": {"keys": "x"}}, "JWK Set"),
        ({"jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}}, "cannot be read"),
    ]:
        r = client.post("/register", json={**base, **metadata}, headers=headers)
        assert r.status_code == 400 and fragment in r.json()["error_description"], (metadata, r.text)
    r = client.post("/register", json={**base, "jwks_uri": "https://rp.example.com/jwks.json"}, headers=headers)
    assert r.status_code == 201 and r.json()["jwks_uri"] == "https://rp.example.com/jwks.json"


@pytest.mark.parametrize("uri, description", [
    ("https://rp.example.com/jw ks", "jwks_uri must be a URL of at most 2000 printable characters"),
    ("https://rp.example.com/" + "x" * 1978, "jwks_uri must be a URL of at most 2000 printable characters"),
    ("https:///jwks", "jwks_uri must be an https URL with a host and no credentials or fragment: https:///jwks"),
    ("https://user@rp.example.com/jwks",
     "jwks_uri must be an https URL with a host and no credentials or fragment: https://user@rp.example.com/jwks"),
    ("https://@rp.example.com/jwks",
     "jwks_uri must be an https URL with a host and no credentials or fragment: https://@rp.example.com/jwks"),
    ("https://rp.example.com/jwks#k",
     "jwks_uri must be an https URL with a host and no credentials or fragment: https://rp.example.com/jwks#k"),
    ("http://rp.example.com/jwks", "jwks_uri must use https unless it is a loopback address: http://rp.example.com/jwks"),
])
def test_registration_refuses_a_bad_jwks_uri(client, ctx, uri, description):
    """A jwks_uri is https with a host, no credentials, no fragment, printable, at most 2000 characters;
    anything else is invalid_client_metadata naming the problem (RFC 7591 §3.2.2)."""
    from authserver.clients.registration import create_initial_access_token

    with transaction(ctx.sessions) as db:
        token = create_initial_access_token(db, ctx.box, "tests", expires_in=3600)
    r = client.post("/register", json={"grant_types": ["client_credentials"], "scope": "",
                                       "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri},
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400, r.text
    assert r.json() == {"error": "invalid_client_metadata", "error_description": description}


def _small_rsa_jwk() -> dict[str, Any]:
    import base64

    numbers = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_numbers()

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()

    return {"kty": "RSA", "n": b64(numbers.n), "e": b64(numbers.e)}


@pytest.mark.parametrize("keys, description", [
    (lambda: ["not a key"], "each key in jwks must be a JSON object"),
    (lambda: [{"kty": "oct", "x": "AA"}], "jwks keys must be RSA, EC or OKP public keys"),
    (lambda: [_small_rsa_jwk()], "RSA keys in jwks must have at least 2048 bits"),
    (lambda: [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}], "jwks holds a key that cannot be read"),
])
def test_registration_refuses_a_weak_or_unreadable_key(client, ctx, keys, description):
    """Registered keys are public RSA keys of 2048 bits or more, EC or OKP keys
    (RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used"); anything else is
    invalid_client_metadata naming the problem."""
    from authserver.clients.registration import create_initial_access_token

    with transaction(ctx.sessions) as db:
        token = create_initial_access_token(db, ctx.box, "tests", expires_in=3600)
    r = client.post("/register", json={"grant_types": ["client_credentials"], "scope": "",
                                       "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": keys()}},
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400, r.text
    assert r.json() == {"error": "invalid_client_metadata", "error_description": description}


def test_discovery_names_the_method_and_its_algorithms(client):
    meta = client.get("/.well-known/openid-configuration").json()
    for endpoint in ("token", "revocation", "introspection"):
        assert "private_key_jwt" in meta[f"{endpoint}_endpoint_auth_methods_supported"]
        assert meta[f"{endpoint}_endpoint_auth_signing_alg_values_supported"] == ["RS256", "PS256", "ES256", "EdDSA"]

