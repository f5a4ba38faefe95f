"""Locked, unknown and wrong-password logins look alike: same status, same page
(apart from the CSRF token and the echoed login name) and the same time.

Timing is a property test with the real Argon2 parameters: 30 interleaved
tries of each kind, medians within 25% of each other. The lockout is reset
between tries (outside the timed part) so every try takes its intended path.
"""

from __future__ import annotations

import re
import statistics
import time

import pytest

from authserver.settings import Settings
from tests.flows import form_value

TRIES = 30
TOLERANCE = 0.25
DEFAULTS = Settings()


@pytest.fixture
def settings_overrides():
    return {"argon2_time_cost": DEFAULTS.argon2_time_cost, "argon2_memory_cost": DEFAULTS.argon2_memory_cost,
            "argon2_parallelism": DEFAULTS.argon2_parallelism, "lockout_base_duration": 3600,
            "lockout_max_duration": 3600}


def _normalise(html: str, login: str) -> str:
    html = re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', html)
    return html.replace(f'value="{login}"', 'value=""')


@pytest.mark.slow
def test_locked_unknown_and_wrong_password_are_indistinguishable(client, ctx, make_user):
    alice = make_user("alice")
    bob = make_user("bob")
    for _ in range(ctx.settings.lockout_account_threshold):
        ctx.lockout.register_failure(f"user:{bob.id}", "192.0.2.1")
    assert ctx.lockout.check(f"user:{bob.id}", "testclient") > 0
    cases = {"wrong": ("alice", "not the password"), "unknown": ("nobody", "not the password"),
             "locked": ("bob", "correct horse battery staple")}
    times: dict[str, list[float]] = {k: [] for k in cases}
    bodies: dict[str, set[str]] = {k: set() for k in cases}
    token = form_value(client.get("/login").text, "csrf_token")
    for i in range(TRIES + 1):
        for kind, (login, password) in cases.items():
            started = time.perf_counter()
            r = client.post("/login", data={"csrf_token": token, "rid": "", "username": login,
                                            "password": password})
            elapsed = time.perf_counter() - started
            assert r.status_code == 200, (kind, r.status_code)
            bodies[kind].add(_normalise(r.text, login))
            if i:  # the first round warms up caches
                times[kind].append(elapsed)
            # keep each case on its path: clear what the failure counted (not timed)
            ctx.lockout.unlock(f"user:{alice.id}")
            ctx.lockout.unlock("login:nobody")
            ctx.lockout.unlock_ip("testclient")
    assert len({b for v in bodies.values() for b in v}) == 1, "the pages differ"
    medians = {k: statistics.median(v) for k, v in times.items()}
    low, high = min(medians.values()), max(medians.values())
    assert high <= low * (1 + TOLERANCE), {k: round(v * 1000, 1) for k, v in medians.items()}
