"""Raw RS256 sign/verify rate on one core with the server's JOSE library (joserfc),
the ceiling for JWT-issuing grants. Prints one JSON line."""

from __future__ import annotations

import json
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey


def rate(fn, seconds: float = 2.0) -> float:
    fn()
    n, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        fn()
        n += 1
    return n / elapsed


def main() -> None:
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key = RSAKey.import_key(pem, {"kid": "bench", "alg": "RS256"})
    claims = {"iss": "http://127.0.0.1:8765", "sub": "x", "aud": "x", "exp": int(time.time()) + 600,
              "iat": int(time.time()), "jti": "0" * 32, "client_id": "x", "scope": "api:read"}
    header = {"typ": "at+jwt", "alg": "RS256", "kid": "bench"}
    token = jwt.encode(header, claims, key, algorithms=["RS256"])
    sign = rate(lambda: jwt.encode(header, claims, key, algorithms=["RS256"]))
    verify = rate(lambda: jwt.decode(token, key, algorithms=["RS256"]))
    print(json.dumps({"sign_per_s": sign, "verify_per_s": verify}))


if __name__ == "__main__":
    main()
