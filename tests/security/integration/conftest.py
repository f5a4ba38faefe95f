"""App-level security tests use the root fixtures; ``tests/security/conftest.py``
overrides ``settings`` for the library tests, so restore the app version here."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from authserver.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def settings(request: pytest.FixtureRequest, backend: str, keys_dir: Path, tmp_path: Path,
             settings_overrides: dict[str, Any]) -> Settings:
    if backend == "sqlite":
        db_url, redis_url = request.getfixturevalue("sqlite_url"), None
    else:
        db_url, redis_url = request.getfixturevalue("postgres_url"), request.getfixturevalue("redis_url")
    return make_settings(database_url=db_url, redis_url=redis_url,
                         redis_prefix=f"authserver-test:{secrets.token_hex(6)}:", keys_dir=keys_dir,
                         data_dir=tmp_path / "data", **settings_overrides)
