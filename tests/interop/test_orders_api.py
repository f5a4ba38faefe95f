"""``examples/orders_api.py`` against the live server: the API of docs/roles.md
decides from the permissions our access tokens carry for its audience."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from authserver.clients.service import get_client
from authserver.db import transaction
from authserver.roles import service as roles
from examples.orders_api import create_app
from examples.resource_server import Validator
from tests.conftest import PASSWORD
from tests.interop.conftest import Live, ServerThread, free_port

pytestmark = pytest.mark.interop
AUDIENCE = "orders-api"


@pytest.fixture
def setup(live: Live) -> Iterator[dict[str, Any]]:
    with transaction(live.ctx.sessions) as db:
        roles.create_role(db, "clerk", permissions=["orders:read", "billing:read"], actor="test")
        roles.create_role(db, "manager", permissions=["orders:read", "orders:write"], actor="test")
    live.make_user("alice", roles=["clerk"])
    live.make_user("bob", roles=["manager"])
    app = live.make_client(grant_types=["password"], redirect_uris=[], scope="openid roles",
                           audience=[AUDIENCE], permission_prefixes=["orders"])
    # a client for another API, whose tokens are not for this one
    billing = live.make_client(grant_types=["password"], redirect_uris=[], scope="openid roles",
                               audience=["billing-api"], permission_prefixes=["billing"])
    robot = live.make_client(grant_types=["client_credentials"], redirect_uris=[], scope="roles",
                             audience=[AUDIENCE], permission_prefixes=["orders"])
    with transaction(live.ctx.sessions) as db:
        roles.set_client_roles(db, get_client(db, robot[0]), ["manager"], actor="test")
    port = free_port()
    server = ServerThread(create_app(Validator(live.url, audience=AUDIENCE)), port)
    server.start()
    try:
        yield {"api": f"http://127.0.0.1:{port}", "app": app, "billing": billing, "robot": robot}
    finally:
        server.stop()


def user_token(live: Live, client: tuple[str, str], username: str, scope: str = "openid roles") -> str:
    with live.http() as http:
        r = http.post("/token", data={"grant_type": "password", "username": username, "password": PASSWORD,
                                      "scope": scope}, auth=client)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def call(api: str, method: str, token: str) -> httpx.Response:
    return httpx.request(method, f"{api}/orders", headers={"authorization": f"Bearer {token}"}, timeout=10)


@pytest.mark.parametrize(("username", "get", "post"), [("alice", 200, 403), ("bob", 200, 201)])
def test_each_route_needs_its_permission(live, setup, username, get, post):
    token = user_token(live, setup["app"], username)
    assert call(setup["api"], "GET", token).status_code == get
    r = call(setup["api"], "POST", token)
    assert r.status_code == post
    if post == 403:
        assert r.json()["error"] == "insufficient_scope" and "orders:write" in r.json()["error_description"]


def test_without_the_roles_scope_nothing_is_allowed(live, setup):
    token = user_token(live, setup["app"], "bob", scope="openid")
    assert call(setup["api"], "GET", token).status_code == 403


def test_another_apis_token_is_refused(live, setup):
    token = user_token(live, setup["billing"], "bob")
    r = call(setup["api"], "GET", token)
    assert r.status_code == 401 and "audience" in r.headers["www-authenticate"].lower()


def test_a_client_with_its_own_role(live, setup):
    with live.http() as http:
        r = http.post("/token", data={"grant_type": "client_credentials", "scope": "roles"}, auth=setup["robot"])
    assert r.status_code == 200, r.text
    assert call(setup["api"], "POST", r.json()["access_token"]).status_code == 201
