"""Counter stores, lockout and rate limits, on the in-process store and on Redis."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from authserver.security.throttle import (
    CounterStore,
    FallbackStore,
    Lockout,
    MemoryStore,
    RateLimiter,
    RedisStore,
    connect_redis,
)
from authserver.settings import RateLimit, Settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingLogger:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def warning(self, event: str, **kw: Any) -> None:
        self.events.append(("warning", event, kw))

    def info(self, event: str, **kw: Any) -> None:
        self.events.append(("info", event, kw))


def run_threads(n: int, target: Callable[[], None]) -> None:
    barrier = threading.Barrier(n)

    def worker() -> None:
        barrier.wait()
        target()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# --- CounterStore contract -------------------------------------------------


def test_add_failure_counts_and_clear_forgets(store: CounterStore) -> None:
    assert [store.add_failure("k", 60) for _ in range(3)] == [1, 2, 3]
    assert store.failures("k", 60) == 3
    assert store.failures("other", 60) == 0
    store.clear("k")
    assert store.failures("k", 60) == 0
    assert store.add_failure("k", 60) == 1


def test_windows_and_locks_expire(store: CounterStore) -> None:
    # One sleep for every expiry, so the suite stays fast.
    store.add_failure("f", 1)
    store.add_failure("f", 1)
    store.lock("l", 1)
    assert store.locked_for("l") == 1
    assert store.hit("h", 1, 1) == (True, 0)
    assert store.hit("h", 1, 1) == (False, 1)
    time.sleep(1.1)
    assert store.failures("f", 1) == 0
    assert store.add_failure("f", 1) == 1
    assert store.locked_for("l") == 0
    assert store.hit("h", 1, 1) == (True, 0)


def test_lock_reports_remaining_seconds_and_unlocks(store: CounterStore) -> None:
    assert store.locked_for("k") == 0
    store.lock("k", 30)
    assert 29 <= store.locked_for("k") <= 30
    store.unlock("k")
    assert store.locked_for("k") == 0


def test_incr_lock_count(store: CounterStore) -> None:
    assert [store.incr_lock_count("k", 86400) for _ in range(3)] == [1, 2, 3]
    store.clear("k")
    assert store.incr_lock_count("k", 86400) == 1


def test_hit_allows_limit_then_refuses_with_retry_after(store: CounterStore) -> None:
    assert [store.hit("k", 3, 60) for _ in range(3)] == [(True, 0)] * 3
    allowed, retry_after = store.hit("k", 3, 60)
    assert allowed is False
    assert 0 < retry_after <= 60
    assert store.hit("other", 3, 60) == (True, 0)


def test_add_failure_is_atomic(store: CounterStore) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def fifty() -> None:
        counts = [store.add_failure("k", 60) for _ in range(50)]
        with lock:
            results.extend(counts)

    run_threads(8, fifty)
    assert store.failures("k", 60) == 400
    assert sorted(results) == list(range(1, 401))  # every event got its own count


def test_hit_is_atomic(store: CounterStore) -> None:
    allowed: list[bool] = []
    lock = threading.Lock()

    def fifty() -> None:
        got = [store.hit("k", 100, 60)[0] for _ in range(50)]
        with lock:
            allowed.extend(got)

    run_threads(8, fifty)
    assert allowed.count(True) == 100


def test_ping(store: CounterStore) -> None:
    assert store.ping() is True


def test_memory_store_with_fake_clock() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    store.add_failure("k", 10)
    clock.now += 5
    store.add_failure("k", 10)
    clock.now += 5  # the first event is exactly `window` old: out
    assert store.failures("k", 10) == 1
    assert store.hit("h", 1, 10) == (True, 0)
    clock.now += 2.5
    assert store.hit("h", 1, 10) == (False, 8)
    store.lock("l", 5)
    clock.now += 4.2
    assert store.locked_for("l") == 1
    clock.now += 1
    assert store.locked_for("l") == 0


def test_memory_store_sweeps_expired_keys() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    for i in range(10):
        store.add_failure(f"k{i}", 10)
        store.lock(f"l{i}", 10)
    clock.now += 11
    for _ in range(MemoryStore._SWEEP_EVERY):
        store.hit("live", 10_000, 60)
    assert set(store._events) == {"live"}
    assert store._locks == {}


def test_redis_store_keeps_keys_under_prefix(redis_store: RedisStore) -> None:
    redis_store.add_failure("a", 60)
    redis_store.lock("b", 60)
    redis_store.hit("c", 5, 60)
    keys = {k.decode() for k in redis_store.client.scan_iter(match=redis_store.prefix + "*")}
    assert keys == {redis_store.prefix + name for name in ("a", "b", "c")}
    for key in keys:
        assert 0 < redis_store.client.ttl(key) <= 60  # nothing lives forever


# --- Lockout ---------------------------------------------------------------


@pytest.fixture
def lockout(settings: Settings, store: CounterStore) -> Lockout:
    return Lockout(settings, store)


def test_sixth_attempt_is_refused(lockout: Lockout) -> None:
    for _ in range(4):
        assert lockout.register_failure("alice", "192.0.2.1") == 0
        assert lockout.check("alice", "192.0.2.1") == 0
    assert lockout.register_failure("alice", "192.0.2.1") == 60  # 5th failure reaches the threshold
    assert 59 <= lockout.check("alice", "192.0.2.1") <= 60
    assert 59 <= lockout.check("alice", "198.51.100.1") <= 60  # the account, from anywhere
    assert lockout.check("bob", "192.0.2.1") == 0  # the IP is not locked
    assert lockout.check(None, "192.0.2.1") == 0


def test_locks_grow_and_are_capped(lockout: Lockout) -> None:
    durations: list[int] = []
    for _ in range(8):
        for _ in range(4):
            lockout.register_failure("alice", "192.0.2.1")
        durations.append(lockout.register_failure("alice", f"192.0.2.{len(durations) + 10}"))
    assert durations == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_success_clears_failures_but_not_lock_count(lockout: Lockout) -> None:
    for _ in range(4):
        lockout.register_failure("alice", "192.0.2.1")
    lockout.register_success("alice")
    for _ in range(4):
        assert lockout.register_failure("alice", "192.0.2.1") == 0
    assert lockout.register_failure("alice", "192.0.2.1") == 60
    lockout.register_success("alice")
    for _ in range(4):
        lockout.register_failure("alice", "192.0.2.2")
    assert lockout.register_failure("alice", "192.0.2.2") == 120  # second lock within 24 h


def test_admin_unlock_clears_everything(lockout: Lockout) -> None:
    for _ in range(10):
        lockout.register_failure("alice", "192.0.2.1")
    assert lockout.check("alice", "192.0.2.2") > 0
    lockout.unlock("alice")
    assert lockout.check("alice", "192.0.2.2") == 0
    for _ in range(4):
        assert lockout.register_failure("alice", "192.0.2.2") == 0
    assert lockout.register_failure("alice", "192.0.2.2") == 60  # back to the base duration


def test_concurrent_failures_lock_the_account(lockout: Lockout) -> None:
    def two_failures() -> None:
        for i in range(2):
            lockout.register_failure("alice", f"192.0.2.{i}")

    run_threads(8, two_failures)  # 16 failures racing over a threshold of 5
    assert lockout.check("alice", "198.51.100.1") >= 59


def test_ip_threshold_locks_the_ip_for_every_account(lockout: Lockout) -> None:
    for i in range(19):
        assert lockout.register_failure(f"user{i}", "203.0.113.9") == 0
    assert lockout.check("fresh-user", "203.0.113.9") == 0
    assert lockout.register_failure("user19", "203.0.113.9") == 60
    assert 59 <= lockout.check("fresh-user", "203.0.113.9") <= 60
    assert 59 <= lockout.check(None, "203.0.113.9") <= 60
    assert lockout.check("fresh-user", "203.0.113.10") == 0
    lockout.unlock_ip("203.0.113.9")
    assert lockout.check("fresh-user", "203.0.113.9") == 0


def test_failures_without_account_count_for_the_ip(lockout: Lockout) -> None:
    for _ in range(19):
        assert lockout.register_failure(None, "203.0.113.9") == 0
    assert lockout.register_failure(None, "203.0.113.9") == 60


def test_lockout_keys_do_not_contain_identifiers(settings: Settings, redis_store: RedisStore) -> None:
    lockout = Lockout(settings, redis_store)
    for _ in range(5):
        lockout.register_failure("alice@example.com", "192.0.2.77")
    keys = [k.decode() for k in redis_store.client.scan_iter(match=redis_store.prefix + "*")]
    assert any(":acct:" in k for k in keys)
    assert any(":ip:" in k for k in keys)
    assert not any("alice" in k or "192.0.2.77" in k for k in keys)


# --- RateLimiter -----------------------------------------------------------


def test_rate_limit_refuses_with_retry_after(settings: Settings, store: CounterStore) -> None:
    limiter = RateLimiter(dataclasses.replace(settings, rate_limit_login=RateLimit(3, 60)), store)
    assert [limiter.check("login", "192.0.2.1") for _ in range(3)] == [(True, 0)] * 3
    allowed, retry_after = limiter.check("login", "192.0.2.1")
    assert allowed is False  # the caller answers 429 with Retry-After
    assert 0 < retry_after <= 60
    assert limiter.check("login", "192.0.2.2") == (True, 0)
    assert limiter.check("token", "192.0.2.1") == (True, 0)  # buckets are independent


@pytest.mark.parametrize("bucket", RateLimiter.BUCKETS)
def test_every_bucket_uses_its_setting(settings: Settings, store: CounterStore, bucket: str) -> None:
    overrides: dict[str, Any] = {f"rate_limit_{bucket}": RateLimit(1, 60)}
    limiter = RateLimiter(dataclasses.replace(settings, **overrides), store)
    assert limiter.check(bucket, "k") == (True, 0)
    assert limiter.check(bucket, "k")[0] is False


def test_rate_limits_off_allows_everything(settings: Settings, store: CounterStore) -> None:
    limiter = RateLimiter(
        dataclasses.replace(settings, rate_limits=False, rate_limit_token=RateLimit(1, 60)), store
    )
    assert all(limiter.check("token", "k") == (True, 0) for _ in range(5))


def test_unknown_bucket_is_an_error(settings: Settings) -> None:
    with pytest.raises(KeyError):
        RateLimiter(settings, MemoryStore()).check("userinfo", "k")


# --- FallbackStore ---------------------------------------------------------


@pytest.fixture
def dead_redis() -> Any:
    # a port bound by this test but not listening refuses connections, whatever
    # else runs on the machine (port 1 may be taken by someone's server)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        client = connect_redis(f"redis://127.0.0.1:{closed.getsockname()[1]}/0", timeout=0.2)
        yield RedisStore(client, "authserver-test:")
        client.close()


def test_fallback_keeps_lockout_working_when_redis_is_down(
    settings: Settings, dead_redis: RedisStore
) -> None:
    logger = RecordingLogger()
    store = FallbackStore(dead_redis, MemoryStore(), logger)
    assert store.degraded is False
    lockout = Lockout(settings, store)
    for _ in range(4):
        assert lockout.register_failure("alice", "192.0.2.1") == 0
    assert lockout.register_failure("alice", "192.0.2.1") == 60
    assert lockout.check("alice", "192.0.2.1") > 0
    assert RateLimiter(settings, store).check("login", "192.0.2.1") == (True, 0)
    assert store.degraded is True
    assert store.ping() is True  # served, though degraded
    assert store.degraded is True
    assert [e[1] for e in logger.events] == ["redis_unavailable_fallback"]  # one warning, not one per call


class FlakyStore(MemoryStore):
    """A primary that raises like an unreachable Redis while ``down`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    def add_failure(self, key: str, window: int) -> int:
        self.calls += 1
        if self.down:
            raise redis.ConnectionError("Connection refused")
        return super().add_failure(key, window)

    def ping(self) -> bool:
        return not self.down


def test_fallback_retries_redis_after_a_delay_and_recovers() -> None:
    clock = FakeClock()
    primary = FlakyStore()
    logger = RecordingLogger()
    store = FallbackStore(primary, MemoryStore(), logger, retry_after=5, warn_every=60, clock=clock)  # type: ignore[arg-type]
    assert store.add_failure("k", 60) == 1
    primary.down = True
    assert store.add_failure("k", 60) == 1  # served in-process, counted from zero
    assert store.degraded
    calls = primary.calls
    store.add_failure("k", 60)
    assert primary.calls == calls  # not retried before the delay
    clock.now += 6
    store.add_failure("k", 60)
    assert primary.calls == calls + 1  # retried, still down
    clock.now += 61
    store.add_failure("k", 60)
    assert [e[1] for e in logger.events] == ["redis_unavailable_fallback"] * 2  # at most once a minute
    primary.down = False
    clock.now += 6
    assert store.add_failure("k", 60) == 2
    assert store.degraded is False
    assert logger.events[-1][1] == "redis_recovered"


def test_fallback_ping_probes_redis_now() -> None:
    clock = FakeClock()
    primary = FlakyStore()
    store = FallbackStore(primary, MemoryStore(), RecordingLogger(), clock=clock)  # type: ignore[arg-type]
    primary.down = True
    assert store.ping() is True
    assert store.degraded is True
    primary.down = False
    assert store.ping() is True
    assert store.degraded is False


def test_connect_redis_fails_fast(dead_redis: RedisStore) -> None:
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        dead_redis.add_failure("k", 60)
    assert dead_redis.ping() is False
    assert time.monotonic() - started < 2  # not redis-py's default retry schedule


def test_connect_redis_tries_a_hung_server_again_once_then_gives_up() -> None:
    """``connect_redis`` pins its retry policy (one immediate retry) instead of redis-py's
    default, which changed between releases: a server that accepts and never answers is
    tried again, each attempt bounded by the timeout, and the command then fails."""
    accepted: list[socket.socket] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)

        def accept() -> None:
            while True:
                try:
                    accepted.append(server.accept()[0])
                except OSError:
                    return

        threading.Thread(target=accept, daemon=True).start()
        client = connect_redis(f"redis://127.0.0.1:{server.getsockname()[1]}/0", timeout=0.2)
        with pytest.raises(redis.TimeoutError):
            client.incr("k")
        client.close()
        assert len(accepted) >= 2  # tried again
        for conn in accepted:
            conn.close()


def test_fallback_uses_redis_when_up(redis_store: RedisStore) -> None:
    store = FallbackStore(redis_store, MemoryStore(), RecordingLogger())
    store.add_failure("k", 60)
    assert redis_store.failures("k", 60) == 1
    assert store.degraded is False


def test_locked_for_several_keys_is_the_longest_lock(store: CounterStore) -> None:
    """The login asks for its IP's and its account's lock at once (one round trip)."""
    assert store.locked_for("ip", "acct") == 0
    store.lock("ip", 10)
    assert 9 <= store.locked_for("ip", "acct") <= 10
    store.lock("acct", 60)
    assert 59 <= store.locked_for("ip", "acct") <= 60 and 59 <= store.locked_for("acct", "ip") <= 60
    store.unlock("acct")
    assert 9 <= store.locked_for("acct", "ip") <= 10


def test_an_expired_lock_does_not_hide_a_live_one() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    store.lock("ip", 1)
    store.lock("acct", 60)
    clock.now += 2
    assert store.locked_for("ip", "acct") == 58
    assert store.locked_for("ip") == 0
