"""Signing keys kept in the database, shared by every node.

Each key is a ``signing_keys`` row: the ``kid`` (RFC 7638 thumbprint, so two
keys never share one), its ``alg`` (``RS256``, ``ES256`` or ``EdDSA``:
``keys.algorithms``), the private key sealed with AES-256-GCM under
``SECRET_KEY`` (``keys.models``), ``created_at`` and ``activates_at``. Life of
a key:

* **pending** — published in the JWKS but not yet used, until ``activates_at``
  (set at least the JWKS ``Cache-Control`` max-age ahead, so caching clients
  learn it before it signs);
* **active** — the newest key whose ``activates_at`` has passed: signs everything;
* **published** — superseded, still in the JWKS until every token it signed has
  expired (the longest token lifetime plus a minute of clock skew);
* **retired** — no longer published or accepted; maintenance deletes its row.

Each algorithm has its own chain of keys with these states; a rotation adds a key
for every algorithm with the same activation time, so the chains move together.
Access tokens are always signed with the active ``RS256`` key; an ID token with the
active key of its client's ``id_token_signed_response_alg``.

Every process keeps the decrypted keys in memory and reloads them when the
``signing_keys`` counter in ``cluster_state`` moves (polled at most once a
second), so every node publishes and signs with the same set within 1 s of a
change. Only one process at a time adds a key (:func:`exclusive`: a Postgres
advisory lock, SQLite's ``BEGIN IMMEDIATE`` write lock), and it re-reads the
table under the lock, so racing nodes add one key, not several.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy.orm import Session, sessionmaker

from authserver.audit import service as audit
from authserver.db import on_commit, transaction
from authserver.errors import AppError
from authserver.keys.algorithms import RS256, SIGNING_ALGS, AnyKey, import_private_pem, public_jwk
from authserver.keys.algorithms import new_private_pem as new_private_pem  # re-exported (tests, imports)
from authserver.keys.models import StoredKey
from authserver.maintenance import state
from authserver.maintenance.state import ChangeWatcher
from authserver.security.crypto import DecryptionError, SecretBox
from authserver.settings import check_private_file

CLOCK_SKEW = 60
KEYS_LOCK = 7_261_845_204
"""pg_advisory_xact_lock key: one key change (first key, rotation, import) at a time."""


class KeyError_(AppError):
    """No usable signing key, or a stored or imported key cannot be read."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: AnyKey
    created_at: int
    activates_at: int
    status: str = "pending"
    retires_at: int | None = None
    alg: str = RS256


@dataclass(frozen=True)
class _Published:
    """What the server signs with and publishes at one moment."""

    active: SigningKey
    #: the active key of each algorithm
    active_by_alg: dict[str, SigningKey]
    signing_set: KeySet
    verify_set: KeySet
    jwks: dict[str, object]
    jwks_bytes: bytes


def exclusive(db: Session, lock: int = KEYS_LOCK) -> None:
    """Hold ``lock`` until ``db``'s transaction ends: Postgres advisory lock; on SQLite
    the transaction already holds the database's write lock (``BEGIN IMMEDIATE``)."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
    else:
        db.connection()  # begins the transaction, taking the write lock


def _epoch(value: dt.datetime) -> int:
    return int(value.timestamp())


def _when(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.UTC)


def _import_pem(pem: bytes, kid: str) -> RSAKey:
    return RSAKey.import_key(pem, {"kid": kid, "use": "sig", "alg": RS256})


def read_key_files(directory: Path) -> list[tuple[str, bytes, int, int]]:
    """``(kid, pem, created_at, activates_at)`` of each ``<kid>.pem`` + ``<kid>.json``
    pair in ``directory`` (the layout of versions that kept keys as files)."""
    found = []
    for meta_path in sorted(directory.glob("*.json")):
        pem_path = meta_path.with_suffix(".pem")
        if not pem_path.exists():
            continue
        check_private_file(pem_path)
        try:
            meta = json.loads(meta_path.read_text())
            pem = pem_path.read_bytes()
            kid = str(meta["kid"])
            _import_pem(pem, kid)
            found.append((kid, pem, int(meta["created_at"]), int(meta["activates_at"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyError_(f"{meta_path.name}: not a key file of authserver ({type(exc).__name__})") from None
    return found


class KeyStore:
    """Loads, adds, rotates and publishes the signing keys of the ``signing_keys`` table."""

    def __init__(self, sessions: sessionmaker[Session], box: SecretBox, changes: ChangeWatcher, *,
                 keys_dir: Path, activation_delay: int, retain_seconds: int,
                 rotation_interval: int = 0, jwks_max_age: int = 0) -> None:
        self._sessions = sessions
        self._box = box
        self._changes = changes
        self.keys_dir = keys_dir
        self.activation_delay = activation_delay
        self.retain_seconds = retain_seconds + CLOCK_SKEW
        self.rotation_interval = rotation_interval
        self.jwks_max_age = jwks_max_age
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._keys: list[SigningKey] = []
        self._state_at = 0
        self._cache: _Published | None = None

    # -- storage -------------------------------------------------------------

    def _unseal(self, row: StoredKey) -> SigningKey:
        try:
            pem = self._box.decrypt(row.sealed_private_key, row.kid.encode())
        except DecryptionError:
            raise KeyError_(
                f"signing key {row.kid} is sealed under another SECRET_KEY; "
                "list the old one in AUTHSERVER_PREVIOUS_SECRET_KEYS") from None
        alg = row.alg or RS256
        return SigningKey(row.kid, import_private_pem(pem, alg, row.kid, trusted=True), _epoch(row.created_at),
                          _epoch(row.activates_at), alg=alg)

    def _load(self, db: Session) -> list[SigningKey]:
        rows = db.scalars(sa.select(StoredKey))
        return sorted((self._unseal(r) for r in rows), key=lambda k: (k.activates_at, k.created_at))

    def _add(self, db: Session, pem: bytes, *, kid: str | None = None, created_at: int | None = None,
             activates_at: int, alg: str = RS256) -> SigningKey:
        kid = kid or import_private_pem(pem, alg).thumbprint()
        created = int(time.time()) if created_at is None else created_at
        db.add(StoredKey(kid=kid, alg=alg, sealed_private_key=self._box.encrypt(pem, kid.encode()),
                         created_at=_when(created), activates_at=_when(activates_at)))
        db.flush()
        self._changed(db)
        return SigningKey(kid, import_private_pem(pem, alg, kid), created, activates_at, alg=alg)

    def _changed(self, db: Session) -> None:
        state.bump(db, state.SIGNING_KEYS)

        def reload_here() -> None:  # this process at once, the others within a second
            self._generation = None

        on_commit(db, reload_here)

    def _refresh(self) -> None:
        """Reload when the ``signing_keys`` counter moved (checked at most once a second)."""
        generation = self._changes.current().get(state.SIGNING_KEYS, 0)
        if generation == self._generation and self._keys:
            return
        with self._lock:
            if generation == self._generation and self._keys:
                return
            with (self._changes.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
                  Session(bind=conn) as db):
                keys = self._load(db)
            self._keys = keys
            self._generation = generation
            self._cache = None

    # -- state -------------------------------------------------------------

    def keys(self, now: int | None = None, alg: str | None = None) -> list[SigningKey]:
        """Every stored key (of ``alg``, or of every algorithm) with its status at ``now``."""
        self._refresh()
        keys = self._statuses(self._keys, int(time.time()) if now is None else now)
        return [k for k in keys if alg is None or k.alg == alg]

    def _statuses(self, stored: list[SigningKey], now: int) -> list[SigningKey]:
        """Statuses of each algorithm's chain, every chain on its own; in ``stored`` order."""
        result: dict[str, SigningKey] = {}
        for alg in dict.fromkeys(k.alg for k in stored):
            for key in self._chain_statuses([k for k in stored if k.alg == alg], now):
                result[key.kid] = key
        return [result[k.kid] for k in stored]

    def _chain_statuses(self, stored: list[SigningKey], now: int) -> list[SigningKey]:
        started = [k for k in stored if k.activates_at <= now]
        active = started[-1] if started else (stored[0] if stored else None)
        result = []
        for index, key in enumerate(stored):
            if key is active:
                result.append(SigningKey(key.kid, key.key, key.created_at, key.activates_at, "active",
                                         alg=key.alg))
            elif key.activates_at > now and (active is None or key.activates_at > active.activates_at):
                result.append(SigningKey(key.kid, key.key, key.created_at, key.activates_at, "pending",
                                         alg=key.alg))
            else:
                successor = stored[index + 1]
                retires_at = successor.activates_at + self.retain_seconds
                status = "published" if now < retires_at else "retired"
                result.append(
                    SigningKey(key.kid, key.key, key.created_at, key.activates_at, status, retires_at, key.alg)
                )
        return result

    def _state(self) -> _Published:
        """Cached signing key, key sets and JWKS body; rebuilt when a status changes."""
        self._refresh()
        now = int(time.time())
        if self._cache is not None and now < self._state_at:
            return self._cache
        keys = self.keys(now)
        active_by_alg = {k.alg: k for k in keys if k.status == "active"}
        active = active_by_alg.get(RS256)
        if active is None:
            raise KeyError_("no signing key in the database; run `authserver keys rotate`")
        published = [k for k in keys if k.status != "retired"]
        jwks: dict[str, object] = {"keys": [public_jwk(k.key, k.alg, k.kid) for k in published]}
        # next instant a status can change: a pending key activating or a key retiring
        changes = [k.activates_at for k in keys if k.activates_at > now]
        changes += [k.retires_at for k in keys if k.retires_at and k.retires_at > now]
        cache = _Published(
            active=active,
            active_by_alg=active_by_alg,
            signing_set=KeySet([active.key]),
            verify_set=KeySet([k.key for k in published]),
            jwks=jwks,
            jwks_bytes=json.dumps(jwks, separators=(",", ":")).encode(),
        )
        self._cache = cache
        self._state_at = min(changes) if changes else now + 3600
        return cache

    # -- changes (each under the keys lock) ---------------------------------

    def ensure_key(self) -> None:
        """Make sure every algorithm has a key: on an empty table, import the key files
        of ``KEYS_DIR`` (earlier versions kept RS256 keys there; their ``kid``s stay) or
        generate the first RS256 key, active at once; an algorithm without a key (a
        database from before ES256 and EdDSA) gets one, active at once: nothing was
        signed with that algorithm yet, so no verifier can be waiting for it."""
        with transaction(self._sessions) as db:
            exclusive(db)
            present = set(db.scalars(sa.select(StoredKey.alg).distinct()))
            if not present:
                files = read_key_files(self.keys_dir) if self.keys_dir.is_dir() else []
                for kid, pem, created_at, activates_at in files:
                    self._add(db, pem, kid=kid, created_at=created_at, activates_at=activates_at)
                if files:
                    present.add(RS256)
            for alg in SIGNING_ALGS:
                if alg not in present:
                    self._add(db, new_private_pem(alg), activates_at=int(time.time()), alg=alg)

    def import_dir(self, directory: Path, db: Session | None = None) -> list[str]:
        """Import the key files of ``directory``, keeping their ``kid``s and times;
        keys already stored are skipped. Returns the imported ``kid``s."""
        files = read_key_files(directory)
        if db is None:
            with transaction(self._sessions) as own:
                return self.import_dir(directory, own)
        exclusive(db)
        known = set(db.scalars(sa.select(StoredKey.kid)))
        return [self._add(db, pem, kid=kid, created_at=created, activates_at=activates).kid
                for kid, pem, created, activates in files if kid not in known]

    def rotate(self, delay: int | None = None, db: Session | None = None) -> SigningKey:
        """Add a key of every algorithm, published now and used for signing after ``delay``
        seconds (default: the activation delay, at least the JWKS max-age). Returns the
        RS256 one; :meth:`keys` lists them all."""
        return self.rotate_all(delay, db)[0]

    def rotate_all(self, delay: int | None = None, db: Session | None = None) -> list[SigningKey]:
        """:meth:`rotate`, returning the new key of each algorithm (RS256 first)."""
        delay = self.publish_delay if delay is None else delay
        if db is None:
            with transaction(self._sessions) as own:
                return self.rotate_all(delay, own)
        exclusive(db)
        newest = max((k.activates_at for k in self._load(db)), default=0)
        # strictly after the newest key, or a same-second rotation could leave the old key active
        activates_at = max(int(time.time()) + delay, newest + 1)
        return [self._add(db, new_private_pem(alg), activates_at=activates_at, alg=alg) for alg in SIGNING_ALGS]

    @property
    def publish_delay(self) -> int:
        return max(self.activation_delay, self.jwks_max_age)

    def rotate_if_due_all(self, db: Session, now: int | None = None) -> list[SigningKey]:
        """Staged rotation: when the active key has signed for ``rotation_interval``
        less the publish delay and no key is pending, add a key of every algorithm that
        signs from the end of the interval (published at least the JWKS max-age before);
        returns them, or nothing when not due or turned off (interval 0). The RS256 chain
        decides for all (they rotate together). Racing processes add one set: the check
        runs under the keys lock, on the table as it is then."""
        if self.rotation_interval <= 0:
            return []
        exclusive(db)
        now = int(time.time()) if now is None else now
        keys = [k for k in self._statuses(self._load(db), now) if k.alg == RS256]  # the chains move together
        if any(k.status == "pending" for k in keys):
            return []
        active = next((k for k in keys if k.status == "active"), None)
        if active is not None and now < active.activates_at + self.rotation_interval - self.publish_delay:
            return []
        return self.rotate_all(delay=self.publish_delay, db=db)

    def rotate_if_due(self, db: Session, now: int | None = None) -> SigningKey | None:
        """:meth:`rotate_if_due_all`, returning the new RS256 key (None when not due)."""
        added = self.rotate_if_due_all(db, now)
        return added[0] if added else None

    def remove_retired(self, db: Session | None = None) -> list[str]:
        """Delete the rows of retired keys; returns their ``kid``s."""
        if db is None:
            with transaction(self._sessions) as own:
                return self.remove_retired(own)
        exclusive(db)
        retired = [k.kid for k in self._statuses(self._load(db), int(time.time())) if k.status == "retired"]
        if retired:
            db.execute(sa.delete(StoredKey).where(StoredKey.kid.in_(retired)))
            self._changed(db)
        return retired

    # -- public API --------------------------------------------------------

    @property
    def active(self) -> SigningKey:
        return self._state().active

    def active_for(self, alg: str) -> SigningKey:
        """The active key of ``alg``."""
        key = self._state().active_by_alg.get(alg)
        if key is None:
            raise KeyError_(f"no active {alg} signing key; run `authserver keys rotate`")
        return key

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
        """Raise ``SettingsError`` when a key file left in ``KEYS_DIR`` is readable by others."""
        if self.keys_dir.is_dir():
            for pem in self.keys_dir.glob("*.pem"):
                check_private_file(pem)


def rotate(db: Session, store: KeyStore, *, delay: int | None, actor: str) -> SigningKey:
    """Add a signing key of every algorithm (see :meth:`KeyStore.rotate`) and audit each, in
    ``db``'s transaction; returns the RS256 one."""
    added = store.rotate_all(delay=delay, db=db)
    for key in added:
        audit.record(db, "key_rotated", kid=key.kid, alg=key.alg, activates_at=key.activates_at, actor=actor)
    return added[0]


def import_dir(db: Session, store: KeyStore, directory: Path, *, actor: str) -> list[str]:
    """Import a directory's key files (see :meth:`KeyStore.import_dir`) and audit each."""
    kids = store.import_dir(directory, db)
    for kid in kids:
        audit.record(db, "key_imported", kid=kid, actor=actor)
    return kids
