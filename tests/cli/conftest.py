"""``authserver`` CLI: driven in-process through ``main(argv)`` (and once as a real
console script), configured only through ``AUTHSERVER_*`` variables pointing at
the test database, Redis and a key directory of its own."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from authserver import cli
from authserver.accounts.models import User
from authserver.audit.models import AuditEvent
from authserver.db import transaction


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """Keys of this test only: ``keys rotate`` must not leak into other tests."""
    path = tmp_path / "keys"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def cli_env(settings: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("AUTHSERVER_") and not name.startswith("AUTHSERVER_TEST_"):
            monkeypatch.delenv(name)
    env = {
        "AUTHSERVER_ISSUER": settings.issuer,
        "AUTHSERVER_DATABASE_URL": settings.database_url,
        "AUTHSERVER_REDIS_URL": settings.redis_url or "",
        "AUTHSERVER_REDIS_PREFIX": settings.redis_prefix,
        "AUTHSERVER_KEYS_DIR": str(settings.keys_dir),
        "AUTHSERVER_SECRET_KEY": settings.secret_key.get(),
        "AUTHSERVER_RATE_LIMITS": "off",
        "AUTHSERVER_ARGON2_TIME_COST": "1",
        "AUTHSERVER_ARGON2_MEMORY_COST": "8",
        "AUTHSERVER_ARGON2_PARALLELISM": "1",
        "AUTHSERVER_KEY_ACTIVATION_DELAY": "0",
        "AUTHSERVER_LOG_FORMAT": "json",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def run(cli_env: dict[str, str], ctx: Any, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Any:
    """``run(*argv, stdin=None) -> (status, stdout, stderr)``."""

    def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        status = cli.main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def assert_error(result: tuple[int, str, str], *fragments: str) -> None:
    """Bad input: exit 2 and one ``error:`` line naming the problem, no trace."""
    status, out, err = result
    assert status == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def audit_events(ctx: Any, event: str) -> list[AuditEvent]:
    with transaction(ctx.sessions) as db:
        return list(db.scalars(sa.select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id)))


def get_user(ctx: Any, username: str) -> User | None:
    with transaction(ctx.sessions) as db:
        return db.scalar(sa.select(User).where(User.username == username))
