"""The account lockout is shared by server processes through Redis.

Two real uvicorn processes share one Postgres database and one Redis key
prefix; five wrong passwords spread across them lock the account in both, so
the right password is then refused by each (docs/decisions.md "Lockout").
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.flows import form_value

FAILED = "Invalid username or password."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
    env.update({
        "AUTHSERVER_ISSUER": settings.issuer,
        "AUTHSERVER_DATABASE_URL": settings.database_url,
        "AUTHSERVER_REDIS_URL": settings.redis_url,
        "AUTHSERVER_REDIS_PREFIX": settings.redis_prefix,
        "AUTHSERVER_KEYS_DIR": str(settings.keys_dir),
        "AUTHSERVER_DATA_DIR": str(settings.data_dir),
        "AUTHSERVER_SECRET_KEY": settings.secret_key.get(),
        "AUTHSERVER_ARGON2_TIME_COST": str(settings.argon2_time_cost),
        "AUTHSERVER_ARGON2_MEMORY_COST": str(settings.argon2_memory_cost),
        "AUTHSERVER_ARGON2_PARALLELISM": str(settings.argon2_parallelism),
        "AUTHSERVER_KEY_ACTIVATION_DELAY": "0",
        "AUTHSERVER_RATE_LIMITS": "off",
        "AUTHSERVER_LOG_LEVEL": "warning",
    })
    return env


@pytest.fixture
def servers(settings, ctx) -> Iterator[list[str]]:
    procs, urls = [], []
    try:
        for _ in range(2):
            port = _free_port()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "authserver.app:app_from_env",
                 "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
                env=_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            urls.append(f"http://127.0.0.1:{port}")
        for proc, url in zip(procs, urls, strict=True):
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"server exited: {proc.stderr.read().decode()[-2000:]}")
                try:
                    if httpx.get(url + "/health", timeout=1).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("server did not start in 30 s")
                time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stderr.close()


def _attempt(url: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=url, follow_redirects=False) as browser:
        page = browser.get("/login")
        return browser.post("/login", data={"csrf_token": form_value(page.text, "csrf_token"), "rid": "",
                                            "username": "alice", "password": password})


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres"])
def test_sixth_attempt_is_locked_across_two_processes(servers, settings, make_user):
    make_user()
    a, b = servers
    assert _attempt(a, PASSWORD).status_code == 303  # both serve the same account
    threshold = settings.lockout_account_threshold
    assert threshold == 5
    for i in range(threshold):  # 3 failures on one process, 2 on the other
        r = _attempt((a, b)[i % 2], f"wrong password {i}")
        assert r.status_code == 200 and FAILED in r.text
    for url in (a, b):
        r = _attempt(url, PASSWORD)
        assert r.status_code == 200 and FAILED in r.text, "the right password must be refused while locked"
