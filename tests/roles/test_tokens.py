"""Roles and permissions in tokens (RFC 9068 §2.2.3.1): asked for with the ``roles``
scope; access tokens carry only the permissions under the client's
``permission_prefixes``; ID token and userinfo carry roles only when asked;
``client_credentials`` tokens carry the client's own roles; introspection
returns them."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event as sa_event

from authserver.accounts.service import get_user
from authserver.clients.service import get_client
from authserver.db import transaction
from authserver.roles import service as roles
from authserver.roles.permissions import ADMIN_PERMISSIONS, ADMIN_SCOPE
from tests.conftest import PASSWORD
from tests.flows import bearer, introspect, refresh, tokens, unverified

HELD = ["billing:read", "orders:items:write", "orders:read"]


@pytest.fixture
def alice(ctx, make_user):
    with transaction(ctx.sessions) as db:
        roles.create_role(db, "clerk", permissions=["orders:read", "orders:items:write"], actor="test")
        roles.create_role(db, "accountant", permissions=["billing:read"], actor="test")
    return make_user(roles=["clerk", "accountant"])


def password_token(client, cid, secret, scope):
    response = client.post("/token", data={"grant_type": "password", "username": "alice",
                                           "password": PASSWORD, "scope": scope}, auth=(cid, secret))
    assert response.status_code == 200, response.text
    return response.json()


AUDIENCES = {
    # the client's permission_prefixes → entitlements in its access tokens
    "orders API": (["orders"], ["orders:items:write", "orders:read"]),
    "order items only": (["orders:items"], ["orders:items:write"]),
    "billing API": (["billing"], ["billing:read"]),
    "both": (["billing", "orders"], HELD),
    "no prefixes: no permissions": ([], []),
    "a prefix nobody holds": (["shipping"], []),
}


@pytest.mark.parametrize(("prefixes", "expected"), AUDIENCES.values(), ids=AUDIENCES.keys())
def test_access_token_carries_only_the_permissions_of_its_audience(client, make_client, alice, prefixes,
                                                                   expected):
    cid, secret = make_client(grant_types=["password"], redirect_uris=[], scope="openid roles",
                              audience=["https://api.example.com"], permission_prefixes=prefixes)
    claims = unverified(password_token(client, cid, secret, "openid roles")["access_token"])
    assert claims["roles"] == ["accountant", "clerk"]
    assert claims["entitlements"] == expected


def test_no_roles_scope_no_roles_or_permissions(client, make_client, alice):
    cid, secret = make_client(grant_types=["password"], redirect_uris=[], scope="openid roles",
                              permission_prefixes=["orders"])
    body = password_token(client, cid, secret, "openid")
    claims = unverified(body["access_token"])
    assert "roles" not in claims and "entitlements" not in claims
    assert "roles" not in unverified(body["id_token"])


def test_code_flow_roles_in_access_token_and_userinfo_not_in_id_token(client, make_client, alice):
    cid, secret = make_client(skip_consent=True, permission_prefixes=["billing"])
    body = tokens(client, cid, secret, scope="openid roles")
    assert unverified(body["access_token"])["entitlements"] == ["billing:read"]
    assert "roles" not in unverified(body["id_token"])  # OIDC Core §5.4: scope claims go to userinfo
    info = client.get("/userinfo", headers=bearer(body["access_token"])).json()
    assert info == {"sub": alice.id, "roles": ["accountant", "clerk"]}


def test_id_token_carries_roles_when_the_claims_parameter_asks(client, make_client, alice):
    cid, secret = make_client(skip_consent=True)
    asked = json.dumps({"id_token": {"roles": None}})
    body = tokens(client, cid, secret, scope="openid roles", claims=asked)
    assert unverified(body["id_token"])["roles"] == ["accountant", "clerk"]
    # the parameter selects within the granted scope; it never adds roles
    body = tokens(client, cid, secret, scope="openid", claims=asked)
    assert "roles" not in unverified(body["id_token"])


def test_refresh_sees_role_changes(ctx, client, make_client, alice):
    cid, secret = make_client(grant_types=["password", "refresh_token"], redirect_uris=[],
                              scope="openid roles", permission_prefixes=["orders", "billing"])
    body = password_token(client, cid, secret, "openid roles")
    with transaction(ctx.sessions) as db:
        roles.revoke_permission(db, "clerk", "orders:items:write", actor="test")
        roles.set_user_roles(db, get_user(db, alice.id), ["clerk"], actor="test")
    response = refresh(client, cid, secret, body["refresh_token"])
    assert response.status_code == 200, response.text
    claims = unverified(response.json()["access_token"])
    assert (claims["roles"], claims["entitlements"]) == (["clerk"], ["orders:read"])


CLIENT_CREDENTIALS = {
    # registered scope, client roles, prefixes, requested scope → (roles, entitlements) or None
    "own roles": ("api roles", ["clerk"], ["orders"], "api roles", (["clerk"], ["orders:items:write", "orders:read"])),
    "filtered": ("api roles", ["clerk", "accountant"], ["billing"], "roles",
                 (["accountant", "clerk"], ["billing:read"])),
    "not asked": ("api roles", ["clerk"], ["orders"], "api", None),
    "no role": ("api roles", [], ["orders"], "roles", ([], [])),
    "admin client default": (f"{ADMIN_SCOPE} roles", [], ["admin"], f"{ADMIN_SCOPE} roles",
                             (["admin"], sorted(ADMIN_PERMISSIONS))),
    "admin client with a role": (f"{ADMIN_SCOPE} roles", ["auditor"], ["admin:users"], f"{ADMIN_SCOPE} roles",
                                 (["auditor"], ["admin:users:read"])),
}


@pytest.mark.parametrize(("registered", "held", "prefixes", "requested", "expected"),
                         CLIENT_CREDENTIALS.values(), ids=CLIENT_CREDENTIALS.keys())
def test_client_credentials_carry_the_clients_own_roles(ctx, client, make_client, alice, registered, held,
                                                        prefixes, requested, expected):
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope=registered,
                              permission_prefixes=prefixes)
    with transaction(ctx.sessions) as db:
        roles.set_client_roles(db, get_client(db, cid), held, actor="test")
    response = client.post("/token", data={"grant_type": "client_credentials", "scope": requested},
                           auth=(cid, secret))
    assert response.status_code == 200, response.text
    claims = unverified(response.json()["access_token"])
    got = (claims["roles"], claims["entitlements"]) if "roles" in claims else None
    assert got == expected and ("entitlements" in claims) == (expected is not None)


@pytest.mark.parametrize("introspector", ["own client", "resource server"])
def test_introspection_returns_roles_and_permissions(client, make_client, alice, introspector):
    cid, secret = make_client(grant_types=["password"], redirect_uris=[], scope="openid roles",
                              permission_prefixes=["orders"])
    at = password_token(client, cid, secret, "openid roles")["access_token"]
    who = (cid, secret) if introspector == "own client" else make_client(
        grant_types=["client_credentials"], redirect_uris=[], scope="api", introspect_any=True)
    result = introspect(client, *who, at)
    assert result["active"] is True
    assert result["roles"] == ["accountant", "clerk"]
    assert result["entitlements"] == ["orders:items:write", "orders:read"]


def test_introspection_without_roles_scope_has_none(client, make_client, alice):
    cid, secret = make_client(grant_types=["password"], redirect_uris=[], scope="openid roles",
                              permission_prefixes=["orders"])
    result = introspect(client, cid, secret, password_token(client, cid, secret, "openid")["access_token"])
    assert result["active"] is True and "roles" not in result and "entitlements" not in result


@pytest.fixture
def role_queries(ctx):
    """The SQL statements that read roles or permissions, as the app runs them."""
    seen: list[str] = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        if "role_permissions" in statement or "client_roles" in statement:
            seen.append(statement)

    sa_event.listen(ctx.engine, "before_cursor_execute", listen)
    yield seen
    sa_event.remove(ctx.engine, "before_cursor_execute", listen)


def test_a_user_token_reads_roles_and_permissions_in_one_query(client, make_client, alice, role_queries):
    cid, secret = make_client(grant_types=["password"], redirect_uris=[], scope="openid roles",
                              permission_prefixes=["orders"])
    password_token(client, cid, secret, "openid")
    assert role_queries == []  # not asked: not read
    password_token(client, cid, secret, "openid roles")
    assert len(role_queries) == 1


@pytest.mark.parametrize("settings_overrides", [{"client_cache_ttl": 60}])
def test_a_cached_client_reads_its_roles_once(ctx, client, make_client, role_queries):
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="roles",
                              permission_prefixes=["admin"])
    with transaction(ctx.sessions) as db:
        roles.set_client_roles(db, get_client(db, cid), ["auditor"], actor="test")
    role_queries.clear()
    for _ in range(3):
        response = client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))
        assert unverified(response.json()["access_token"])["roles"] == ["auditor"]
    assert len(role_queries) == 1


def test_the_consent_page_says_roles_and_permissions(client, make_client, alice):
    from tests.flows import auth_params, follow, pkce

    cid, _ = make_client()
    _, challenge = pkce()
    page = follow(client, client.get("/authorize", params=auth_params(cid, challenge, scope="openid roles")),
                  consent=None)
    assert 'action="/consent"' in page.text
    assert "See your roles and the permissions they give you" in page.text
