"""The signature algorithms of this server's keys and of the JWTs it accepts.

* :func:`new_private_pem` and :func:`import_private_pem` make and read the keys of
  each signing algorithm: ``RS256`` (RSA 2048), ``ES256`` (P-256, RFC 7518 §3.4) and
  ``EdDSA`` (Ed25519, RFC 8037 §3.1).
* :func:`jws_registry` is a joserfc registry limited to the given algorithms.
  joserfc warns on every use of ``EdDSA`` because RFC 9864 deprecates the name in
  favour of ``Ed25519``; OpenID Connect and its relying parties still know it as
  ``EdDSA``, so the registry here uses the same algorithm without the warning.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.jwa import EdDSAAlgorithm
from joserfc.jwk import ECKey, KeyParameters, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

RS256: Final = "RS256"
ES256: Final = "ES256"
EDDSA: Final = "EdDSA"
#: every algorithm a signing key can have, RS256 first (the default and the access-token one)
SIGNING_ALGS: Final[tuple[str, ...]] = (RS256, ES256, EDDSA)

AnyKey = RSAKey | ECKey | OKPKey


class _QuietEdDSA(EdDSAAlgorithm):
    security_warning = None  # type: ignore[assignment]


class _Registry(JWSRegistry):
    algorithms = {**JWSRegistry.algorithms, EDDSA: _QuietEdDSA()}


def jws_registry(algorithms: Iterable[str]) -> JWSRegistry:
    """A registry allowing exactly ``algorithms`` (never ``none``: it is not asked for)."""
    return _Registry(algorithms=list(algorithms))


def new_private_pem(alg: str = RS256) -> bytes:
    """A new private key for ``alg``, as unencrypted PKCS#8 PEM."""
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if alg == RS256:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == ES256:
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == EDDSA:
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"unknown signing algorithm {alg}")
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


def import_private_pem(pem: bytes, alg: str, kid: str | None = None, *, trusted: bool = False) -> AnyKey:
    """``trusted``: a key this server sealed itself, checked when it was added and
    authenticated by AES-GCM since, so OpenSSL's RSA consistency check (prime tests,
    ~0.1 s of CPU per key, holding the GIL) is not repeated at every reload, on every node."""
    params: KeyParameters = {"use": "sig", "alg": alg}
    if kid:
        params["kid"] = kid
    if alg == RS256 and trusted:
        private = serialization.load_pem_private_key(pem, None, unsafe_skip_rsa_key_validation=True)
        return RSAKey.import_key(private, params)  # type: ignore[arg-type]
    if alg == RS256:
        return RSAKey.import_key(pem, params)
    if alg == ES256:
        return ECKey.import_key(pem, params)
    if alg == EDDSA:
        return OKPKey.import_key(pem, params)
    raise ValueError(f"unknown signing algorithm {alg}")


def public_jwk(key: AnyKey, alg: str, kid: str) -> dict[str, object]:
    """Public members only (RFC 7517 §4, RFC 7518 §6.2.1 and §6.3.1, RFC 8037 §2), with
    ``use``, ``alg`` and ``kid``."""
    public = key.as_dict(private=False)
    members = {"RSA": ("n", "e"), "EC": ("crv", "x", "y"), "OKP": ("crv", "x")}[str(public["kty"])]
    return {"kty": public["kty"], "use": "sig", "alg": alg, "kid": kid, **{m: public[m] for m in members}}
