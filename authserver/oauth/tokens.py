"""Access tokens (RFC 9068), ID tokens (OIDC Core §2, §3.1.3.6) and their checks.

Access tokens are RS256 JWTs; ID tokens use the client's
``id_token_signed_response_alg`` (RS256, ES256 or EdDSA). Each is signed by the
active key of its algorithm only, with its ``kid`` in the header. Refresh
tokens are opaque 256-bit random strings (stored hashed by ``save_token``).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc import jwt
from joserfc.errors import JoseError

from authserver.keys.algorithms import RS256, SIGNING_ALGS, jws_registry
from authserver.oauth import vocabulary
from authserver.oauth.bridge import NeedsThread, current_db, on_the_loop
from authserver.oauth.models import OAuthClient, Principal
from authserver.roles.permissions import Access, concerning
from authserver.security.crypto import new_token
from authserver.tokens.cache import Subject, TokenState

if TYPE_CHECKING:
    from joserfc.jwk import KeySet

    from authserver.keys.service import KeyStore
    from authserver.settings import Settings

CLOCK_SKEW = 30
#: access tokens remembered as signed by us (:meth:`TokenIssuer.verify_access_token`);
#: the memory is emptied when full (about 7.5 MB with 800-character tokens, measured)
VERIFIED_MAX = 4096
#: a logout token is signed afresh for each delivery attempt, so it can be short-lived
LOGOUT_TOKEN_TTL = 120
# jti: unique, not secret (RFC 7519 §4.1.7). A random per-process prefix and a
# counter avoid a getrandom() system call per token (measured ~2% of a
# client_credentials request).
_JTI_PREFIX = os.urandom(12).hex()
_JTI_COUNTER = itertools.count(1)


def _reseed_jti() -> None:
    global _JTI_PREFIX
    _JTI_PREFIX = os.urandom(12).hex()


os.register_at_fork(after_in_child=_reseed_jti)  # a forked worker must not repeat its parent's ids


def new_jti() -> str:
    return f"{_JTI_PREFIX}{next(_JTI_COUNTER):x}"


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def half_hash(value: str) -> str:
    """``at_hash``: base64url of the left half of SHA-256 (OIDC Core §3.1.3.6)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def user_claims(user: Any, scope: str) -> dict[str, Any]:
    """Standard claims released for the granted scopes (OIDC Core §5.4)."""
    scopes = set(scope.split())
    claims: dict[str, Any] = {"sub": user.id}
    if "profile" in scopes:
        claims["preferred_username"] = user.username
        if user.name:
            claims["name"] = user.name
        if getattr(user, "locale", None):
            claims["locale"] = user.locale  # the language the user last used here (OIDC Core §5.1)
        claims["updated_at"] = int(user.updated_at.timestamp())
    if "email" in scopes:
        claims["email"] = user.email
        claims["email_verified"] = bool(user.email_verified)
    if vocabulary.ROLES in scopes:
        claims["roles"] = user.role_names
    return claims


def requested_claims(user: Any, scope: str, claims_request: dict[str, Any] | None,
                     member: str) -> dict[str, Any]:
    """Claims named in the ``claims`` request parameter's ``member``
    (``userinfo`` or ``id_token``), OIDC Core §5.5: only claims the granted scope
    already releases, so the parameter selects and never widens what was consented."""
    if not claims_request or not isinstance(claims_request.get(member), dict):
        return {}
    available = user_claims(user, scope)
    return {name: available[name] for name in claims_request[member] if name in available}


_REGISTRIES = {alg: jws_registry([alg]) for alg in SIGNING_ALGS}
_ID_TOKEN_REGISTRY = jws_registry(SIGNING_ALGS)


class TokenIssuer:
    def __init__(self, settings: Settings, keys: KeyStore, revoked: TokenState) -> None:
        self.settings = settings
        self.keys = keys
        self.revoked = revoked
        self.issuer = settings.issuer
        #: (kid, typ) -> (base64url protected header + ".", the key's cryptography object)
        self._headers: dict[tuple[str, Any], tuple[bytes, rsa.RSAPrivateKey]] = {}
        #: (the published key set, {access token: its checked claims}), replaced as one
        self._verified: tuple[KeySet | None, dict[str, dict[str, Any]]] = (None, {})

    def _sign(self, header: dict[str, Any], claims: dict[str, Any], alg: str = RS256) -> str:
        """JWS compact serialization (RFC 7515 §7.1) with the active key of ``alg``.

        RS256 (the default, every access token) is what joserfc's ``jwt.encode`` makes,
        without its per-call work: the protected header is encoded once per (key,
        ``typ``), the claims with orjson, and the signature comes straight from
        ``cryptography`` (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3). Claims added
        by a caller (``jkt``, ``extra_claims``) are signed like the others."""
        if alg != RS256:
            key = self.keys.active_for(alg)
            return jwt.encode({**header, "alg": alg, "kid": key.kid}, claims, key.key, algorithms=[alg],
                              registry=_REGISTRIES[alg], default_type=None)
        active = self.keys.active
        typ = header.get("typ")
        cached = self._headers.get((active.kid, typ))
        if cached is None or len(header) > 1:
            private_key = active.key.private_key
            if not isinstance(private_key, rsa.RSAPrivateKey):
                raise ValueError("the active RS256 key has no RSA private part")
            cached = (_b64(orjson.dumps({**header, "alg": "RS256", "kid": active.kid})) + b".", private_key)
            if len(header) <= 1:
                if len(self._headers) > 64:
                    self._headers.clear()
                self._headers[(active.kid, typ)] = cached
        encoded_header, private_key = cached
        signing_input = encoded_header + _b64(orjson.dumps(claims))
        signature = private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return (signing_input + b"." + _b64(signature)).decode("ascii")

    def access_token(self, client: OAuthClient, principal: Principal | None, scope: str,
                     ttl: int | None = None, access: Access | None = None,
                     jkt: str | None = None,
                     extra_claims: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """An RFC 9068 JWT; ``sub`` is the client for ``client_credentials`` (§2.2).

        ``extra_claims`` are added last, before signing (e.g. ``cnf`` for a
        sender-constrained token, RFC 9449 §6.1).

        ``access`` (given when the ``roles`` scope was granted) is the roles and
        permissions of the user, or of the client when there is no user: they
        become ``roles`` and ``entitlements`` (§2.2.3.1), the permissions limited
        to the client's ``permission_prefixes`` (docs/roles.md). ``jkt`` (a DPoP key's
        thumbprint) binds the token to that key: ``cnf.jkt`` (RFC 9449 §6.1).
        """
        now = int(time.time())
        ttl = ttl or self.settings.access_token_ttl
        subjects: list[Subject] = [("client", client.client_id)]
        if principal is not None:
            subjects.append(("user", principal.user_id))
        not_before = self.revoked.not_before(current_db.get(), subjects)
        if not_before > now:
            # A cutoff made earlier in this second covers the whole second (iat is whole
            # seconds, tokens.cache): wait for the next one rather than issue a token born
            # inactive, or stamped in the future (validators without leeway refuse those).
            # Never on the event loop: the bridge runs the request again in a thread.
            if on_the_loop.get():
                raise NeedsThread
            time.sleep(max(0.0, not_before - time.time()))
            now = max(int(time.time()), not_before)
        aud = client.audience
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": principal.user_id if principal else client.client_id,
            "aud": aud[0] if len(aud) == 1 else aud,
            "exp": now + ttl,
            "iat": now,
            "jti": new_jti(),
            "client_id": client.client_id,
            "scope": scope,
        }
        if principal is not None:
            if principal.auth_time:
                claims["auth_time"] = principal.auth_time
            if principal.amr:
                claims["amr"] = principal.amr
            if principal.acr:
                claims["acr"] = principal.acr
            wanted = (principal.claims or {}).get("userinfo")
            if isinstance(wanted, dict) and wanted:
                # OIDC Core §5.5: remembered for the UserInfo endpoint
                claims["claims_request"] = {"userinfo": {str(k): None for k in list(wanted)[:20]}}
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}
        if access is not None:
            claims["roles"] = list(access.roles)
            claims["entitlements"] = concerning(access.permissions, client.row.permission_prefixes)
        if extra_claims:
            claims.update(extra_claims)
        return self._sign({"typ": "at+jwt"}, claims), claims

    def id_token(self, client: OAuthClient, principal: Principal, *, scope: str,
                 access_token: str | None, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": principal.user_id,
            "aud": client.client_id,
            "azp": client.client_id,
            "exp": now + self.settings.id_token_ttl,
            "iat": now,
            "auth_time": principal.auth_time or now,
        }
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["at_hash"] = half_hash(access_token)
        if principal.sid:
            claims["sid"] = principal.sid
        if principal.amr:
            claims["amr"] = principal.amr
        if principal.acr:
            claims["acr"] = principal.acr
        if principal.claims:  # OIDC Core §5.5; only a code exchange carries a claims request
            claims.update(requested_claims(principal.user, scope, principal.claims, "id_token"))
        return self._sign({"typ": "JWT"}, claims, client.row.id_token_signed_response_alg or RS256)

    def logout_token(self, client_id: str, *, sub: str | None, sid: str | None, jti: str) -> str:
        """A Logout Token (OIDC Back-Channel Logout 1.0 §2.4): ``typ`` ``logout+jwt``,
        ``aud`` the client, the back-channel logout event, ``sub`` and/or ``sid``, a short
        life, and never a ``nonce``."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + LOGOUT_TOKEN_TTL,
            "jti": jti,
            "events": {vocabulary.BACKCHANNEL_LOGOUT_EVENT: {}},
        }
        if sub:
            claims["sub"] = sub
        if sid:
            claims["sid"] = sid
        return self._sign({"typ": vocabulary.LOGOUT_TOKEN_TYPE}, claims)

    def new_refresh_token(self) -> str:
        return new_token(32)

    def verify_access_token(self, token: str) -> dict[str, Any] | None:
        """Claims of a valid, unexpired, unrevoked access token we issued; else None.

        Expiry and revocation are checked on every call; what the signature proved
        (:meth:`_signed_access_token`) is remembered."""
        data = self._signed_access_token(token)
        if data is None:
            return None
        if not isinstance(data.get("exp"), int) or data["exp"] + CLOCK_SKEW < time.time():
            return None
        if self.revoked.is_inactive(current_db.get(), data):
            return None
        return data

    def _signed_access_token(self, token: str) -> dict[str, Any] | None:
        """The claims of an access token with our signature, ``typ`` ``at+jwt`` and our
        issuer (RFC 9068 §4), remembered by the token's text under the published key set
        that verified it. A resource server introspects the same token on every call it
        serves; this check's answer cannot change while the key set stays the same, and
        any change of the set (a rotation, a retired or removed key) starts an empty
        memory. Tokens that fail are never remembered."""
        if not isinstance(token, str):
            return None
        verify_set = self.keys.verify_set
        under, verified = self._verified
        if under is not verify_set:
            verified = {}
            self._verified = (verify_set, verified)
        claims = verified.get(token)
        if claims is None:
            claims = self._decode(token, expect_typ="at+jwt", verify_set=verify_set)
            if claims is None:
                return None
            if len(verified) >= VERIFIED_MAX:
                verified = {}
                self._verified = (verify_set, verified)
            verified[token] = claims
        return dict(claims)  # a copy: a caller never changes what is remembered

    def verify_id_token_hint(self, token: str) -> dict[str, Any] | None:
        """Claims of an ID token we issued; an expired one is accepted as a hint
        (OIDC Core §3.1.2.1, RP-Initiated Logout §2)."""
        return self._decode(token, expect_typ=None, algs=SIGNING_ALGS)

    def _decode(self, token: str, expect_typ: str | None, algs: tuple[str, ...] = (RS256,),
                verify_set: KeySet | None = None) -> dict[str, Any] | None:
        if not isinstance(token, str) or len(token) > 8192 or token.count(".") != 2:
            return None
        keys = self.keys.verify_set if verify_set is None else verify_set
        try:
            if algs == (RS256,):
                decoded = jwt.decode(token, keys, algorithms=["RS256"])
            else:
                decoded = jwt.decode(token, keys, algorithms=list(algs), registry=_ID_TOKEN_REGISTRY)
        except (JoseError, ValueError, TypeError, KeyError):
            return None
        typ = decoded.header.get("typ")
        if expect_typ and (not isinstance(typ, str) or typ.lower() not in (expect_typ, f"application/{expect_typ}")):
            return None
        if expect_typ is None and typ in ("at+jwt", vocabulary.LOGOUT_TOKEN_TYPE):
            return None  # an access or logout token is never an ID token hint
        claims = decoded.claims
        if claims.get("iss") != self.issuer or not isinstance(claims.get("sub"), str):
            return None
        return claims
