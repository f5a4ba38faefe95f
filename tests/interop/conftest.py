"""A live server for the interop tests: uvicorn on a free 127.0.0.1 port, Postgres + Redis.

``live`` starts ``create_app`` in a uvicorn thread against the session's
Postgres database and Redis (the ``postgres`` backend only: third-party
clients talk to it over real sockets), with a signing-key directory of its
own so that key rotation never leaks into other tests. Override settings with
the ``live_overrides`` fixture in a module. Rows and Redis keys are wiped
afterwards, as the shared fixtures do.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from authserver.app import create_app
from authserver.context import Context
from authserver.db import transaction
from tests.conftest import PASSWORD, _wipe, ensure_roles, make_settings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """uvicorn in a daemon thread; ``stop`` asks it to exit and waits."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                loop="asyncio", http="h11", ws="none", lifespan="on",
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{port}", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class Live:
    url: str
    ctx: Context
    port: int

    def make_user(self, username: str = "alice", password: str = PASSWORD, **kw: Any) -> Any:
        from authserver.accounts.service import create_user

        kw.setdefault("email", f"{username}@example.com")
        kw.setdefault("name", "Alice Example")
        roles = kw.pop("roles", None) or []
        with transaction(self.ctx.sessions) as session:
            ensure_roles(session, roles)
            return create_user(session, self.ctx.passwords, username=username, password=password,
                               roles=roles, **kw)

    def make_client(self, **kw: Any) -> tuple[str, str | None]:
        from authserver.clients.service import create_client

        kw.setdefault("client_name", "Interop RP")
        kw.setdefault("grant_types", ["authorization_code", "refresh_token"])
        kw.setdefault("scope", "openid profile email offline_access roles")
        with transaction(self.ctx.sessions) as session:
            new = create_client(session, self.ctx.box, **kw)
            return new.client.client_id, new.client_secret

    def http(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=10, **kw)


@pytest.fixture
def live_overrides() -> dict[str, Any]:
    """Override in a module to change the live server's settings."""
    return {}


@contextlib.contextmanager
def serve_live(base: Path, *, database_url: str, redis_url: str | None, host: str = "127.0.0.1",
               **overrides: Any) -> Iterator[Live]:
    """``create_app`` served by uvicorn on a free port of 127.0.0.1, its issuer named with
    ``host`` (``localhost`` for WebAuthn), with keys and data under ``base`` and a Redis
    prefix of its own; rows and Redis keys are wiped when it stops."""
    port = free_port()
    keys_dir = base / "keys"
    keys_dir.mkdir(mode=0o700)
    settings = make_settings(
        issuer=f"http://{host}:{port}",
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=f"authserver-test:{secrets.token_hex(6)}:",
        keys_dir=keys_dir,
        data_dir=base / "data",
        **overrides,
    )
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
def live(postgres_url: str, redis_url: str, tmp_path: Path, live_overrides: dict[str, Any]) -> Iterator[Live]:
    with serve_live(tmp_path, database_url=postgres_url, redis_url=redis_url, **live_overrides) as server:
        yield server
