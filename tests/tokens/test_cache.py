"""The revocation caches of ``tokens/cache.py``, one behaviour at a time.

``RedisTokenState`` runs against the real Redis (keys under a prefix of this test's own)
on both databases: the database is only its record, so the SQLite variant reaches the
same code and is what the mutation pass (docs/mutation.md) runs. The end-to-end
behaviour (revoke, flush, another process) is in ``test_revocation.py``.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from authserver import metrics
from authserver.context import Context
from authserver.db import transaction
from authserver.security.throttle import connect_redis
from authserver.tokens import cache as cache_module
from authserver.tokens.cache import (
    NEGATIVE_TTL,
    LocalTokenState,
    RedisTokenState,
    TokenState,
    _Throttled,
    subjects_of,
)
from authserver.tokens.models import RevokedToken, TokenCutoff

LIFETIME = 300


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def prefix(r: redis.Redis) -> Iterator[str]:
    value = f"authserver-test:{secrets.token_hex(6)}:"
    yield value
    keys = list(r.scan_iter(match=value + "*"))
    if keys:
        r.delete(*keys)


@pytest.fixture
def state(r: redis.Redis, prefix: str) -> RedisTokenState:
    return RedisTokenState(r, prefix, LIFETIME)


def record_cutoff(ctx: Context, kind: str, sid: str, not_before: int) -> None:
    with transaction(ctx.sessions) as db:
        db.add(TokenCutoff(subject_kind=kind, subject_id=sid, not_before=not_before,
                           expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=LIFETIME)))


def record_revoked(ctx: Context, jti: str, exp: int) -> None:
    with transaction(ctx.sessions) as db:
        db.add(RevokedToken(jti=jti, expires_at=dt.datetime.fromtimestamp(exp, dt.UTC)))


def claims(jti: str = "j1", iat: int = 1000, exp: int | None = None, sub: str = "u1",
           client_id: str = "c1") -> dict[str, Any]:
    return {"jti": jti, "iat": iat, "exp": exp if exp is not None else int(time.time()) + LIFETIME,
            "sub": sub, "client_id": client_id}


# -- which cutoffs apply ----------------------------------------------------------------


def test_a_token_answers_to_its_clients_and_its_users_cutoffs():
    assert subjects_of({"client_id": "c1", "sub": "u1"}) == [("client", "c1"), ("user", "u1")]
    # client_credentials: sub is the client itself (RFC 9068 §2.2), one subject
    assert subjects_of({"client_id": "c1", "sub": "c1"}) == [("client", "c1")]
    assert subjects_of({"sub": "u1"}) == [("user", "u1")]
    assert subjects_of({"client_id": 7, "sub": None}) == []


@pytest.mark.parametrize("bad", [
    {"jti": None}, {"jti": 5}, {"iat": None}, {"iat": "1000"}, {"iat": True}, {"exp": None}, {"exp": "9"},
])
def test_a_token_without_a_string_jti_and_integer_times_is_inactive(ctx, state, bad):
    with transaction(ctx.sessions) as db:
        assert state.is_inactive(db, {**claims(), **bad}) is True
        assert state.is_inactive(db, claims()) is False


# -- Redis: what is read ----------------------------------------------------------------


def test_the_cache_answers_from_redis_when_it_has_every_key(ctx, state, r, prefix):
    # what a writer set: the database has nothing, so the answers can only come from Redis
    r.set(f"{prefix}token-state:jti:j1", b"1")
    r.set(f"{prefix}token-state:jti:j2", b"0")
    r.set(f"{prefix}token-state:user:u1", b"0")
    r.set(f"{prefix}token-state:client:c1", b"2000")
    with transaction(ctx.sessions) as db:
        assert state.is_inactive(db, claims(jti="j1", iat=3000)) is True
        assert state.is_inactive(db, claims(jti="j2", iat=3000)) is False
        assert state.is_inactive(db, claims(jti="j2", iat=1999)) is True   # before the client's cutoff
        assert state.is_inactive(db, claims(jti="j2", iat=2000)) is False  # at it: issued after it
        assert state.not_before(db, [("client", "c1"), ("user", "u1")]) == 2000
        assert state.not_before(db, []) == 0


def test_a_miss_is_read_from_the_database_and_stored_for_a_while(ctx, state, r, prefix):
    start = int(time.time())
    exp = start + 120
    record_revoked(ctx, "gone", exp)
    record_cutoff(ctx, "user", "u1", 1500)
    with transaction(ctx.sessions) as db:
        assert state.is_inactive(db, claims(jti="gone", iat=2000, exp=exp)) is True
        assert state.is_inactive(db, claims(jti="live", iat=1499, exp=exp)) is True  # the user's cutoff
        assert state.is_inactive(db, claims(jti="live", iat=1500, exp=exp)) is False
    key = f"{prefix}token-state:"
    assert r.get(key + "jti:gone") == b"1"
    # kept while it lives (the fill may have run in an earlier second than this line)
    assert exp - int(time.time()) <= r.ttl(key + "jti:gone") <= exp - start + 1
    assert r.get(key + "jti:live") == b"0"
    assert 0 < r.ttl(key + "jti:live") <= NEGATIVE_TTL  # "not revoked" only briefly
    assert r.get(key + "user:u1") == b"1500"
    assert r.get(key + "client:c1") == b"0"
    assert 0 < r.ttl(key + "user:u1") <= NEGATIVE_TTL and 0 < r.ttl(key + "client:c1") <= NEGATIVE_TTL


def test_a_partial_miss_keeps_what_redis_had(ctx, state, r, prefix):
    r.set(f"{prefix}token-state:jti:j1", b"1")
    r.set(f"{prefix}token-state:client:c1", b"900")
    record_cutoff(ctx, "user", "u1", 800)
    record_cutoff(ctx, "client", "c1", 5000)  # Redis's value wins over the record it caches
    with transaction(ctx.sessions) as db:
        revoked, cutoffs = state._lookup(db, "j1", int(time.time()) + 60, [("client", "c1"), ("user", "u1")])
    assert revoked is True
    assert cutoffs == {("client", "c1"): 900, ("user", "u1"): 800}


def test_a_fill_never_overwrites_a_writer(ctx, r, prefix):
    """A writer that sets its key between our ``MGET`` and our fill wins: the fill is ``SET NX``."""

    class WriterInBetween(redis.Redis):
        def mget(self, keys: Any, *args: Any) -> Any:
            values = super().mget(keys, *args)
            r.set(f"{prefix}token-state:jti:j1", b"1")
            r.set(f"{prefix}token-state:user:u1", b"7777")
            return values

    client = WriterInBetween(connection_pool=r.connection_pool)
    state = RedisTokenState(client, prefix, LIFETIME)
    with transaction(ctx.sessions) as db:
        assert state._lookup(db, "j1", int(time.time()) + 60, [("user", "u1")]) == (False, {("user", "u1"): 0})
    assert r.get(f"{prefix}token-state:jti:j1") == b"1"
    assert r.get(f"{prefix}token-state:user:u1") == b"7777"
    r.delete(f"{prefix}token-state:user:u1")
    with transaction(ctx.sessions) as db:
        assert state.not_before(db, [("user", "u1")]) == 0
    assert r.get(f"{prefix}token-state:user:u1") == b"7777"


def test_not_before_fills_only_the_missing_subjects(ctx, state, r, prefix):
    r.set(f"{prefix}token-state:client:c1", b"300")
    record_cutoff(ctx, "user", "u1", 250)
    record_cutoff(ctx, "user", "u2", 400)
    with transaction(ctx.sessions) as db:
        assert state.not_before(db, [("client", "c1"), ("user", "u1")]) == 300
        assert state.not_before(db, [("client", "c1"), ("user", "u2")]) == 400
        assert state.not_before(db, [("user", "u3")]) == 0
    assert r.get(f"{prefix}token-state:user:u1") == b"250"
    assert r.get(f"{prefix}token-state:user:u3") == b"0"
    assert 0 < r.ttl(f"{prefix}token-state:user:u1") <= NEGATIVE_TTL
    assert r.ttl(f"{prefix}token-state:client:c1") == -1  # a writer's key is not touched
    with transaction(ctx.sessions) as db:  # all three are in Redis now
        assert state.not_before(db, [("user", "u1"), ("user", "u2"), ("user", "u3")]) == 400


# -- Redis: what writers store ------------------------------------------------------------


def test_a_revocation_overwrites_a_cached_not_revoked_until_the_token_expires(ctx, state, r, prefix):
    key = f"{prefix}token-state:jti:j1"
    r.set(key, b"0", ex=NEGATIVE_TTL)
    exp = int(time.time()) + 200
    with transaction(ctx.sessions) as db:
        state.note_revoked(db, "j1", exp)
    assert r.get(key) == b"1"
    assert 199 <= r.ttl(key) <= 201
    with transaction(ctx.sessions) as db:
        state.note_revoked(db, "j2", int(time.time()) - 50)  # already expired: kept a second, not refused
    assert r.get(f"{prefix}token-state:jti:j2") == b"1" and 0 < r.ttl(f"{prefix}token-state:jti:j2") <= 1


def test_a_cutoff_overwrites_and_lives_as_long_as_the_tokens_it_ends(ctx, state, r, prefix):
    key = f"{prefix}token-state:user:u1"
    r.set(key, b"0", ex=NEGATIVE_TTL)
    with transaction(ctx.sessions) as db:
        state.note_cutoff(db, ("user", "u1"), 4242, int(time.time()) + 250)
        state.note_cutoff(db, ("client", "c9"), 17, int(time.time()) - 5)
    assert r.get(key) == b"4242"
    assert 248 <= r.ttl(key) <= 250
    assert r.get(f"{prefix}token-state:client:c9") == b"17" and 0 < r.ttl(f"{prefix}token-state:client:c9") <= 1


# -- the issuer's reused answers -----------------------------------------------------------


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    now = [5000.0]
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: now[0])
    return now


def test_the_issuer_reuses_a_cutoff_read_from_redis_for_at_most_a_second(ctx, state, r, prefix, clock):
    key = f"{prefix}token-state:client:c1"
    r.set(key, b"300")
    with transaction(ctx.sessions) as db:
        assert state.not_before(db, [("client", "c1")]) == 300
        r.set(key, b"500")  # another process's cutoff
        clock[0] += cache_module.ISSUER_REUSE - 0.001
        assert state.not_before(db, [("client", "c1")]) == 300  # no round trip: at most this late
        clock[0] += 0.001
        assert state.not_before(db, [("client", "c1")]) == 500
        r.set(key, b"700")
        clock[0] += 0.5
        assert state.not_before(db, [("client", "c1")]) == 500
        # one subject not read yet: both are read again (one MGET) and remembered
        r.set(f"{prefix}token-state:user:u1", b"600")
        assert state.not_before(db, [("client", "c1"), ("user", "u1")]) == 700
        r.set(key, b"900")
        assert state.not_before(db, [("user", "u1"), ("client", "c1")]) == 700


def test_the_issuer_sees_this_processs_own_cutoff_at_once(ctx, state, r, prefix, clock):
    with transaction(ctx.sessions) as db:
        assert state.not_before(db, [("user", "u1"), ("client", "c1")]) == 0
        state.note_cutoff(db, ("user", "u1"), 800, int(time.time()) + 60)
        assert state.not_before(db, [("user", "u1"), ("client", "c1")]) == 800
        state.note_cutoff(db, ("user", "u1"), 750, int(time.time()) + 60)  # never lowers what it knows
        assert state.not_before(db, [("user", "u1")]) == 800
        state.note_cutoff(db, ("client", "c2"), 40, int(time.time()) + 60)  # noted: no read needed
        r.delete(f"{prefix}token-state:client:c2")
        assert state.not_before(db, [("client", "c2")]) == 40


def test_the_issuers_memory_is_bounded(ctx, state, r, prefix, clock, monkeypatch):
    monkeypatch.setattr(cache_module, "LOCAL_MAX_ENTRIES", 2)
    for subject in ("a", "b", "c"):
        r.set(f"{prefix}token-state:user:{subject}", b"10")
    with transaction(ctx.sessions) as db:
        for subject in ("a", "b", "c"):
            assert state.not_before(db, [("user", subject)]) == 10
    assert list(state._recent) == [("user", "c")]  # full: emptied before the third answer


def test_the_checks_never_reuse_an_answer(ctx, state, r, prefix, clock):
    r.set(f"{prefix}token-state:jti:j1", b"0")
    r.set(f"{prefix}token-state:user:u1", b"0")
    r.set(f"{prefix}token-state:client:c1", b"0")
    with transaction(ctx.sessions) as db:
        assert state.not_before(db, [("client", "c1"), ("user", "u1")]) == 0
        assert state.is_inactive(db, claims(jti="j1", iat=1000)) is False
        r.set(f"{prefix}token-state:client:c1", b"2000")  # another node's cutoff: seen at once
        assert state.is_inactive(db, claims(jti="j1", iat=1000)) is True
        r.set(f"{prefix}token-state:jti:j2", b"1")
        assert state.is_inactive(db, claims(jti="j2", iat=3000)) is True


# -- Redis away ---------------------------------------------------------------------------


@pytest.fixture
def down() -> Iterator[redis.Redis]:
    client = connect_redis("redis://127.0.0.1:1/0", timeout=0.2)  # nothing listens there; as the app connects
    yield client
    client.close()


def test_without_redis_every_answer_comes_from_the_database(ctx, down, prefix):
    state = RedisTokenState(down, prefix, LIFETIME)
    record_revoked(ctx, "gone", int(time.time()) + 60)
    record_cutoff(ctx, "client", "c1", 1200)
    record_cutoff(ctx, "user", "u1", 1300)
    assert state.answering()
    with capture_logs() as logs, transaction(ctx.sessions) as db:
        assert state.is_inactive(db, claims(jti="gone", iat=5000)) is True
        assert state.is_inactive(db, claims(jti="live", iat=1299)) is True
        assert state.is_inactive(db, claims(jti="live", iat=1300)) is False
        assert state.not_before(db, [("client", "c1"), ("user", "u1")]) == 1300
        assert state.not_before(db, [("user", "nobody")]) == 0
        state.note_revoked(db, "x", int(time.time()) + 60)   # the record is the database's: no error
        state.note_cutoff(db, ("user", "u1"), 1, int(time.time()) + 60)
    assert not state.answering()
    # one warning per event and ten seconds, with the error's type and never its text
    assert [(e["event"], e["error"], e["log_level"]) for e in logs] == [
        ("token_cache_unavailable", "ConnectionError", "warning"),
        ("token_cache_write_failed", "ConnectionError", "warning"),
    ]


class Fallbacks(metrics.Recorder):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def redis_fallback(self, component: str) -> None:
        self.seen.append(component)


def test_the_issuers_read_without_redis_is_logged_counted_and_answered_from_the_database(
        ctx, down, prefix, monkeypatch):
    recorder = Fallbacks()
    monkeypatch.setattr(metrics, "record", recorder)
    state = RedisTokenState(down, prefix, LIFETIME)
    record_cutoff(ctx, "user", "u1", 1300)
    with capture_logs() as logs, transaction(ctx.sessions) as db:
        assert state.not_before(db, [("client", "c1"), ("user", "u1")]) == 1300
    assert [(e["event"], e["error"]) for e in logs] == [("token_cache_unavailable", "ConnectionError")]
    assert recorder.seen == ["token_state"]
    with capture_logs() as logs, transaction(ctx.sessions) as db:
        state.note_cutoff(db, ("user", "u2"), 5, int(time.time()) + 60)
    assert [(e["event"], e["error"]) for e in logs] == [("token_cache_write_failed", "ConnectionError")]


def test_answering_comes_back_after_the_quiet_period(ctx, down, prefix, monkeypatch):
    state = RedisTokenState(down, prefix, LIFETIME)
    now = [1000.0]
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: now[0])
    with transaction(ctx.sessions) as db:
        state.not_before(db, [("user", "u1")])
    assert not state.answering()
    now[0] += cache_module.QUIET_AFTER_FAILURE
    assert not state.answering()
    now[0] += 0.01
    assert state.answering()


def test_a_failed_fill_still_answers(ctx, r, prefix):
    """Redis answers the read but not the write: the answer stands, nothing is cached."""

    class ReadOnly(redis.Redis):
        def pipeline(self, *args: Any, **kwargs: Any) -> Any:
            raise redis.ConnectionError("write refused")

    issuer = RedisTokenState(ReadOnly(connection_pool=r.connection_pool), prefix, LIFETIME)
    record_cutoff(ctx, "user", "u1", 600)
    with capture_logs() as logs, transaction(ctx.sessions) as db:
        assert issuer.not_before(db, [("user", "u1")]) == 600
    assert [(e["event"], e["error"]) for e in logs] == [("token_cache_fill_failed", "ConnectionError")]
    state = RedisTokenState(ReadOnly(connection_pool=r.connection_pool), prefix, LIFETIME)
    with capture_logs() as logs, transaction(ctx.sessions) as db:
        assert state._lookup(db, "j1", int(time.time()) + 60, [("user", "u1")]) == (False, {("user", "u1"): 600})
        assert state.not_before(db, [("user", "u1")]) == 600
    assert [e["event"] for e in logs] == ["token_cache_fill_failed"]
    assert r.get(f"{prefix}token-state:user:u1") is None
    assert not state.answering()


def test_the_throttle_logs_each_event_once_per_period(monkeypatch):
    now = [50.0]
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: now[0])
    throttled = _Throttled(every=10.0)
    with capture_logs() as logs:
        throttled.warning("a", ValueError("x"))
        throttled.warning("a", ValueError("x"))
        throttled.warning("b", KeyError("x"))
        now[0] += 9.99
        throttled.warning("a", ValueError("x"))
        now[0] += 0.01
        throttled.warning("a", ValueError("x"))
    assert [(e["event"], e["error"]) for e in logs] == [("a", "ValueError"), ("b", "KeyError"), ("a", "ValueError")]


# -- without Redis: the per-process cache -----------------------------------------------------


class Watcher:
    def __init__(self) -> None:
        self.generation = 1

    def current(self) -> dict[str, int]:
        return {cache_module.REVOCATIONS: self.generation}


def test_the_process_cache_rereads_only_when_the_counter_moves(ctx):
    watcher = Watcher()
    state = LocalTokenState(watcher, LIFETIME)  # type: ignore[arg-type]
    record_cutoff(ctx, "user", "u1", 700)
    with transaction(ctx.sessions) as db:
        assert state.not_before(db, [("user", "u1"), ("client", "c1")]) == 700
        assert state.not_before(db, []) == 0
    record_cutoff(ctx, "client", "c1", 900)  # another process, counter not moved yet
    record_revoked(ctx, "j1", int(time.time()) + 60)
    with transaction(ctx.sessions) as db:
        assert state.not_before(db, [("client", "c1")]) == 0
        assert state.is_inactive(db, claims(jti="j1")) is True  # a jti never asked is read
        assert state.is_inactive(db, claims(jti="j2", iat=800)) is False
    with transaction(ctx.sessions) as db:
        db.query(RevokedToken).delete()
    with transaction(ctx.sessions) as db:
        assert state.is_inactive(db, claims(jti="j1")) is True  # answered from memory
    watcher.generation += 1
    with transaction(ctx.sessions) as db:
        assert state.not_before(db, [("client", "c1")]) == 900
        assert state.is_inactive(db, claims(jti="j1")) is False  # the answers were dropped
        assert state.is_inactive(db, claims(jti="j2", iat=800)) is True


def test_the_process_cache_skips_expired_cutoffs_and_is_bounded(ctx, monkeypatch):
    with transaction(ctx.sessions) as db:
        db.add(TokenCutoff(subject_kind="user", subject_id="old", not_before=99,
                           expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    state = LocalTokenState(Watcher(), LIFETIME)  # type: ignore[arg-type]
    monkeypatch.setattr(cache_module, "LOCAL_MAX_ENTRIES", 2)
    with transaction(ctx.sessions) as db:
        assert state.not_before(db, [("user", "old")]) == 0
        for jti in ("a", "b", "c"):
            state.is_inactive(db, claims(jti=jti))
    assert list(state._revoked) == ["c"]  # full: emptied before the third answer


def test_the_process_cache_notes_its_own_writes_after_commit(ctx):
    state = LocalTokenState(Watcher(), LIFETIME)  # type: ignore[arg-type]
    with transaction(ctx.sessions) as db:
        state.is_inactive(db, claims(jti="j1"))
        state.note_revoked(db, "j1", int(time.time()) + 60)
        state.note_cutoff(db, ("user", "u1"), 500, int(time.time()) + 60)
        assert state.is_inactive(db, claims(jti="j1")) is False  # not before the commit
    with transaction(ctx.sessions) as db:
        assert state.is_inactive(db, claims(jti="j1")) is True
        assert state.not_before(db, [("user", "u1")]) == 500
        state.note_cutoff(db, ("user", "u1"), 400, int(time.time()) + 60)  # an older cutoff never lowers it
    with transaction(ctx.sessions) as db:
        assert state.not_before(db, [("user", "u1")]) == 500


def test_the_base_class_answers_not_before_from_the_database(ctx):
    record_cutoff(ctx, "user", "u1", 321)
    record_cutoff(ctx, "client", "c1", 123)
    base = TokenState(LIFETIME)
    with transaction(ctx.sessions) as db:
        assert base.not_before(db, [("user", "u1"), ("client", "c1")]) == 321
        assert base.not_before(db, [("user", "nobody")]) == 0
        assert base.not_before(db, []) == 0
        with pytest.raises(NotImplementedError):
            base.is_inactive(db, claims())
    assert base.answering() is True
