"""``Lockout._count`` when a concurrent failure reached the threshold first: the
lock it set is reported, not doubled (README "Security model", brute force)."""

from __future__ import annotations

from authserver.security.throttle import LOCK_COUNT_TTL, CounterStore, Lockout
from authserver.settings import Settings


def test_failure_past_the_threshold_reports_the_lock_in_force(settings: Settings, store: CounterStore) -> None:
    lockout = Lockout(settings, store)
    failures, lock, locks = lockout._keys("acct", "alice")
    for _ in range(settings.lockout_account_threshold - 1):
        assert lockout.register_failure("alice", "192.0.2.1") == 0
    # a concurrent request adds the threshold-th failure and locks, but has not
    # cleared the counter yet when this one arrives
    store.add_failure(failures, settings.lockout_window)
    store.incr_lock_count(locks, LOCK_COUNT_TTL)
    store.lock(lock, settings.lockout_base_duration)
    assert lockout.register_failure("alice", "192.0.2.1") == settings.lockout_base_duration
    assert 0 < store.locked_for(lock) <= settings.lockout_base_duration
    # the lock count was not bumped: the next lock is the second, not the third
    assert store.incr_lock_count(locks, LOCK_COUNT_TTL) == 2
