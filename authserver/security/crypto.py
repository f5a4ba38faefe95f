"""Keyed hashes and authenticated encryption derived from ``SECRET_KEY``.

Secrets the server hands out (client secrets, refresh tokens, codes, backup
codes, e-mail codes) are stored only as ``keyed_hash``: HMAC-SHA256 under a key
derived with HKDF, so a stolen table cannot be checked offline without the
server's secret. Values the server must read back (TOTP seeds) are sealed with
AES-256-GCM; the ciphertext names the key id so ``SECRET_KEY`` can rotate
(``AUTHSERVER_PREVIOUS_SECRET_KEYS`` keeps old keys readable).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class DecryptionError(ValueError):
    """The ciphertext is malformed, tampered with, or sealed by an unknown key."""


def _derive(secret: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode())


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random string with ``nbytes`` (default 256 bits) of entropy."""
    return secrets.token_urlsafe(nbytes)


class SecretBox:
    """Hashing and sealing keys derived from the current and previous secret keys."""

    def __init__(self, secret_key: str, previous: tuple[str, ...] = ()) -> None:
        self._hash_key = _derive(secret_key, b"authserver/keyed-hash/v1")
        self._enc_keys: dict[str, bytes] = {}
        for index, key in enumerate((secret_key, *previous)):
            enc = _derive(key, b"authserver/aes-gcm/v1")
            kid = hashlib.sha256(enc).hexdigest()[:8]
            self._enc_keys.setdefault(kid, enc)
            if index == 0:
                self._current_kid = kid

    def keyed_hash(self, value: str) -> str:
        """Hex HMAC-SHA256 of ``value``; deterministic so it can be looked up by index."""
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()

    def verify_hash(self, value: str, expected: str) -> bool:
        return hmac.compare_digest(self.keyed_hash(value), expected)

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> str:
        """Return ``v1.<kid>.<base64url(nonce|ciphertext)>``."""
        nonce = os.urandom(12)
        sealed = AESGCM(self._enc_keys[self._current_kid]).encrypt(nonce, plaintext, associated_data)
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"v1.{self._current_kid}.{body}"

    def decrypt(self, token: str, associated_data: bytes = b"") -> bytes:
        """Open a value from :meth:`encrypt`; raises :class:`DecryptionError`."""
        try:
            version, kid, body = token.split(".", 2)
            key = self._enc_keys[kid]
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            if version != "v1" or len(raw) < 28:
                raise ValueError
            return AESGCM(key).decrypt(raw[:12], raw[12:], associated_data)
        except Exception as exc:  # any malformed or forged value is the same failure
            raise DecryptionError("cannot decrypt value") from exc
