"""A software authenticator for tests: real P-256 keys (``cryptography``), real CBOR
attestation objects (format ``none``) and real signed assertions, built the way
WebAuthn Level 2 §6.1 (authenticator data), §6.5.4 (attestation object) and §6.3.3
(assertion signature over ``authenticatorData || SHA-256(clientDataJSON)``) say.

Nothing of py_webauthn is replaced: the server verifies these responses with it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64(data: bytes) -> str:
    return bytes_to_base64url(data)


@dataclass
class Credential:
    """One key pair held by the authenticator, for one RP and one user handle."""

    rp_id: str
    user_handle: bytes
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    count: int = 0

    def cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})


@dataclass
class Authenticator:
    """``uv``: the authenticator verifies its user; ``counter``: it keeps a signature counter
    (synced passkeys often send 0 always)."""

    origin: str
    uv: bool = True
    counter: bool = True
    credentials: list[Credential] = field(default_factory=list)

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}).encode()

    def _flags(self, extra: int = 0, uv: bool | None = None) -> int:
        return UP | (UV if (self.uv if uv is None else uv) else 0) | extra

    def create(self, options: dict[str, Any], *, origin: str | None = None, rp_id: str | None = None) -> str:
        """Answer ``PublicKeyCredentialCreationOptions`` (as the server sent them) with a
        registration response JSON, like ``navigator.credentials.create`` would."""
        public = options.get("publicKey", options)
        rp = rp_id or public["rp"]["id"]
        cred = Credential(rp, base64url_to_bytes(public["user"]["id"]))
        self.credentials.append(cred)
        attested = (b"\x00" * 16 + struct.pack(">H", len(cred.id)) + cred.id + cred.cose_key())
        auth_data = (hashlib.sha256(rp.encode()).digest() + bytes([self._flags(AT)])
                     + struct.pack(">I", cred.count) + attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", public["challenge"], origin)
        return json.dumps({"id": b64(cred.id), "rawId": b64(cred.id), "type": "public-key",
                           "response": {"clientDataJSON": b64(client_data),
                                        "attestationObject": b64(attestation), "transports": ["internal"]},
                           "clientExtensionResults": {}})

    def get(self, options: dict[str, Any], *, credential: Credential | None = None, origin: str | None = None,
            count: int | None = None, uv: bool | None = None, user_handle: bytes | bool | None = True,
            rp_id: str | None = None) -> str:
        """Answer ``PublicKeyCredentialRequestOptions`` with a signed assertion JSON.
        ``count`` forces the counter sent (a clone); ``user_handle=False`` leaves it out."""
        public = options.get("publicKey", options)
        allowed = {d["id"] for d in public.get("allowCredentials") or []}
        cred = credential or next(c for c in self.credentials if not allowed or b64(c.id) in allowed)
        if count is None:
            if self.counter:
                cred.count += 1
            count = cred.count
        rp = rp_id or public["rpId"]
        auth_data = hashlib.sha256(rp.encode()).digest() + bytes([self._flags(uv=uv)]) + struct.pack(">I", count)
        client_data = self._client_data("webauthn.get", public["challenge"], origin)
        signature = cred.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        handle = cred.user_handle if user_handle is True else (user_handle or None)
        response: dict[str, Any] = {"clientDataJSON": b64(client_data), "authenticatorData": b64(auth_data),
                                    "signature": b64(signature)}
        if handle:
            response["userHandle"] = b64(handle)
        return json.dumps({"id": b64(cred.id), "rawId": b64(cred.id), "type": "public-key",
                           "response": response, "clientExtensionResults": {}})
