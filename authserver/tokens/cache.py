"""The hot-path view of revoked access tokens and subject cutoffs.

The database is the record (``RevokedToken``, ``TokenCutoff``); these caches
answer introspection and userinfo without a query for an active token:

* :class:`RedisTokenState` (``REDIS_URL`` set) — one ``MGET`` per check, of the
  token's ``jti`` and its user's and client's cutoffs. A missing key is read
  from the database and stored with ``SET NX`` (``NEGATIVE_TTL`` when nothing is
  recorded). Writers ``SET`` (overwrite) before their transaction commits, so
  a concurrent miss can never store a stale "not revoked" over them: every
  node sees a revocation at once. A Redis flush or restart only empties the
  cache. If Redis cannot be reached, checks read the database; if a writer
  could not reach Redis while readers could, a stale "not revoked" entry lives
  at most ``NEGATIVE_TTL`` seconds.
* :class:`LocalTokenState` (no Redis) — per process: the cutoffs in full and a
  per-``jti`` answer cache, both dropped when the ``revocations`` counter in
  ``cluster_state`` moves, polled at most once a second
  (``maintenance.state.ChangeWatcher``). Another process's revocation is
  seen within 1 s; this process's own at once (noted after commit).

A token whose ``iat`` is before its subject's cutoff is inactive. ``iat`` is
whole seconds, so a cutoff made at t is stored as ``floor(t) + 1``: tokens
issued earlier in the same second are caught. A token for that subject asked
for later in the same second (a login right after a password change, or right
after ``users enable``) should not be caught by mistake: the issuer asks
:meth:`TokenState.not_before` and waits for the next second before signing (at
most one second, only in that case). That answer comes from the same cache as
the checks, never a database query per issuance, and on both backends it is
exact for this process's own cutoffs and at most 1 s late for another
process's: with Redis the issuer reuses a subject's cutoff as one ``MGET`` read
it for :data:`ISSUER_REUSE` seconds (a round trip per token was about a quarter
of a ``client_credentials`` token's CPU; docs/performance.md), and this process's
own cutoffs are noted at once; without Redis it reads the polled cutoffs. A
late answer can only make a token *born inactive* (its ``iat`` is before a
cutoff the issuer did not see yet): revocation is never weakened, and the case
needs a cutoff and an issuance for the same subject, in the same wall-clock
second, on two processes (docs/decisions.md). Checks (introspection, userinfo)
never reuse an answer: with Redis each is one ``MGET``, so a revocation on one
node is seen at once by every node.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Mapping
from typing import Any

import redis as redis_lib
import structlog
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from authserver import metrics
from authserver.db import on_commit
from authserver.maintenance.state import REVOCATIONS, ChangeWatcher
from authserver.tokens.models import RevokedToken, TokenCutoff

NEGATIVE_TTL = 10
ISSUER_REUSE = 1.0
"""Seconds :meth:`RedisTokenState.not_before` reuses a subject's cutoff read from Redis: at
most this late for another process's cutoff, as the module docstring says."""
#: seconds :meth:`TokenState.answering` says False after a Redis error
QUIET_AFTER_FAILURE = 5.0
"""Seconds Redis keeps a "nothing recorded" answer (bounds a missed writer update)."""
LOCAL_MAX_ENTRIES = 100_000

log = structlog.get_logger("authserver.tokens")

Subject = tuple[str, str]  # ("user" | "client", id)


def subjects_of(claims: Mapping[str, Any]) -> list[Subject]:
    """The cutoffs that apply to an access token: its client's, and its user's
    (``sub`` is the client itself for ``client_credentials``, RFC 9068 §2.2)."""
    client_id = claims.get("client_id")
    sub = claims.get("sub")
    found: list[Subject] = []
    if isinstance(client_id, str):
        found.append(("client", client_id))
    if isinstance(sub, str) and sub != client_id:
        found.append(("user", sub))
    return found


def db_is_revoked(db: Session, jti: str) -> bool:
    return db.scalar(select(RevokedToken.jti).where(RevokedToken.jti == jti)) is not None


def db_cutoffs(db: Session, subjects: list[Subject]) -> dict[Subject, int]:
    if not subjects:
        return {}
    rows = db.execute(
        select(TokenCutoff.subject_kind, TokenCutoff.subject_id, TokenCutoff.not_before).where(
            tuple_(TokenCutoff.subject_kind, TokenCutoff.subject_id).in_(subjects)))
    return {(kind, sid): int(nbf) for kind, sid, nbf in rows}


class _Throttled:
    """Log one warning per event name and ``every`` seconds (an outage is not a log flood)."""

    def __init__(self, every: float = 10.0) -> None:
        self._every = every
        self._last: dict[str, float] = {}

    def warning(self, event: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last.get(event, float("-inf")) >= self._every:
            self._last[event] = now
            log.warning(event, error=type(exc).__name__)


class TokenState:
    """Revoked ``jti``s and cutoffs as the hot path sees them (see the module docstring).

    ``lifetime`` is the access-token lifetime: how long a cutoff matters.
    """

    def __init__(self, lifetime: int) -> None:
        self.lifetime = lifetime

    def is_inactive(self, db: Session, claims: Mapping[str, Any]) -> bool:
        """True when the token's ``jti`` is revoked or its ``iat`` precedes a cutoff.

        ``claims`` come from a verified access token; a token without a string
        ``jti`` or an integer ``iat`` is inactive.
        """
        jti, iat, exp = claims.get("jti"), claims.get("iat"), claims.get("exp")
        if not isinstance(jti, str) or not isinstance(iat, int) or isinstance(iat, bool) or not isinstance(exp, int):
            return True
        subjects = subjects_of(claims)
        revoked, cutoffs = self._lookup(db, jti, exp, subjects)
        return revoked or any(iat < cutoffs.get(s, 0) for s in subjects)

    def not_before(self, db: Session, subjects: list[Subject]) -> int:
        """The latest cutoff of ``subjects`` (for the issuer; 0 when none), from the
        cache where it is exact (the module docstring says how stale it may be)."""
        return max(db_cutoffs(db, subjects).values(), default=0)

    def answering(self) -> bool:
        """The shared cache answered its last calls: False for :data:`QUIET_AFTER_FAILURE`
        seconds after a Redis error (``bridge.call`` then keeps requests off the loop)."""
        return True

    def _lookup(self, db: Session, jti: str, exp: int,
                subjects: list[Subject]) -> tuple[bool, dict[Subject, int]]:
        raise NotImplementedError

    def note_revoked(self, db: Session, jti: str, exp: int) -> None:
        """Called by the writer inside its transaction, after the row is written."""
        raise NotImplementedError

    def note_cutoff(self, db: Session, subject: Subject, not_before: int, expires_at: int) -> None:
        raise NotImplementedError


class LocalTokenState(TokenState):
    def __init__(self, watcher: ChangeWatcher, lifetime: int) -> None:
        super().__init__(lifetime)
        self._watcher = watcher
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._revoked: dict[str, bool] = {}
        self._cutoffs: dict[Subject, int] = {}

    def _sync(self, db: Session) -> None:
        generation = self._watcher.current().get(REVOCATIONS, 0)
        if generation == self._generation:
            return
        now = dt.datetime.now(dt.UTC)
        rows = db.execute(select(TokenCutoff.subject_kind, TokenCutoff.subject_id, TokenCutoff.not_before)
                          .where(TokenCutoff.expires_at > now))
        cutoffs = {(kind, sid): int(nbf) for kind, sid, nbf in rows}
        with self._lock:
            self._revoked = {}
            self._cutoffs = cutoffs
            self._generation = generation

    def _lookup(self, db: Session, jti: str, exp: int,
                subjects: list[Subject]) -> tuple[bool, dict[Subject, int]]:
        self._sync(db)
        revoked = self._revoked.get(jti)
        if revoked is None:
            revoked = db_is_revoked(db, jti)
            with self._lock:
                if len(self._revoked) >= LOCAL_MAX_ENTRIES:
                    self._revoked = {}
                self._revoked[jti] = revoked
        return revoked, self._cutoffs

    def not_before(self, db: Session, subjects: list[Subject]) -> int:
        self._sync(db)
        cutoffs = self._cutoffs
        return max((cutoffs.get(s, 0) for s in subjects), default=0)

    def note_revoked(self, db: Session, jti: str, exp: int) -> None:
        def apply() -> None:
            with self._lock:
                self._revoked[jti] = True

        on_commit(db, apply)

    def note_cutoff(self, db: Session, subject: Subject, not_before: int, expires_at: int) -> None:
        def apply() -> None:
            with self._lock:
                self._cutoffs = {**self._cutoffs, subject: max(not_before, self._cutoffs.get(subject, 0))}

        on_commit(db, apply)


class RedisTokenState(TokenState):
    def __init__(self, redis: redis_lib.Redis, prefix: str, lifetime: int) -> None:
        super().__init__(lifetime)
        self._redis = redis
        self._prefix = f"{prefix}token-state:"
        self._throttled = _Throttled()
        self._failed_at = float("-inf")
        #: the issuer's reused answers: subject -> (cutoff, time.monotonic() when read)
        self._recent: dict[Subject, tuple[int, float]] = {}

    def _warn(self, event: str, exc: Exception) -> None:
        self._failed_at = time.monotonic()
        self._throttled.warning(event, exc)

    def answering(self) -> bool:
        return time.monotonic() - self._failed_at > QUIET_AFTER_FAILURE

    def _jti_key(self, jti: str) -> str:
        return f"{self._prefix}jti:{jti}"

    def _subject_key(self, subject: Subject) -> str:
        return f"{self._prefix}{subject[0]}:{subject[1]}"

    def _lookup(self, db: Session, jti: str, exp: int,
                subjects: list[Subject]) -> tuple[bool, dict[Subject, int]]:
        keys = [self._jti_key(jti), *(self._subject_key(s) for s in subjects)]
        try:
            values: list[Any] = self._redis.mget(keys)
        except redis_lib.RedisError as exc:
            self._warn("token_cache_unavailable", exc)
            metrics.record.redis_fallback("token_state")
            return db_is_revoked(db, jti), db_cutoffs(db, subjects)
        if None not in values:
            return values[0] == b"1", {s: int(v or 0) for s, v in zip(subjects, values[1:], strict=True)}
        return self._fill(db, jti, exp, subjects, values)

    def not_before(self, db: Session, subjects: list[Subject]) -> int:
        """The subjects' latest cutoff: reused when every subject was read less than
        :data:`ISSUER_REUSE` seconds ago or noted by this process, else read again
        (:meth:`_read_cutoffs`) and remembered."""
        if not subjects:
            return 0
        now = time.monotonic()
        recent = self._recent
        known = [recent.get(s) for s in subjects]
        if all(k is not None and now - k[1] < ISSUER_REUSE for k in known):
            return max(k[0] for k in known if k is not None)
        cutoffs = self._read_cutoffs(db, subjects)
        if len(recent) >= LOCAL_MAX_ENTRIES:
            self._recent = recent = {}
        for subject, cutoff in cutoffs.items():
            recent[subject] = (cutoff, now)
        return max(cutoffs.values())

    def _read_cutoffs(self, db: Session, subjects: list[Subject]) -> dict[Subject, int]:
        """One ``MGET`` of the subjects' keys: exact, since writers set them before they
        commit; a missing key is filled from the database as in :meth:`_lookup`."""
        try:
            values: list[Any] = self._redis.mget([self._subject_key(s) for s in subjects])
        except redis_lib.RedisError as exc:
            self._warn("token_cache_unavailable", exc)
            metrics.record.redis_fallback("token_state")
            recorded = db_cutoffs(db, subjects)
            return {s: recorded.get(s, 0) for s in subjects}
        cutoffs = {s: int(v) for s, v in zip(subjects, values, strict=True) if v is not None}
        missing = [s for s in subjects if s not in cutoffs]
        if missing:
            recorded = db_cutoffs(db, missing)
            cutoffs.update({s: recorded.get(s, 0) for s in missing})
            try:
                pipe = self._redis.pipeline(transaction=False)
                for subject in missing:
                    pipe.set(self._subject_key(subject), str(cutoffs[subject]), nx=True, ex=NEGATIVE_TTL)
                pipe.execute()
            except redis_lib.RedisError as exc:
                self._warn("token_cache_fill_failed", exc)
        return cutoffs

    def _fill(self, db: Session, jti: str, exp: int, subjects: list[Subject],
              values: list[Any]) -> tuple[bool, dict[Subject, int]]:
        """Read what Redis lacks from the database and store it, never over a writer's value."""
        revoked = values[0] == b"1" if values[0] is not None else db_is_revoked(db, jti)
        missing = [s for s, v in zip(subjects, values[1:], strict=True) if v is None]
        recorded = db_cutoffs(db, missing)
        cutoffs = {s: int(v) for s, v in zip(subjects, values[1:], strict=True) if v is not None}
        cutoffs.update({s: recorded.get(s, 0) for s in missing})
        try:
            pipe = self._redis.pipeline(transaction=False)
            if values[0] is None:
                # a revocation is final: kept until the token expires; "not revoked" briefly
                ttl = max(1, exp - int(time.time()) + 1) if revoked else NEGATIVE_TTL
                pipe.set(self._jti_key(jti), b"1" if revoked else b"0", nx=True, ex=ttl)
            for subject in missing:
                pipe.set(self._subject_key(subject), str(cutoffs[subject]), nx=True, ex=NEGATIVE_TTL)
            pipe.execute()
        except redis_lib.RedisError as exc:
            self._warn("token_cache_fill_failed", exc)
        return revoked, cutoffs

    def note_revoked(self, db: Session, jti: str, exp: int) -> None:
        ttl = max(1, exp - int(time.time()) + 1)
        try:
            self._redis.set(self._jti_key(jti), b"1", ex=ttl)
        except redis_lib.RedisError as exc:
            self._warn("token_cache_write_failed", exc)

    def note_cutoff(self, db: Session, subject: Subject, not_before: int, expires_at: int) -> None:
        """Set the subject's key, and this process's reused answer, before the commit: at
        worst a cutoff that is rolled back makes this process's next token for the
        subject wait for the next second."""
        known = self._recent.get(subject)
        self._recent[subject] = (max(not_before, known[0] if known else 0), time.monotonic())
        ttl = max(1, expires_at - int(time.time()))
        try:
            self._redis.set(self._subject_key(subject), str(not_before), ex=ttl)
        except redis_lib.RedisError as exc:
            self._warn("token_cache_write_failed", exc)
