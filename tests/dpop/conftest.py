"""A live server for the DPoP tests: uvicorn on a free 127.0.0.1 port, once per module and
backend (SQLite; Postgres + Redis), so proofs name a real ``htu`` and travel over HTTP."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authserver.app import create_app
from authserver.context import Context
from tests.conftest import _wipe, make_settings
from tests.interop.conftest import Live, ServerThread, free_port


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    if request.param == "sqlite":
        database_url, redis_url = request.getfixturevalue("sqlite_url"), None
    else:
        database_url = request.getfixturevalue("postgres_url")
        redis_url = request.getfixturevalue("redis_url")
    port = free_port()
    base: Path = tmp_path_factory.mktemp("dpop")
    keys_dir = base / "keys"
    keys_dir.mkdir(mode=0o700)
    settings = make_settings(issuer=f"http://127.0.0.1:{port}", database_url=database_url, redis_url=redis_url,
                             redis_prefix=f"authserver-test:{secrets.token_hex(6)}:", keys_dir=keys_dir,
                             data_dir=base / "data")
    ctx = Context(settings)
    ctx.keys.ensure_key()
    server = ServerThread(create_app(settings, context=ctx), port)
    try:
        server.start()
        yield Live(settings.issuer, ctx, port)
    finally:
        server.stop()
        _wipe(ctx)
        ctx.close()


@pytest.fixture
def http(live: Live) -> Iterator[Any]:
    with live.http() as client:
        yield client
