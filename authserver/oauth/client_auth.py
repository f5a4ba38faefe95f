"""``private_key_jwt`` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9).

The client proves who it is with a JWT signed by a key it registered (``jwks``
inline, or ``jwks_uri`` fetched by :class:`ClientKeys`). Authlib's
``JWTBearerClientAssertion`` gives the parsing and the claim checks; this
subclass adds what it leaves open or does differently:

* **algorithms**: the header's ``alg`` must be one of
  ``vocabulary.CLIENT_ASSERTION_SIGNING_ALGS`` (RS256, PS256, ES256, EdDSA), never
  ``none`` or an HMAC (RFC 8725 §3.1), and the key must be of its type;
* **who**: ``iss`` = ``sub`` = the ``client_id`` of a client registered with
  ``private_key_jwt`` (a ``client_id`` form parameter, when sent, must be the same:
  RFC 7521 §4.2);
* **audience**: the issuer, the token endpoint URL or the pushed authorization
  request endpoint URL (RFC 7523 §3 item 3, OIDC Core §9, RFC 9126 §2);
* **time**: ``exp`` required, at most :data:`MAX_LIFETIME` ahead; ``iat`` and
  ``nbf`` not in the future (30 s of leeway);
* **replay**: ``jti`` required and single use, recorded in the database
  (``clients.service.use_assertion_jti``) so every node refuses a second use
  (RFC 7523 §3 item 7).

Keys found by ``jwks_uri`` are cached per process for :attr:`ClientKeys.ttl`
seconds; an assertion naming an unknown ``kid`` refetches once (at most every
:attr:`ClientKeys.min_refetch` seconds per URI, so random ``kid``s cannot make
the server fetch in a loop). Fetches: GET only, no redirects followed, a
timeout, a response size cap, ``https`` only (``http`` only while the issuer itself is
``http``, i.e. development), and only to public addresses unless
``OUTBOUND_ALLOW_PRIVATE`` (:mod:`authserver.security.outbound`).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from contextlib import closing
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from authlib.oauth2.rfc6749.errors import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key

from authserver.clients import service as clients
from authserver.clients.errors import ClientError
from authserver.clients.models import Client
from authserver.keys.algorithms import jws_registry
from authserver.oauth import vocabulary
from authserver.oauth.bridge import current_db
from authserver.security import outbound

if TYPE_CHECKING:
    from authserver.settings import Settings

#: the longest an assertion may live (exp - now), seconds; a replay row is kept that long
MAX_LIFETIME = 300
LEEWAY = 30
MAX_ASSERTION_CHARS = 8192
#: alg -> (kty, crv) of the key that can verify it
KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None), "PS256": ("RSA", None), "ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519"),
}


class ClientKeys:
    """The public keys a ``private_key_jwt`` client registered: inline, or fetched from
    its ``jwks_uri`` and cached per process."""

    def __init__(self, *, allow_http: bool, allow_private: bool, ttl: int = 300, timeout: float = 5.0,
                 max_bytes: int = 64 * 1024, min_refetch: float = 10.0) -> None:
        self.allow_http = allow_http
        #: fetch from private, loopback and link-local addresses too (security/outbound.py)
        self.allow_private = allow_private
        self.ttl = ttl
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.min_refetch = min_refetch
        self.clock = time.monotonic
        self._lock = threading.Lock()
        #: uri -> (keys, fetched at)
        self._cache: dict[str, tuple[list[dict[str, Any]], float]] = {}
        #: uri -> last fetch attempt
        self._attempts: dict[str, float] = {}

    def keys(self, client: Client, *, kid: str | None) -> list[dict[str, Any]]:
        """The client's JWKs; with ``kid`` naming none of the cached ones, fetched again once."""
        if client.jwks is not None:
            registered: list[dict[str, Any]] = list(client.jwks.get("keys", []))  # type: ignore[call-overload]
            return registered
        uri = client.jwks_uri
        if not uri:
            raise InvalidClientError(description="The client has no registered keys.")
        now = self.clock()
        cached = self._cache.get(uri)
        if cached is not None and cached[1] + self.ttl > now and (
                kid is None or any(k.get("kid") == kid for k in cached[0])):
            return cached[0]
        if self._attempts.get(uri, float("-inf")) + self.min_refetch > now:
            # fetched (or failed) a moment ago: do not fetch again for an unknown kid
            if cached is not None:
                return cached[0]
            raise InvalidClientError(description="The client's jwks_uri could not be fetched; try again later.")
        return self._fetch(uri)

    def _fetch(self, uri: str) -> list[dict[str, Any]]:
        with self._lock:
            self._attempts[uri] = self.clock()
            if len(self._attempts) > 10_000:
                self._attempts.clear()
                self._cache.clear()
        if urlsplit(uri).scheme != "https" and not self.allow_http:
            raise InvalidClientError(description="The client's jwks_uri must be https.")
        try:
            destination = outbound.resolve(uri, allow_private=self.allow_private)
        except outbound.ForbiddenDestination as refused:
            raise InvalidClientError(description=f"The client's jwks_uri is not fetched: {refused}.") from None
        try:
            body = self._get(destination)
            keys: list[dict[str, Any]] = clients.validate_jwks(json.loads(body))["keys"]
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, ClientError, RecursionError):
            raise InvalidClientError(description="The client's jwks_uri did not return a usable JWK Set.") from None
        with self._lock:
            self._cache[uri] = (keys, self.clock())
        return keys

    def _get(self, destination: outbound.Destination) -> bytes:
        with destination.client(self.timeout) as http, \
                closing(http.send(destination.request(http, "GET", headers={"Accept": "application/json"}),
                                  stream=True)) as response:
            if response.status_code != 200:
                raise ValueError(f"status {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                raise ValueError("too large")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise ValueError("too large")
            return bytes(body)


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    """The ``private_key_jwt`` method, registered with the server (see the module doc)."""

    CLIENT_AUTH_METHOD = vocabulary.PRIVATE_KEY_JWT

    def __init__(self, settings: Settings, keys: ClientKeys) -> None:
        super().__init__(validate_jti=True, leeway=LEEWAY)
        self.issuer = settings.issuer
        self.client_keys = keys

    def get_audiences(self) -> list[str]:
        return [self.issuer, f"{self.issuer}/token", f"{self.issuer}/par"]

    def __call__(self, query_client: Any, request: Any) -> Any:
        form = request.form
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != vocabulary.CLIENT_ASSERTION_TYPE or not assertion:
            return None
        if len(assertion) > MAX_ASSERTION_CHARS:
            raise InvalidClientError(description="The client assertion is too long.")
        headers, claims = self.extract_assertion(assertion)
        alg = headers.get("alg")
        if alg not in vocabulary.CLIENT_ASSERTION_SIGNING_ALGS:
            raise InvalidClientError(description="The client assertion's alg is not allowed.")
        client_id = claims.get("sub")
        if not isinstance(client_id, str) or not client_id:
            raise InvalidClientError(description="The client assertion has no 'sub'.")
        if form.get("client_id") and form["client_id"] != client_id:
            raise InvalidClientError(description="'client_id' does not match the client assertion.")
        client = query_client(client_id)
        if client is None or client.row.token_endpoint_auth_method != vocabulary.PRIVATE_KEY_JWT:
            raise InvalidClientError(description="The client cannot authenticate with private_key_jwt.")
        kid = headers.get("kid") if isinstance(headers.get("kid"), str) else None
        key = self._verifying_key(client.row, alg, kid, assertion)
        if key is None:
            raise InvalidClientError(description="The client assertion's signature is invalid.")
        request.client = client
        self.verify_claims(key[1].claims)
        return client

    def _verifying_key(self, client: Client, alg: str, kid: str | None,
                       assertion: str) -> tuple[Key, Any] | None:
        """The registered key that verifies ``assertion`` and its decoded token; None if none does."""
        kty, crv = KEY_TYPES[alg]
        registry = jws_registry([alg])
        for jwk in self.client_keys.keys(client, kid=kid):
            if kid is not None and jwk.get("kid") != kid:
                continue
            if jwk.get("kty") != kty or (crv and jwk.get("crv") != crv) or jwk.get("use", "sig") != "sig":
                continue
            if jwk.get("alg") not in (None, alg):
                continue
            try:
                key = JWKRegistry.import_key(jwk)
                return key, jwt.decode(assertion, key, algorithms=[alg], registry=registry)
            except (JoseError, ValueError, TypeError, KeyError):
                continue
        return None

    def verify_claims(self, claims: Any) -> None:
        client_id = claims.get("sub")
        registry = jwt.JWTClaimsRegistry(
            leeway=self.leeway,
            iss={"essential": True, "value": client_id},
            sub={"essential": True},
            aud={"essential": True, "values": self.get_audiences()},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise InvalidClientError(description=f"The client assertion is invalid: {exc.description}") from None
        now = int(time.time())
        exp = claims["exp"]
        if not isinstance(exp, int) or exp > now + MAX_LIFETIME + self.leeway:
            raise InvalidClientError(description=f"The client assertion must expire within {MAX_LIFETIME} seconds.")
        jti = claims["jti"]
        if not isinstance(jti, str) or not 1 <= len(jti) <= 256:
            raise InvalidClientError(description="The client assertion's 'jti' must be a string.")
        if not self.validate_jti(claims, jti):
            raise InvalidClientError(description="The client assertion was used before.")

    def validate_jti(self, claims: Any, jti: str) -> bool:
        expires = dt.datetime.fromtimestamp(int(claims["exp"]) + self.leeway, dt.UTC)
        return clients.use_assertion_jti(current_db.get(), claims["sub"], jti, expires)
