"""The permission vocabulary: grammar, the built-in role → permission mapping
(as the migration seeds it, on both databases), the audience filter, and
``permissions_for``."""

from __future__ import annotations

import pytest

from authserver.db import transaction
from authserver.roles import service as roles
from authserver.roles.permissions import (
    ADMIN_PERMISSIONS,
    ADMIN_SCOPE,
    BUILT_IN_ROLES,
    admin_permission,
    concerning,
    is_permission,
    is_prefix,
    permissions_for,
)

ALL_ADMIN = {
    "admin:users:read", "admin:users:write", "admin:clients:read", "admin:clients:write",
    "admin:keys:read", "admin:keys:write", "admin:consents:read", "admin:consents:write",
    "admin:registration_tokens:read", "admin:registration_tokens:write",
    "admin:deny_list:read", "admin:deny_list:write", "admin:audit:read",
    "admin:roles:read", "admin:roles:write", "admin:sessions:read", "admin:sessions:write",
}
ALL_ADMIN_READ = {p for p in ALL_ADMIN if p.endswith(":read")}

# role → (permissions it has, a sample it must not have)
BUILT_IN = {
    "admin": (ALL_ADMIN, set()),
    "auditor": (ALL_ADMIN_READ, ALL_ADMIN - ALL_ADMIN_READ),
    "support": ({"admin:users:read", "admin:users:write", "admin:sessions:read", "admin:sessions:write"},
                {"admin:clients:read", "admin:keys:write", "admin:roles:write", "admin:audit:read"}),
}


def test_the_admin_vocabulary_is_the_issue_list():
    assert set(ADMIN_PERMISSIONS) == ALL_ADMIN and len(ADMIN_PERMISSIONS) == len(ALL_ADMIN)


@pytest.mark.parametrize("role", BUILT_IN)
def test_built_in_mapping_in_code(role):
    has, lacks = BUILT_IN[role]
    assert set(BUILT_IN_ROLES[role].permissions) == has
    assert not lacks & has


@pytest.mark.parametrize("role", BUILT_IN)
def test_built_in_roles_as_seeded(db, role):
    """What the migration (or the test reset) put in the database is the mapping above."""
    row = roles.require_role(db, role)
    assert row.built_in is True
    assert set(row.permissions) == BUILT_IN[role][0]


@pytest.mark.parametrize(("value", "valid"), [
    ("orders:read", True), ("admin:users:read", True), ("a:b:c:d:e", True), ("api-v2.x:item_1:read", True),
    ("orders", False), ("Orders:read", False), ("orders:*", False), ("orders::read", False),
    (":read", False), ("orders:read:", False), ("a:b:c:d:e:f", False), ("orders read", False),
    ("orders:read\n", False), ("orders:" + "x" * 199, False), ("", False), ("é:read", False),
])
def test_permission_grammar(value, valid):
    assert is_permission(value) is valid


@pytest.mark.parametrize(("value", "valid"), [
    ("orders", True), ("orders:items", True), ("a:b:c:d", True),
    ("orders:", False), ("a:b:c:d:e", False), ("https://api.example.com", False), ("", False),
])
def test_prefix_grammar(value, valid):
    assert is_prefix(value) is valid


@pytest.mark.parametrize(("prefixes", "kept"), [
    ([], []),
    (["orders"], ["orders:items:write", "orders:read"]),
    (["orders:items"], ["orders:items:write"]),
    (["billing", "orders"], ["billing:read", "orders:items:write", "orders:read"]),
    (["order"], []),  # whole segments only: not ``orders:…``
    (["admin"], ["admin:users:read"]),
])
def test_concerning_keeps_whole_segment_prefixes(prefixes, kept):
    held = {"orders:read", "orders:items:write", "ordersx:read", "billing:read", "admin:users:read"}
    assert concerning(held, prefixes) == kept


def test_admin_permission_refuses_unknown_words():
    assert admin_permission("audit", "read") == "admin:audit:read"
    with pytest.raises(ValueError):
        admin_permission("audit", "write")
    with pytest.raises(KeyError):
        admin_permission("nope", "read")


@pytest.mark.parametrize(("roles_held", "expected"), [
    ([], set()),
    (["auditor"], ALL_ADMIN_READ),
    (["support", "auditor"], ALL_ADMIN_READ | BUILT_IN["support"][0]),
    (["admin"], ALL_ADMIN),
    (["custom"], {"orders:read"}),
])
def test_permissions_for_a_user(ctx, make_user, roles_held, expected):
    with transaction(ctx.sessions) as db:
        roles.create_role(db, "custom", permissions=["orders:read"], actor="test")
    user = make_user(roles=roles_held)
    with transaction(ctx.sessions) as db:
        assert permissions_for(db, user_id=user.id) == expected


def test_permissions_for_unknown_or_disabled_user_is_empty(ctx, make_user):
    user = make_user(roles=["admin"])
    with transaction(ctx.sessions) as db:
        assert permissions_for(db, user_id="no-such-user") == frozenset()
        db.get(type(user), user.id).disabled = True
    with transaction(ctx.sessions) as db:
        assert permissions_for(db, user_id=user.id) == frozenset()


def test_permissions_for_needs_exactly_one_principal(db):
    with pytest.raises(ValueError):
        permissions_for(db)
    with pytest.raises(ValueError):
        permissions_for(db, user_id="u", client_id="c")


CLIENTS = {
    # registered scope, assigned roles → permissions
    "admin scope, no role: built-in admin": (f"{ADMIN_SCOPE} api", [], ALL_ADMIN),
    "admin scope and a role: only the role": (ADMIN_SCOPE, ["auditor"], ALL_ADMIN_READ),
    "no admin scope, no role: nothing": ("api", [], set()),
    "no admin scope, a role: the role": ("api", ["support"], BUILT_IN["support"][0]),
}


@pytest.mark.parametrize(("scope", "assigned", "expected"), CLIENTS.values(), ids=CLIENTS.keys())
def test_permissions_for_a_client(ctx, make_client, scope, assigned, expected):
    cid, _ = make_client(grant_types=["client_credentials"], redirect_uris=[], scope=scope)
    with transaction(ctx.sessions) as db:
        from authserver.clients.service import get_client

        roles.set_client_roles(db, get_client(db, cid), assigned, actor="test")
    with transaction(ctx.sessions) as db:
        assert permissions_for(db, client_id=cid) == expected
        assert permissions_for(db, client_id="unknown") == frozenset()


def test_the_admin_client_default_follows_edits_of_the_admin_role(ctx, make_client):
    cid, _ = make_client(grant_types=["client_credentials"], redirect_uris=[], scope=ADMIN_SCOPE)
    with transaction(ctx.sessions) as db:
        roles.revoke_permission(db, "admin", "admin:keys:write", actor="test")
    with transaction(ctx.sessions) as db:
        assert permissions_for(db, client_id=cid) == ALL_ADMIN - {"admin:keys:write"}
