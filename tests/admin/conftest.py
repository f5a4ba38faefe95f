"""Admin API fixtures: tokens from real ``client_credentials`` and code flows, each
holding exactly the permissions a test gives it through a role."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from authserver.db import transaction
from authserver.oauth.vocabulary import ADMIN_SCOPE


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """A key directory per test: key rotation through the API must not reach other tests."""
    path = tmp_path / "keys"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def client_token(ctx: Any, client: Any, make_client: Any) -> Any:
    """``client_token(permissions=None, roles=None, scope=ADMIN_SCOPE)``: the access token of a
    new ``client_credentials`` client registered with ``scope``. ``permissions`` makes a
    role holding exactly them; ``roles`` names existing roles; neither: the client has no
    role (so the ``authserver:admin`` default gives it ``admin``)."""
    from authserver.clients.service import get_client
    from authserver.roles.service import create_role, set_client_roles

    def make(permissions: Iterable[str] | None = None, roles: list[str] | None = None,
             scope: str = ADMIN_SCOPE) -> str:
        cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope=scope)
        held = list(roles or [])
        with transaction(ctx.sessions) as db:
            if permissions is not None:
                name = f"test-{secrets.token_hex(4)}"
                create_role(db, name, permissions=permissions, actor="test")
                held.append(name)
            if held:
                found = get_client(db, cid)
                assert found is not None
                set_client_roles(db, found, held, actor="test")
        response = client.post("/token", data={"grant_type": "client_credentials", "scope": scope},
                               auth=(cid, secret))
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    return make


@pytest.fixture
def admin(client_token: Any) -> dict[str, str]:
    """Headers of a client holding the built-in ``admin`` role."""
    return {"Authorization": f"Bearer {client_token(roles=['admin'])}"}
