"""Failure counters, temporary lockout and rate limits.

Two layers share one :class:`CounterStore`:

* :class:`Lockout` — brute-force protection per account and per client IP
  (OWASP ASVS 4.0 §2.2.1, NIST SP 800-63B §5.2.2 "rate limiting"): failures are
  counted in a sliding window; crossing the threshold locks for a duration that
  doubles with every lock in the last 24 hours, up to a cap.
* :class:`RateLimiter` — request budgets for the login, token, introspection
  and registration endpoints.

Stores: :class:`RedisStore` in production (shared by every worker; each
operation is one atomic Lua script using the Redis server clock, so workers on
different machines agree on time), :class:`MemoryStore` on the embedded
default (in-process, thread-safe).

Redis outage policy: :class:`FallbackStore` *fails over* to in-process
counters instead of failing closed or open. Logins keep working and brute-force
protection stays on, but becomes per-process (an attacker spreading attempts
over N workers gets N times the budget, and locks set in Redis before the
outage are not seen). It logs one ``redis_unavailable_fallback`` warning (at
most once a minute), exposes :attr:`FallbackStore.degraded` for ``/health``
and tries Redis again after a few seconds.

No user identifier or IP address reaches a key in clear text: :class:`Lockout`
and :class:`RateLimiter` put an HMAC-SHA256 of the identifier in the key name
(``lockout:acct:<hex>:failures``), keyed from ``SECRET_KEY``, so a dump of
Redis cannot be matched against a list of usernames.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import redis
import structlog
from redis.backoff import NoBackoff
from redis.retry import Retry

from authserver import metrics
from authserver.security.crypto import SecretBox

if TYPE_CHECKING:
    from authserver.settings import RateLimit, Settings

T = TypeVar("T")

LOCK_COUNT_TTL = 24 * 3600
"""Locks within this many seconds make the next lock longer."""

MAX_EVENTS_PER_KEY = 10_000
"""A sliding-window key keeps at most this many events, so counts saturate here."""


class CounterStore(Protocol):
    """Atomic counters for throttling. Windows and durations are whole seconds."""

    def add_failure(self, key: str, window: int) -> int:
        """Record one event now; return the number of events in the last ``window`` seconds."""
        ...

    def failures(self, key: str, window: int) -> int:
        """Number of events recorded under ``key`` in the last ``window`` seconds."""
        ...

    def clear(self, key: str) -> None:
        """Forget every event under ``key``."""
        ...

    def lock(self, key: str, seconds: int) -> None:
        """Lock ``key`` for ``seconds`` from now (replacing any current lock)."""
        ...

    def locked_for(self, *keys: str) -> int:
        """Remaining whole seconds (rounded up) of the longest lock on ``keys``; 0 when
        none is locked. One round trip for all of them."""
        ...

    def unlock(self, key: str) -> None:
        """Remove the lock on ``key``."""
        ...

    def incr_lock_count(self, key: str, ttl: int) -> int:
        """Record one lock now; return the number of locks in the last ``ttl`` seconds."""
        ...

    def hit(self, key: str, limit: int, window: int) -> tuple[bool, int]:
        """Spend one request from a budget of ``limit`` per sliding ``window`` seconds.

        Returns ``(True, 0)`` when allowed, else ``(False, retry_after)`` with
        ``retry_after >= 1`` the seconds until the oldest counted request leaves
        the window. Refused requests are not counted.
        """
        ...

    def ping(self) -> bool:
        """True when the store is usable."""
        ...


class MemoryStore:
    """In-process :class:`CounterStore` (thread-safe; one process only).

    Sliding windows are deques of timestamps from ``clock`` (monotonic by
    default); expired keys are swept periodically so memory stays bounded by
    the active keys.
    """

    _SWEEP_EVERY = 1024

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._mutex = threading.Lock()
        self._events: dict[str, deque[float]] = {}
        self._expires: dict[str, float] = {}
        self._locks: dict[str, float] = {}
        self._ops = 0

    def _sweep(self, now: float) -> None:
        self._ops += 1
        if self._ops % self._SWEEP_EVERY:
            return
        for key in [k for k, exp in self._expires.items() if exp <= now]:
            del self._expires[key]
            self._events.pop(key, None)
        for key in [k for k, exp in self._locks.items() if exp <= now]:
            del self._locks[key]

    def _window(self, key: str, window: int, now: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque()
        cutoff = now - window
        while events and events[0] <= cutoff:
            events.popleft()
        return events

    def _record(self, key: str, window: int) -> int:
        now = self._clock()
        self._sweep(now)
        events = self._window(key, window, now)
        events.append(now)
        if len(events) > MAX_EVENTS_PER_KEY:
            events.popleft()
        self._expires[key] = max(self._expires.get(key, 0.0), now + window)
        return len(events)

    def add_failure(self, key: str, window: int) -> int:
        with self._mutex:
            return self._record(key, window)

    def failures(self, key: str, window: int) -> int:
        with self._mutex:
            events = self._events.get(key)
            if not events:
                return 0
            cutoff = self._clock() - window
            return sum(1 for t in events if t > cutoff)

    def clear(self, key: str) -> None:
        with self._mutex:
            self._events.pop(key, None)
            self._expires.pop(key, None)

    def lock(self, key: str, seconds: int) -> None:
        with self._mutex:
            self._locks[key] = self._clock() + seconds

    def locked_for(self, *keys: str) -> int:
        longest = 0
        with self._mutex:
            for key in keys:
                until = self._locks.get(key)
                if until is None:
                    continue
                remaining = until - self._clock()
                if remaining <= 0:
                    del self._locks[key]
                    continue
                longest = max(longest, math.ceil(remaining))
        return longest

    def unlock(self, key: str) -> None:
        with self._mutex:
            self._locks.pop(key, None)

    def incr_lock_count(self, key: str, ttl: int) -> int:
        with self._mutex:
            return self._record(key, ttl)

    def hit(self, key: str, limit: int, window: int) -> tuple[bool, int]:
        with self._mutex:
            now = self._clock()
            self._sweep(now)
            events = self._window(key, window, now)
            if len(events) < limit:
                events.append(now)
                self._expires[key] = max(self._expires.get(key, 0.0), now + window)
                return True, 0
            return False, max(1, math.ceil(events[0] + window - now))

    def ping(self) -> bool:
        return True


# Scripts run atomically on the server and read the server's clock (allowed
# since Redis 5 with effect replication, the only mode in Redis 7).
# Scores are microseconds; members are unique per event (ARGV from the caller).
_ADD_EVENT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window * 1000000)
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
redis.call('EXPIRE', KEYS[1], window)
return redis.call('ZCARD', KEYS[1])
"""

_COUNT_EVENTS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[1]) * 1000000), '+inf')
"""

# PTTL: -2 for a missing key, -1 for one without expiry (locks are never set so)
_LONGEST_LOCK = """
local longest = 0
for _, key in ipairs(KEYS) do
  local remaining = redis.call('PTTL', key)
  if remaining > longest then longest = remaining end
end
return longest
"""

_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window * 1000000)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('EXPIRE', KEYS[1], window)
  return {1, 0}
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
local retry = math.ceil((oldest + window * 1000000 - now) / 1000000)
if retry < 1 then retry = 1 end
return {0, retry}
"""


def _member() -> str:
    return secrets.token_hex(8)


def connect_redis(url: str, *, timeout: float = 0.5) -> redis.Redis:
    """A Redis client for counters: short timeouts and one immediate retry.

    redis-py's default (10 retries with exponential backoff) would hold a
    login for seconds during an outage before :class:`FallbackStore` can fail
    over; one retry still survives a pooled connection the server closed.
    """
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


class RedisStore:
    """:class:`CounterStore` in Redis; every key is ``prefix + key``.

    Each mutating operation is a single command or Lua script, so concurrent
    workers never lose an update. Redis errors propagate (see :class:`FallbackStore`).
    One Redis server, not a cluster: :meth:`locked_for` reads keys of any slot in one script.
    """

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._add_event = client.register_script(_ADD_EVENT)
        self._count_events = client.register_script(_COUNT_EVENTS)
        self._hit = client.register_script(_HIT)
        self._longest_lock = client.register_script(_LONGEST_LOCK)

    def _k(self, key: str) -> str:
        return self.prefix + key

    def add_failure(self, key: str, window: int) -> int:
        return int(self._add_event(keys=[self._k(key)], args=[window, _member(), MAX_EVENTS_PER_KEY]))

    def failures(self, key: str, window: int) -> int:
        return int(self._count_events(keys=[self._k(key)], args=[window]))

    def clear(self, key: str) -> None:
        self.client.delete(self._k(key))

    def lock(self, key: str, seconds: int) -> None:
        self.client.set(self._k(key), b"1", ex=seconds)

    def locked_for(self, *keys: str) -> int:
        # the script answers 0 when no key holds a lock
        return math.ceil(int(self._longest_lock(keys=[self._k(key) for key in keys])) / 1000)

    def unlock(self, key: str) -> None:
        self.client.delete(self._k(key))

    def incr_lock_count(self, key: str, ttl: int) -> int:
        return self.add_failure(key, ttl)

    def hit(self, key: str, limit: int, window: int) -> tuple[bool, int]:
        allowed, retry_after = self._hit(keys=[self._k(key)], args=[limit, window, _member()])
        return bool(int(allowed)), int(retry_after)

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False


class EventLogger(Protocol):
    """The part of a structlog logger this module uses."""

    def warning(self, event: str, **kw: Any) -> Any: ...

    def info(self, event: str, **kw: Any) -> Any: ...


_UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, ConnectionError, TimeoutError)


class FallbackStore:
    """Redis when reachable, else the in-process store (see the module docstring).

    After a connection error or timeout, calls go to ``fallback`` for
    ``retry_after`` seconds before Redis is tried again. Counters do not
    migrate between the two: an outage starts the in-process counts at zero.
    Build the primary's client with :func:`connect_redis` so that an outage
    costs one short timeout, not redis-py's default retry schedule.
    """

    def __init__(
        self,
        primary: RedisStore,
        fallback: MemoryStore,
        logger: EventLogger | None = None,
        *,
        retry_after: float = 5.0,
        warn_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self._log: EventLogger = logger if logger is not None else structlog.get_logger(__name__)
        self._retry_after = retry_after
        self._warn_every = warn_every
        self._clock = clock
        self._mutex = threading.Lock()
        self._degraded = False
        self._retry_at = 0.0
        self._warned_at: float | None = None

    @property
    def degraded(self) -> bool:
        """True while counters are served in-process because Redis is unreachable."""
        return self._degraded

    def _call(self, name: str, *args: Any) -> Any:
        if self._degraded and self._clock() < self._retry_at:
            metrics.record.redis_fallback("counters")
            return getattr(self.fallback, name)(*args)
        try:
            result = getattr(self.primary, name)(*args)
        except _UNAVAILABLE as exc:
            self._failed(exc)
            metrics.record.redis_fallback("counters")
            return getattr(self.fallback, name)(*args)
        if self._degraded:
            self._recovered()
        return result

    def _failed(self, exc: BaseException) -> None:
        with self._mutex:
            now = self._clock()
            self._degraded = True
            self._retry_at = now + self._retry_after
            if self._warned_at is not None and now - self._warned_at < self._warn_every:
                return
            self._warned_at = now
        self._log.warning(
            "redis_unavailable_fallback", error=type(exc).__name__, retry_in=self._retry_after
        )

    def _recovered(self) -> None:
        with self._mutex:
            if not self._degraded:
                return
            self._degraded = False
            self._warned_at = None
        self._log.info("redis_recovered")

    def add_failure(self, key: str, window: int) -> int:
        return int(self._call("add_failure", key, window))

    def failures(self, key: str, window: int) -> int:
        return int(self._call("failures", key, window))

    def clear(self, key: str) -> None:
        self._call("clear", key)

    def lock(self, key: str, seconds: int) -> None:
        self._call("lock", key, seconds)

    def locked_for(self, *keys: str) -> int:
        return int(self._call("locked_for", *keys))

    def unlock(self, key: str) -> None:
        self._call("unlock", key)

    def incr_lock_count(self, key: str, ttl: int) -> int:
        return int(self._call("incr_lock_count", key, ttl))

    def hit(self, key: str, limit: int, window: int) -> tuple[bool, int]:
        allowed, retry_after = self._call("hit", key, limit, window)
        return bool(allowed), int(retry_after)

    def ping(self) -> bool:
        """Probe Redis now (ignoring the retry delay); True when Redis or the fallback serves.

        Updates :attr:`degraded`, so ``/health`` can call it to get a fresh answer.
        """
        if self.primary.ping():
            if self._degraded:
                self._recovered()
            return True
        self._failed(redis.ConnectionError("ping failed"))
        return self.fallback.ping()


def _hasher(settings: Settings) -> Callable[[str], str]:
    secret = settings.secret_key.get()
    if secret:
        return SecretBox(secret).keyed_hash
    # No secret configured (library use, tests): still never put the identifier in clear.
    return lambda value: hashlib.sha256(value.encode()).hexdigest()


class Lockout:
    """Per-account and per-IP temporary lockout after repeated failures.

    Account: ``lockout_account_threshold`` failures within ``lockout_window``
    seconds lock the account, so attempt number threshold + 1 is refused. The
    lock lasts ``lockout_base_duration * 2**(n-1)`` seconds, capped at
    ``lockout_max_duration``, where ``n`` counts the account's locks in the
    last 24 hours. Each lock resets the failure count, so after it expires the
    next lock needs another threshold of failures. IP: the same with
    ``lockout_ip_threshold``. Callers pass the same normalised account key
    for existing and unknown users, so a locked account and a locked unknown
    name answer alike.
    """

    def __init__(self, settings: Settings, store: CounterStore) -> None:
        self.settings = settings
        self.store = store
        self._hash = _hasher(settings)

    def _keys(self, kind: str, value: str) -> tuple[str, str, str]:
        base = f"lockout:{kind}:{self._hash(value)}"
        return f"{base}:failures", f"{base}:lock", f"{base}:locks"

    def check(self, account_key: str | None, ip: str) -> int:
        """Seconds until an attempt for this account from this IP is allowed (0 = allowed)."""
        locks = [self._keys("ip", ip)[1]]
        if account_key is not None:
            locks.append(self._keys("acct", account_key)[1])
        return self.store.locked_for(*locks)

    def register_failure(self, account_key: str | None, ip: str) -> int:
        """Count one failed attempt; return the lock seconds now in force (0 if none)."""
        s = self.settings
        wait = self._count(self._keys("ip", ip), s.lockout_ip_threshold, "ip")
        if account_key is not None:
            wait = max(wait, self._count(self._keys("acct", account_key), s.lockout_account_threshold, "account"))
        return wait

    def _count(self, keys: tuple[str, str, str], threshold: int, kind: str) -> int:
        failures_key, lock_key, locks_key = keys
        s = self.settings
        count = self.store.add_failure(failures_key, s.lockout_window)
        if count < threshold:
            return self.store.locked_for(lock_key)
        if count > threshold:
            # A concurrent failure reached the threshold first and has (or is about to
            # have) set the lock; counting a second lock would double its duration.
            current = self.store.locked_for(lock_key)
            if current:
                return current
        locks = self.store.incr_lock_count(locks_key, LOCK_COUNT_TTL)
        duration: int = min(s.lockout_base_duration * 2 ** min(locks - 1, 32), s.lockout_max_duration)
        self.store.lock(lock_key, duration)
        self.store.clear(failures_key)
        metrics.record.lockout(kind)
        return duration

    def register_success(self, account_key: str) -> None:
        """Reset the account's failure count (its recent lock count stays)."""
        self.store.clear(self._keys("acct", account_key)[0])

    def unlock(self, account_key: str) -> None:
        """Clear failures, the lock and the lock count (``authserver users unlock``)."""
        self._reset(self._keys("acct", account_key))

    def unlock_ip(self, ip: str) -> None:
        """Clear an IP's failures, lock and lock count."""
        self._reset(self._keys("ip", ip))

    def _reset(self, keys: tuple[str, str, str]) -> None:
        failures_key, lock_key, locks_key = keys
        self.store.clear(failures_key)
        self.store.unlock(lock_key)
        self.store.clear(locks_key)


class RateLimiter:
    """Request budgets per bucket (sliding window log, see :meth:`CounterStore.hit`).

    Buckets: ``login``, ``token``, ``introspection``, ``registration``, sized by
    ``settings.rate_limit_<bucket>``. Everything is allowed when
    ``settings.rate_limits`` is False (``AUTHSERVER_RATE_LIMITS=off``). A refusal
    maps to HTTP 429 with ``Retry-After`` (RFC 6585 §4).
    """

    BUCKETS = ("login", "token", "introspection", "registration")

    def __init__(self, settings: Settings, store: CounterStore) -> None:
        self.settings = settings
        self.store = store
        self._hash = _hasher(settings)
        self._limits: dict[str, RateLimit] = {
            bucket: getattr(settings, f"rate_limit_{bucket}") for bucket in self.BUCKETS
        }

    def check(self, bucket: str, key: str) -> tuple[bool, int]:
        """Spend one request of ``key`` in ``bucket``; return ``(allowed, retry_after_seconds)``.

        Raises :class:`KeyError` for an unknown bucket (a programming error).
        """
        limit = self._limits[bucket]
        if not self.settings.rate_limits:
            return True, 0
        allowed, retry_after = self.store.hit(f"ratelimit:{bucket}:{self._hash(key)}", limit.limit, limit.window)
        if not allowed:
            metrics.record.rate_limited(bucket)
        return allowed, retry_after


class ClientAuthFailures:
    """Failed client authentication (RFC 6749 §2.3, §5.2 ``invalid_client``), counted
    by (``client_id``, address) and by address, never by ``client_id`` alone.

    Only failures count, and every key holds the address that failed, so strangers
    guessing a client's secret fill their own buckets: the client, authenticating
    correctly from its own address, is never refused because of them (issue 10).
    While a bucket is full, requests that fall in it are refused before the secret
    is checked, which bounds guessing per address. Failures age out of the sliding
    window (a success does not clear them: that would cost a write on the hot path).
    Sized by ``rate_limit_client_auth_failures`` (per pair) and
    ``rate_limit_client_auth_failures_ip`` (per address); off with ``rate_limits``.
    """

    def __init__(self, settings: Settings, store: CounterStore) -> None:
        self.settings = settings
        self.store = store
        self._hash = _hasher(settings)

    def _keys(self, client_id: str | None, ip: str) -> list[tuple[str, RateLimit]]:
        s = self.settings
        keys = [(f"authfail:ip:{self._hash(ip)}", s.rate_limit_client_auth_failures_ip)]
        if client_id:
            keys.append((f"authfail:pair:{self._hash(f'{client_id} {ip}')}", s.rate_limit_client_auth_failures))
        return keys

    def retry_after(self, client_id: str | None, ip: str) -> int:
        """Seconds to wait (an upper bound: the window) when a bucket is full, else 0."""
        if not self.settings.rate_limits:
            return 0
        for key, limit in self._keys(client_id, ip):
            if self.store.failures(key, limit.window) >= limit.limit:
                return limit.window
        return 0

    def failed(self, client_id: str | None, ip: str) -> None:
        if not self.settings.rate_limits:
            return
        for key, limit in self._keys(client_id, ip):
            self.store.add_failure(key, limit.window)
