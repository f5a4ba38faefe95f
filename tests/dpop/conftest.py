"""A live server for the DPoP tests: uvicorn on a free 127.0.0.1 port, once per module and
backend (SQLite; Postgres + Redis), so proofs name a real ``htu`` and travel over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.interop.conftest import Live, serve_live


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    if request.param == "sqlite":
        database_url, redis_url = request.getfixturevalue("sqlite_url"), None
    else:
        database_url = request.getfixturevalue("postgres_url")
        redis_url = request.getfixturevalue("redis_url")
    with serve_live(tmp_path_factory.mktemp("dpop"), database_url=database_url, redis_url=redis_url) as server:
        yield server


@pytest.fixture
def http(live: Live) -> Iterator[Any]:
    with live.http() as client:
        yield client
