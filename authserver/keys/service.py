"""RS256 signing keys kept as files in ``KEYS_DIR`` (a mounted secret in production).

Each key is ``<kid>.pem`` (PKCS#8, mode 0600) plus ``<kid>.json`` holding its
``created_at`` and ``activates_at``. The ``kid`` is the RFC 7638 thumbprint, so
two keys never share one. Life of a key:

* **pending** — published in the JWKS but not yet used, until ``activates_at``
  (``keys rotate`` sets it ``KEY_ACTIVATION_DELAY`` ahead, longer than the JWKS
  ``Cache-Control`` max-age, so caching clients learn it before it signs);
* **active** — the newest key whose ``activates_at`` has passed: signs everything;
* **published** — superseded, still in the JWKS until every token it signed has
  expired (the longest token lifetime plus a minute of clock skew);
* **retired** — no longer published or accepted; ``cleanup`` deletes its files.

Every worker reads the same directory and re-reads it when it changes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy.orm import Session

from authserver.audit import service as audit
from authserver.errors import AppError
from authserver.settings import check_private_file

CLOCK_SKEW = 60


class KeyError_(AppError):
    """The key directory holds no usable key, or a key file is unreadable."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: RSAKey
    created_at: int
    activates_at: int
    status: str = "pending"
    retires_at: int | None = None


@dataclass(frozen=True)
class _Published:
    """What the server signs with and publishes at one moment."""

    active: SigningKey
    signing_set: KeySet
    verify_set: KeySet
    jwks: dict[str, object]
    jwks_bytes: bytes


class KeyStore:
    """Loads, generates, rotates and publishes the signing keys of ``keys_dir``."""

    def __init__(self, keys_dir: Path, *, activation_delay: int, retain_seconds: int) -> None:
        self.keys_dir = keys_dir
        self.activation_delay = activation_delay
        self.retain_seconds = retain_seconds + CLOCK_SKEW
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._keys: list[SigningKey] = []
        self._checked_at = 0.0
        self._state_at = 0
        self._cache: _Published | None = None

    # -- files -------------------------------------------------------------

    def _scan(self) -> list[SigningKey]:
        keys = []
        for meta_path in sorted(self.keys_dir.glob("*.json")):
            pem_path = meta_path.with_suffix(".pem")
            if not pem_path.exists():
                continue
            check_private_file(pem_path)
            meta = json.loads(meta_path.read_text())
            key = RSAKey.import_key(pem_path.read_bytes(), {"kid": meta["kid"], "use": "sig", "alg": "RS256"})
            keys.append(SigningKey(meta["kid"], key, int(meta["created_at"]), int(meta["activates_at"])))
        return sorted(keys, key=lambda k: (k.activates_at, k.created_at))

    def _write(self, activates_at: int) -> SigningKey:
        self.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        kid = RSAKey.import_key(pem).thumbprint()
        now = int(time.time())
        pem_path = self.keys_dir / f"{kid}.pem"
        fd = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        meta = {"kid": kid, "alg": "RS256", "created_at": now, "activates_at": activates_at}
        # metadata last: a key is only seen once both files exist
        tmp = self.keys_dir / f".{kid}.json.tmp"
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        tmp.replace(self.keys_dir / f"{kid}.json")
        self._stamp = None
        return SigningKey(kid, RSAKey.import_key(pem, {"kid": kid}), now, activates_at)

    # -- state -------------------------------------------------------------

    def _refresh(self) -> None:
        """Re-read the directory when it changed (checked at most once a second)."""
        now = time.monotonic()
        if self._stamp is not None and now - self._checked_at < 1.0:
            return
        with self._lock:
            try:
                st = self.keys_dir.stat()
                stamp = (st.st_mtime, st.st_ino)
            except FileNotFoundError:
                stamp = (0.0, 0)
            self._checked_at = now
            if stamp != self._stamp:
                self._keys = self._scan()
                self._stamp = stamp
                self._cache = None

    def keys(self, now: int | None = None) -> list[SigningKey]:
        """Every key on disk with its status at ``now``."""
        self._refresh()
        now = int(time.time()) if now is None else now
        started = [k for k in self._keys if k.activates_at <= now]
        active = started[-1] if started else (self._keys[0] if self._keys else None)
        result = []
        for index, key in enumerate(self._keys):
            if key is active:
                result.append(SigningKey(key.kid, key.key, key.created_at, key.activates_at, "active"))
            elif key.activates_at > now and (active is None or key.activates_at > active.activates_at):
                result.append(SigningKey(key.kid, key.key, key.created_at, key.activates_at, "pending"))
            else:
                successor = self._keys[index + 1]
                retires_at = successor.activates_at + self.retain_seconds
                status = "published" if now < retires_at else "retired"
                result.append(
                    SigningKey(key.kid, key.key, key.created_at, key.activates_at, status, retires_at)
                )
        return result

    def _state(self) -> _Published:
        """Cached signing key, key sets and JWKS body; rebuilt when a status changes."""
        self._refresh()
        now = int(time.time())
        if self._cache is not None and now < self._state_at:
            return self._cache
        keys = self.keys(now)
        active = next((k for k in keys if k.status == "active"), None)
        if active is None:
            raise KeyError_("no signing key in AUTHSERVER_KEYS_DIR; run `authserver keys rotate`")
        published = [k for k in keys if k.status != "retired"]
        jwks: dict[str, object] = {"keys": [_public_jwk(k) for k in published]}
        # next instant a status can change: a pending key activating or a key retiring
        changes = [k.activates_at for k in keys if k.activates_at > now]
        changes += [k.retires_at for k in keys if k.retires_at and k.retires_at > now]
        cache = _Published(
            active=active,
            signing_set=KeySet([active.key]),
            verify_set=KeySet([k.key for k in published]),
            jwks=jwks,
            jwks_bytes=json.dumps(jwks, separators=(",", ":")).encode(),
        )
        self._cache = cache
        self._state_at = min(changes) if changes else now + 3600
        return cache

    # -- public API --------------------------------------------------------

    def ensure_key(self) -> None:
        """Generate the first key (active at once) when the directory has none."""
        self._refresh()
        if not self._keys:
            self._write(activates_at=int(time.time()))
            self._stamp = None

    def rotate(self, delay: int | None = None) -> SigningKey:
        """Add a key published now and used for signing after ``delay`` seconds."""
        delay = self.activation_delay if delay is None else delay
        self._refresh()
        newest = max((k.activates_at for k in self._keys), default=0)
        # strictly after the newest key, or a same-second rotation could leave the old key active
        key = self._write(activates_at=max(int(time.time()) + delay, newest + 1))
        self._stamp = None
        return key

    def remove_retired(self) -> list[str]:
        removed = []
        for key in self.keys():
            if key.status == "retired":
                for suffix in (".pem", ".json"):
                    (self.keys_dir / f"{key.kid}{suffix}").unlink(missing_ok=True)
                removed.append(key.kid)
        self._stamp = None
        return removed

    @property
    def active(self) -> SigningKey:
        return self._state().active

    @property
    def signing_set(self) -> KeySet:
        """A ``KeySet`` holding only the active key (joserfc picks one key of a set at random)."""
        return self._state().signing_set

    @property
    def verify_set(self) -> KeySet:
        """Every published key: what our own token checks accept."""
        return self._state().verify_set

    @property
    def jwks(self) -> dict[str, object]:
        return self._state().jwks

    @property
    def jwks_bytes(self) -> bytes:
        return self._state().jwks_bytes

    def check_permissions(self) -> None:
        """Raise ``SettingsError`` when a private key file is readable by others."""
        for pem in self.keys_dir.glob("*.pem"):
            check_private_file(pem)


def _public_jwk(key: SigningKey) -> dict[str, object]:
    """Public members only (RFC 7517 §4, RFC 7518 §6.3.1)."""
    public = key.key.as_dict(private=False)
    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": key.kid, "n": public["n"], "e": public["e"]}


def rotate(db: Session, store: KeyStore, *, delay: int | None, actor: str) -> SigningKey:
    """Add a signing key (see :meth:`KeyStore.rotate`) and audit it with ``db``'s transaction."""
    # The database is checked before the key is written, so a broken one leaves no unaudited key.
    db.connection()
    key = store.rotate(delay=delay)
    audit.record(db, "key_rotated", kid=key.kid, activates_at=key.activates_at, actor=actor)
    return key
