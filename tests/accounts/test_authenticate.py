"""``accounts.service.authenticate`` and the Argon2 hasher behind it (README
"Security model", credentials at rest)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from authserver.accounts import service as accounts
from authserver.accounts.models import User
from authserver.db import transaction
from authserver.security.passwords import PasswordHasher
from tests.conftest import PASSWORD


def _stored_hash(ctx, user_id: str) -> str:
    with transaction(ctx.sessions) as db:
        return db.get(User, user_id).password_hash


def test_login_rehashes_when_the_argon2_parameters_change(ctx, make_user, monkeypatch):
    user = make_user()
    before = _stored_hash(ctx, user.id)
    assert "$m=8,t=1,p=1$" in before
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    monkeypatch.setattr(ctx, "passwords", stronger)
    with transaction(ctx.sessions) as db:
        assert accounts.authenticate(db, ctx, "alice", PASSWORD, "192.0.2.1").user is not None
    after = _stored_hash(ctx, user.id)
    assert after != before and "$m=16,t=2,p=1$" in after
    assert stronger.verify(after, PASSWORD)
    # a login with the same parameters leaves the hash alone
    with transaction(ctx.sessions) as db:
        assert accounts.authenticate(db, ctx, "alice", PASSWORD, "192.0.2.1").user is not None
    assert _stored_hash(ctx, user.id) == after


def test_wrong_password_does_not_rehash(ctx, make_user, monkeypatch):
    user = make_user()
    before = _stored_hash(ctx, user.id)
    monkeypatch.setattr(ctx, "passwords", PasswordHasher(time_cost=2, memory_cost=16, parallelism=1))
    with transaction(ctx.sessions) as db:
        assert accounts.authenticate(db, ctx, "alice", "not the password", "192.0.2.1").user is None
    assert _stored_hash(ctx, user.id) == before


class _Recorder:
    """Stands in for argon2's hasher and records how many calls overlap."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def _enter(self) -> None:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(0.05)  # long enough for every thread to pile up at the gate
        with self.lock:
            self.running -= 1

    def hash(self, password: str) -> str:
        self._enter()
        return "x"

    def verify(self, stored: str, password: str) -> bool:
        self._enter()
        return True


@pytest.mark.parametrize("method", ["hash", "verify"])
def test_at_most_one_argon2_computation_per_cpu(method):
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    recorder = _Recorder()
    hasher._hasher = recorder  # type: ignore[assignment]
    cpus = len(os.sched_getaffinity(0))
    call = (lambda: hasher.hash("pw")) if method == "hash" else (lambda: hasher.verify("h", "pw"))
    threads = [threading.Thread(target=call) for _ in range(2 * cpus + 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert recorder.peak == cpus
