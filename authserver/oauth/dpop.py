"""DPoP (RFC 9449): proof checks, key binding, server nonces and the replay cache.

* :meth:`DPoP.check` runs every check of §4.3 on the ``DPoP`` header of a request
  and returns the proof's key thumbprint (:class:`Proof`), or None when the request
  carried no proof. The token endpoint binds what it issues to that thumbprint
  (``cnf.jkt``, §6.1; a public client's refresh token, §5); the protected resources
  of this server (``/userinfo``, the admin API) check a bound token's proof with
  :func:`check_presented` (§7.1, §7.2).
* Nonces (§8, §9) are stateless, so every node and worker accepts every other's: an
  HMAC of the current time period under a key derived from ``SECRET_KEY``. A nonce
  is accepted during its period and the next (``NONCE_PERIOD`` to twice that). They
  are required only with ``DPOP_REQUIRE_NONCE``.
* A proof's ``jti`` is remembered for as long as the proof could pass the ``iat``
  window (§11.1), per key and target URI: in Redis (``SET NX EX``) when configured,
  else — and while Redis is unreachable — in a bounded in-process table.

Errors are ``invalid_dpop_proof`` / ``use_dpop_nonce``: a 400 JSON body at the token
endpoint (§5, §8, RFC 6749 §5.2), a 401 with a ``WWW-Authenticate: DPoP`` challenge
at a protected resource (§7.1, §9).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import redis
import structlog
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from authserver.errors import AppError, MissingToken
from authserver.oauth import vocabulary
from authserver.oauth.errors import InvalidDPoPProofError, UseDPoPNonceError

if TYPE_CHECKING:
    from authserver.settings import Settings

log = structlog.get_logger("authserver.dpop")

#: seconds a server nonce belongs to; it is accepted during its period and the next
NONCE_PERIOD = 60
#: the in-process replay table keeps at most this many proofs (oldest dropped first)
MAX_REMEMBERED = 100_000
MAX_PROOF_LENGTH = 8192
MAX_JTI_LENGTH = 256
#: RFC 9110 §11.2 token68, the syntax of the ``DPoP`` header (§4.1) and of the credentials
TOKEN68 = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
#: ``alg`` → the ``kty`` (and ``crv``) its key must have (RFC 7518 §3, RFC 9864 §2.2)
KEY_TYPES: dict[str, tuple[str, frozenset[str] | None]] = {
    "ES256": ("EC", frozenset({"P-256"})), "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    **{alg: ("RSA", None) for alg in ("PS256", "PS384", "PS512", "RS256", "RS384", "RS512")},
    "Ed25519": ("OKP", frozenset({"Ed25519"})),  # RFC 9864 (EdDSA with Ed25519, fully specified)
}
#: members that only a private (or symmetric) JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2)
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_CLASSES: dict[str, type[ECKey] | type[RSAKey] | type[OKPKey]] = {"EC": ECKey, "RSA": RSAKey, "OKP": OKPKey}
MIN_RSA_BITS = 2048


def challenge(error: str | None = None, description: str | None = None) -> str:
    """The ``WWW-Authenticate: DPoP`` value of §7.1, with the accepted ``algs``."""
    value = f'DPoP algs="{" ".join(vocabulary.DPOP_SIGNING_ALGS)}"'
    if error:
        value += f', error="{error}"'
        if description:
            value += f', error_description="{description}"'
    return value


class ResourceDPoPError(AppError):
    """A protected resource refusing a DPoP request (§7.1): 401 with a DPoP challenge."""

    status_code = 401
    error = "invalid_dpop_proof"
    hint = "The DPoP proof is invalid."
    json_only = True

    def __init__(self, hint: str | None = None, *, nonce: str | None = None) -> None:
        super().__init__(hint)
        self.headers["WWW-Authenticate"] = challenge(self.error, self.hint)
        if nonce is not None:
            self.headers["DPoP-Nonce"] = nonce


class ResourceNonceError(ResourceDPoPError):
    """§9: the proof lacks the current nonce; ``DPoP-Nonce`` carries one."""

    error = "use_dpop_nonce"
    hint = "A DPoP proof with the server's nonce is required."


class ResourceTokenError(ResourceDPoPError):
    """§7.1, §7.2: the token and the way it was presented do not fit (bound token as
    Bearer, unbound token as DPoP, proof key not the token's)."""

    error = "invalid_token"


@dataclass(frozen=True)
class Proof:
    """A proof that passed every check: the thumbprint of its key (RFC 7638, SHA-256)."""

    jkt: str
    jti: str


def b64url_sha256(value: str) -> str:
    """base64url (no padding) of SHA-256 of the ASCII value: ``ath`` (§4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode("ascii")).digest()).decode().rstrip("=")


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


def _percent(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else f"%{match.group(1).upper()}"


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4."""
    output: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    if path.split("/")[-1] in (".", ".."):
        output.append("")
    return "/" + "/".join(output)


def normalize_uri(uri: str) -> str | None:
    """``uri`` without query and fragment (§4.3 item 9), after syntax- and scheme-based
    normalisation (RFC 3986 §6.2.2, §6.2.3): scheme and host in lower case, the default
    port dropped, percent-encoding normalised, dot segments removed, an empty path ``/``.
    None when it is not an absolute http(s) URI without user information."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or parts.username is not None:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != (80 if scheme == "http" else 443):
        host = f"{host}:{port}"
    path = _remove_dot_segments(_PERCENT.sub(_percent, parts.path or "/"))
    return f"{scheme}://{host}{path}"


class ReplayCache:
    """``jti`` values seen recently: Redis (shared by every worker and node) when there
    is one, else — and while it is unreachable — an in-process table of at most
    :data:`MAX_REMEMBERED` entries, each kept for the same ``ttl``."""

    def __init__(self, client: redis.Redis | None, prefix: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.prefix = prefix + "dpop:jti:"
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self._warned_at: float | None = None

    def first_use(self, key: str, ttl: int) -> bool:
        """Remember ``key`` for ``ttl`` seconds; False when it was already there."""
        if self.client is not None:
            try:
                return bool(self.client.set(self.prefix + key, b"1", nx=True, ex=max(1, ttl)))
            except (redis.ConnectionError, redis.TimeoutError, ConnectionError, TimeoutError) as exc:
                now = self.clock()
                if self._warned_at is None or now - self._warned_at > 60:
                    self._warned_at = now
                    log.warning("redis_unavailable_fallback", what="dpop_replay_cache", error=type(exc).__name__)
        return self._first_use_here(key, ttl)

    def _first_use_here(self, key: str, ttl: int) -> bool:
        now = self.clock()
        with self._lock:
            seen = self._seen
            while seen:  # same ttl for all: insertion order is expiry order
                oldest, expires = next(iter(seen.items()))
                if expires > now and len(seen) < MAX_REMEMBERED:
                    break
                del seen[oldest]
            seen_until = seen.get(key)
            if seen_until is not None and seen_until > now:
                return False
            seen[key] = now + ttl
            return True


class DPoP:
    """The checks of one server; built once per process (``Server.dpop``)."""

    def __init__(self, settings: Settings, client: redis.Redis | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.max_age = settings.dpop_proof_max_age
        self.skew = settings.dpop_clock_skew
        self.require_nonce = settings.dpop_require_nonce
        self.algorithms = vocabulary.DPOP_SIGNING_ALGS
        self.clock = clock
        self.replay = ReplayCache(client, settings.redis_prefix)
        # §4.2: a proof MAY carry other header parameters; crit is still honoured
        self.registry = JWSRegistry(algorithms=list(self.algorithms), strict_check_header=False)
        self.registry.max_header_length = 4096  # the header carries the jwk: an RSA key is longer than 512
        self._nonce_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                               info=b"authserver/dpop-nonce/v1").derive(settings.secret_key.get().encode())

    # -- nonces (§8) --------------------------------------------------------------------

    def _nonce_for(self, period: int) -> str:
        mac = hmac.new(self._nonce_key, str(period).encode(), hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(mac).decode()

    def nonce(self) -> str:
        """The current nonce (§8.1 syntax: base64url characters)."""
        return self._nonce_for(int(self.clock()) // NONCE_PERIOD)

    def _nonce_ok(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        period = int(self.clock()) // NONCE_PERIOD
        return any(hmac.compare_digest(value, self._nonce_for(p)) for p in (period, period - 1))

    def nonce_headers(self) -> list[tuple[str, str]]:
        """``DPoP-Nonce`` for a successful response (§8.2), when nonces are required."""
        return [("DPoP-Nonce", self.nonce())] if self.require_nonce else []

    # -- §4.3 -----------------------------------------------------------------------------

    def check(self, headers: Any, method: str, uri: str, *, access_token: str | None = None,
              resource: bool = False) -> Proof | None:
        """The proof of a request, checked per §4.3; None when the request has no ``DPoP``
        header. Raises :class:`InvalidDPoPProofError` / :class:`UseDPoPNonceError`, or with
        ``resource`` their 401 forms (:class:`ResourceDPoPError`, :class:`ResourceNonceError`).

        ``uri`` is the request's URI as this server is reached (under ``ISSUER``);
        ``access_token`` is given at a protected resource (the ``ath`` check, item 12)."""
        values: Sequence[str] = (headers.getlist("dpop") if hasattr(headers, "getlist")  # Starlette's Headers
                                 else [v for k, v in headers.items() if k.lower() == "dpop"])
        if not values:
            return None
        try:
            return self._check(values, method, uri, access_token)
        except InvalidDPoPProofError as exc:
            if resource:
                raise ResourceDPoPError(exc.description) from None
            raise
        except UseDPoPNonceError as exc:
            if resource:
                raise ResourceNonceError(exc.description, nonce=exc.nonce) from None
            raise

    def _check(self, values: Sequence[str], method: str, uri: str, access_token: str | None) -> Proof:
        def invalid(description: str) -> InvalidDPoPProofError:
            return InvalidDPoPProofError(description)

        if len(values) != 1:  # item 1
            raise invalid("Send exactly one DPoP header.")
        value = values[0].strip()
        if len(value) > MAX_PROOF_LENGTH or not TOKEN68.match(value) or value.count(".") != 2:  # item 2
            raise invalid("The DPoP header is not a JWT.")
        try:
            extracted = jws.extract_compact(value.encode("ascii"), registry=self.registry)
            header = extracted.headers()
            claims = json.loads(extracted.payload)
        except (JoseError, ValueError, TypeError, KeyError, UnicodeDecodeError, RecursionError):
            raise invalid("The DPoP header is not a JWT.") from None
        if not isinstance(claims, dict):
            raise invalid("The DPoP proof's payload is not a JSON object.")
        if header.get("typ") != "dpop+jwt":  # item 4
            raise invalid("The DPoP proof's typ must be dpop+jwt.")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:  # item 5
            raise invalid(f"The DPoP proof's alg must be one of {' '.join(self.algorithms)}.")
        key, jkt = self._key(header.get("jwk"), alg)  # items 6 (key), 7
        try:  # item 6
            verified = jws.deserialize_compact(value.encode("ascii"), key, registry=self.registry)
        except (JoseError, ValueError, TypeError):
            raise invalid("The DPoP proof's signature does not verify with its jwk.") from None
        if verified.payload != extracted.payload:  # pragma: no cover - same bytes, defensive
            raise invalid("The DPoP proof's signature does not verify with its jwk.")
        jti, htm, htu, iat = (claims.get(name) for name in ("jti", "htm", "htu", "iat"))
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:  # item 3
            raise invalid("The DPoP proof needs a jti (a string of at most 256 characters).")
        if not isinstance(htm, str) or not isinstance(htu, str):
            raise invalid("The DPoP proof needs htm and htu.")
        if isinstance(iat, bool) or not isinstance(iat, int | float):
            raise invalid("The DPoP proof needs iat (a NumericDate).")
        if htm != method:  # item 8
            raise invalid(f"The DPoP proof's htm does not match the request method {method}.")
        expected = normalize_uri(uri)
        if expected is None or normalize_uri(htu) != expected:  # item 9
            raise invalid("The DPoP proof's htu does not match the request URI.")
        if access_token is not None:  # item 12 (the key binding: check_presented)
            ath = claims.get("ath")
            if not isinstance(ath, str) or not hmac.compare_digest(ath, b64url_sha256(access_token)):
                raise invalid("The DPoP proof's ath does not match the access token.")
        if self.require_nonce and not self._nonce_ok(claims.get("nonce")):  # item 10
            raise UseDPoPNonceError("A DPoP proof with the server's nonce is required.", self.nonce())
        now = self.clock()
        if iat < now - self.max_age:  # item 11
            raise invalid("The DPoP proof is too old (iat).")
        if iat > now + self.skew:
            raise invalid("The DPoP proof's iat is in the future.")
        replay_key = hashlib.sha256(f"{jkt}\x00{expected}\x00{jti}".encode()).hexdigest()
        if not self.replay.first_use(replay_key, self.max_age + self.skew):  # §11.1
            raise invalid("The DPoP proof was already used (jti).")
        return Proof(jkt, jti)

    def _key(self, jwk: object, alg: str) -> tuple[Any, str]:
        """The proof's public key and its RFC 7638 SHA-256 thumbprint."""
        if not isinstance(jwk, Mapping) or not isinstance(jwk.get("kty"), str):
            raise InvalidDPoPProofError("The DPoP proof's header needs a jwk (a public JSON Web Key).")
        if PRIVATE_MEMBERS & set(jwk):
            raise InvalidDPoPProofError("The DPoP proof's jwk must not contain a private key.")
        kty, curves = KEY_TYPES[alg]
        if jwk["kty"] != kty or (curves is not None and jwk.get("crv") not in curves):
            raise InvalidDPoPProofError(f"The DPoP proof's jwk is not a key for {alg}.")
        if kty == "RSA" and _modulus_bits(jwk.get("n")) < MIN_RSA_BITS:  # before joserfc warns about it
            raise InvalidDPoPProofError(f"The DPoP proof's RSA key must have at least {MIN_RSA_BITS} bits.")
        try:
            key = _KEY_CLASSES[kty].import_key(dict(jwk))
        except (JoseError, ValueError, TypeError, KeyError):
            raise InvalidDPoPProofError("The DPoP proof's jwk is not a valid key.") from None
        if key.is_private:  # pragma: no cover - refused above by its members
            raise InvalidDPoPProofError("The DPoP proof's jwk must not contain a private key.")
        return key, key.thumbprint()


def _modulus_bits(n: object) -> int:
    """Bits of an RSA JWK's ``n`` (base64url, RFC 7518 §6.3.1.1); 0 when it is not that."""
    if not isinstance(n, str) or len(n) > 2000:
        return 0
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except ValueError:
        return 0
    return int.from_bytes(raw, "big").bit_length()


# -- protected resources (§7) --------------------------------------------------------------


@dataclass(frozen=True)
class Presented:
    """An access token as a protected resource received it: ``scheme`` ``bearer`` or
    ``dpop`` (§7.1), with what the proof check needs."""

    scheme: str
    token: str
    headers: Any
    method: str
    uri: str


def presented(authorization: str | None, headers: Any, method: str, uri: str) -> Presented:
    """The token of an ``Authorization: Bearer`` (RFC 6750 §2.1) or ``Authorization: DPoP``
    (RFC 9449 §7.1) header; raises :class:`MissingToken` when there is neither."""
    scheme, _, token = (authorization or "").partition(" ")
    token, scheme = token.strip(), scheme.lower()
    if scheme not in ("bearer", "dpop") or not token:
        raise MissingToken
    return Presented(scheme, token, headers, method, uri)


def check_presented(dpop: DPoP, claims: Mapping[str, Any], request: Presented) -> None:
    """§7.1, §7.2: a bound token (``cnf.jkt``) only with the DPoP scheme and a proof of its
    key carrying ``ath``; an unbound token only as Bearer. Raises a 401 with a DPoP
    challenge otherwise."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
    if request.scheme == "bearer":
        if jkt is not None:
            raise ResourceTokenError(
                "This access token is bound to a DPoP key: send it with Authorization: DPoP and a proof.")
        return
    if jkt is None:
        raise ResourceTokenError("This access token is not DPoP-bound: send it with Authorization: Bearer.")
    proof = dpop.check(request.headers, request.method, request.uri, access_token=request.token,
                       resource=True)
    if proof is None:
        raise ResourceDPoPError("A DPoP proof is required with Authorization: DPoP.")
    if not hmac.compare_digest(proof.jkt, str(jkt)):
        raise ResourceTokenError("Invalid DPoP key binding: the proof's key is not the token's.")
