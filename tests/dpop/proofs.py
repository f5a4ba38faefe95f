"""Building DPoP proofs (RFC 9449 §4.2) for the tests, good and deliberately broken.

Proofs are signed with joserfc or, for what joserfc refuses to produce (``alg: none``,
a MAC), assembled by hand; the server never sees anything but the compact JWT.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def ath(token: str) -> str:
    return b64(hashlib.sha256(token.encode("ascii")).digest())


class DPoPKey:
    """A client's proof-of-possession key pair."""

    def __init__(self, alg: str = "ES256", *, rsa_bits: int = 2048) -> None:
        self.alg = alg
        if alg in _CURVES:
            self.key: Any = ECKey.generate_key(_CURVES[alg])
        elif alg == "Ed25519":
            self.key = OKPKey.generate_key("Ed25519")
        else:
            self.key = RSAKey.generate_key(rsa_bits)

    @property
    def public_jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False))

    @property
    def jkt(self) -> str:
        return str(self.key.thumbprint())

    def proof(self, htm: str, htu: str, *, token: str | None = None, nonce: str | None = None,
              iat: float | None = None, jti: str | None = None, header: dict[str, Any] | None = None,
              claims: dict[str, Any] | None = None, drop: tuple[str, ...] = (),
              sign_with: DPoPKey | None = None) -> str:
        """A proof for ``htm htu``; ``token`` adds ``ath``. ``header``/``claims`` override
        members, ``drop`` removes claims, ``sign_with`` signs with another key than the
        one named in the header."""
        head: dict[str, Any] = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk, **(header or {})}
        body: dict[str, Any] = {"jti": jti or secrets.token_urlsafe(16), "htm": htm, "htu": htu,
                                "iat": int(time.time()) if iat is None else iat}
        if token is not None:
            body["ath"] = ath(token)
        if nonce is not None:
            body["nonce"] = nonce
        body.update(claims or {})
        for name in drop:
            body.pop(name, None)
        signer = sign_with or self
        registry = JWSRegistry(algorithms=[head["alg"]], strict_check_header=False)
        registry.max_header_length = 8192
        return jws.serialize_compact({k: v for k, v in head.items() if v is not None},
                                     json.dumps(body).encode(), signer.key, registry=registry)


def unsigned(header: dict[str, Any], claims: dict[str, Any], *, mac_key: bytes | None = None) -> str:
    """A compact JWS joserfc would not make: ``alg: none`` (empty signature) or a MAC."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = b"" if mac_key is None else hmac.new(mac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def small_rsa_proof(htu: str, bits: int = 1024) -> str:
    """An RS256 proof with a key below 2048 bits, signed with ``cryptography`` directly
    (joserfc warns about such keys, an error under ``-W error``)."""
    private = rsa.generate_private_key(65537, bits)
    numbers = private.public_key().public_numbers()
    jwk = {"kty": "RSA", "n": b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
           "e": b64(numbers.e.to_bytes(3, "big"))}
    header = {"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk}
    claims = {"jti": secrets.token_urlsafe(8), "htm": "POST", "htu": htu, "iat": int(time.time())}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def rfc7638_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 §3 by hand (required members, lexicographic order, no whitespace), to check
    the server's ``jkt`` independently of joserfc."""
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return b64(hashlib.sha256(canonical.encode()).digest())
