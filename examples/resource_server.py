"""A resource server (API) that validates authserver access tokens offline.

Access tokens are RS256 JWTs per RFC 9068. This API checks each one against
the server's JWKS with PyJWT's ``PyJWKClient`` and needs no call to the
authorization server per request:

* ``Authorization: Bearer <token>`` header only (a token in the URL query is
  ignored, RFC 6750 §2.3 discouraged);
* JOSE header ``typ`` must be ``at+jwt`` (RFC 9068 §2.1) — this is what tells
  an access token from an ID token signed by the same key;
* algorithm RS256 only (never taken from the token);
* signature with the JWKS key named by ``kid``: ``PyJWKClient`` caches the
  JWKS (``lifespan``, keep it <= the server's ``JWKS_MAX_AGE``) and, when a
  token names a ``kid`` it has not seen (after ``authserver keys rotate``),
  fetches the JWKS again before failing — at most once per
  ``refresh_cooldown`` seconds (PyJWT >= 2.11's ``cooldown_duration``, so a
  flood of forged kids cannot hammer the JWKS). The server publishes a new key
  ``KEY_ACTIVATION_DELAY`` before it signs with it, longer than the JWKS
  max-age, so the cache normally knows the key before it is used; the kid
  refresh is the safety net (``keys rotate`` with no delay, a cold cache);
* ``iss`` equal to the configured issuer, ``aud`` containing this API's
  audience (register the client with ``audience=[...]``; by default the
  audience is the client id), ``exp``/``iat`` present and ``exp`` in the future
  (30 s leeway), ``sub`` and ``client_id`` present;
* optionally a scope (``REQUIRED_SCOPE``).

Failures answer ``401`` with ``WWW-Authenticate: Bearer error="invalid_token"``
(RFC 6750 §3); a missing scope answers ``403 insufficient_scope``.

Run it::

    RS_ISSUER=http://127.0.0.1:8000 RS_AUDIENCE=https://api.example.com \\
        uvicorn --factory examples.resource_server:app_from_env --port 9000

    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:9000/api/me

``RS_REFRESH_COOLDOWN`` (seconds, default 30) and ``RS_REQUIRED_SCOPE`` are
optional. ``RS_JWKS_URI`` defaults to ``<issuer>/jwks.json`` (read it from discovery in
real deployments: ``<issuer>/.well-known/openid-configuration`` → ``jwks_uri``).
Needs ``starlette`` and ``pyjwt[crypto]``.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ALGORITHMS = ["RS256"]
LEEWAY = 30


class TokenError(Exception):
    """The access token is missing or invalid (401)."""


class Validator:
    """Validates RFC 9068 access tokens against the issuer's JWKS."""

    def __init__(self, issuer: str, audience: str, jwks_uri: str | None = None, *,
                 jwks_lifespan: int = 300, refresh_cooldown: float = 30,
                 required_scope: str | None = None) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.required_scope = required_scope
        options: dict[str, Any] = {}
        if "cooldown_duration" in inspect.signature(jwt.PyJWKClient).parameters:
            options["cooldown_duration"] = refresh_cooldown  # older PyJWT: refetch on every unknown kid
        # cache_keys: signing keys are kept per kid; an unknown kid triggers a refetch
        self.jwks = jwt.PyJWKClient(jwks_uri or f"{self.issuer}/jwks.json", cache_jwk_set=True,
                                    lifespan=jwks_lifespan, cache_keys=True, timeout=10, **options)

    def validate(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError(f"malformed token: {exc}") from None
        if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
            raise TokenError("not an access token (typ must be at+jwt)")
        if header.get("alg") not in ALGORITHMS:
            raise TokenError("unexpected algorithm")
        try:
            key = self.jwks.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=ALGORITHMS, issuer=self.issuer, audience=self.audience,
                leeway=LEEWAY, options={"require": ["exp", "iat", "iss", "aud", "sub", "client_id"]},
            )
        except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
            raise TokenError(str(exc)) from None
        return claims

    def has_scope(self, claims: dict[str, Any]) -> bool:
        return self.required_scope is None or self.required_scope in str(claims.get("scope", "")).split()


def _unauthorized(description: str | None) -> JSONResponse:
    challenge = 'Bearer realm="api"'
    if description is not None:
        safe = description.replace('"', "'")
        challenge += f', error="invalid_token", error_description="{safe}"'
    return JSONResponse({"error": "invalid_token" if description else "unauthorized"}, status_code=401,
                        headers={"WWW-Authenticate": challenge})


def create_app(validator: Validator) -> Starlette:
    async def me(request: Request) -> JSONResponse:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized(None)
        try:
            # PyJWKClient may fetch the JWKS over the network: keep it off the event loop
            claims = await run_in_threadpool(validator.validate, token.strip())
        except TokenError as exc:
            return _unauthorized(str(exc))
        if not validator.has_scope(claims):
            return JSONResponse({"error": "insufficient_scope"}, status_code=403, headers={
                "WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{validator.required_scope}"'})
        kid = jwt.get_unverified_header(token)["kid"]
        return JSONResponse({"sub": claims["sub"], "client_id": claims["client_id"],
                             "scope": claims.get("scope", ""), "kid": kid})

    app = Starlette(routes=[Route("/api/me", me, methods=["GET"])])
    app.state.validator = validator
    return app


def app_from_env() -> Starlette:
    return create_app(Validator(
        os.environ.get("RS_ISSUER", "http://127.0.0.1:8000"),
        os.environ["RS_AUDIENCE"],
        os.environ.get("RS_JWKS_URI") or None,
        refresh_cooldown=float(os.environ.get("RS_REFRESH_COOLDOWN", "30")),
        required_scope=os.environ.get("RS_REQUIRED_SCOPE") or None,
    ))
