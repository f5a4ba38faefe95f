"""The roles service: every change validated and audited with its actor."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from authserver.accounts.errors import AccountError
from authserver.accounts.service import create_user, get_user
from authserver.audit.models import AuditEvent
from authserver.clients.service import get_client
from authserver.db import transaction
from authserver.roles import service as roles
from authserver.roles.errors import RoleError, UnknownRole
from tests.conftest import PASSWORD


def events(ctx, kind):
    with transaction(ctx.sessions) as db:
        return [(e.user_id, e.client_id, e.detail) for e in
                db.scalars(select(AuditEvent).where(AuditEvent.event == kind).order_by(AuditEvent.id))]


def test_create_show_list(ctx):
    with transaction(ctx.sessions) as db:
        role = roles.create_role(db, "editor", description=" Edits content ",
                                 permissions=["content:write", "content:read", "content:read"], actor="admin-1")
        assert (role.name, role.description, role.permissions) == ("editor", "Edits content",
                                                                   ["content:read", "content:write"])
    with transaction(ctx.sessions) as db:
        assert [r.name for r in roles.list_roles(db)] == ["admin", "auditor", "editor", "support"]
        assert roles.require_role(db, "editor").built_in is False
    assert events(ctx, "role_created") == [
        (None, None, {"actor": "admin-1", "role": "editor", "permissions": ["content:read", "content:write"]})]


BAD_CREATES = {
    "name with a space": ({"name": "bad role"}, "invalid role name"),
    "empty name": ({"name": ""}, "invalid role name"),
    "trailing newline": ({"name": "editor\n"}, "invalid role name"),
    "long name": ({"name": "r" * 101}, "invalid role name"),
    "bad permission": ({"name": "r", "permissions": ["content"]}, "invalid permission"),
    "wildcard": ({"name": "r", "permissions": ["content:*"]}, "invalid permission"),
    "multi-line description": ({"name": "r", "description": "a\nb"}, "description"),
    "taken": ({"name": "auditor"}, "already exists"),
}


@pytest.mark.parametrize(("kwargs", "message"), BAD_CREATES.values(), ids=BAD_CREATES.keys())
def test_create_refuses_bad_input(ctx, kwargs, message):
    with transaction(ctx.sessions) as db, pytest.raises(RoleError, match=message):
        roles.create_role(db, actor="t", **kwargs)
    assert events(ctx, "role_created") == []


def test_grant_revoke_update(ctx):
    with transaction(ctx.sessions) as db:
        roles.create_role(db, "editor", actor="t")
        assert roles.grant_permission(db, "editor", "content:read", actor="a") is True
        assert roles.grant_permission(db, "editor", "content:read", actor="a") is False
        assert roles.revoke_permission(db, "editor", "content:write", actor="a") is False
        assert roles.revoke_permission(db, "editor", "content:read", actor="a") is True
        with pytest.raises(RoleError, match="invalid permission"):
            roles.grant_permission(db, "editor", "Content:Read", actor="a")
        with pytest.raises(UnknownRole):
            roles.grant_permission(db, "nope", "content:read", actor="a")
        role = roles.update_role(db, "editor", description="Editors", permissions=["b:x", "a:x"], actor="a")
        assert role.permissions == ["a:x", "b:x"] and role.description == "Editors"
    assert [d for _, _, d in events(ctx, "role_permission_granted")] == [
        {"actor": "a", "role": "editor", "permission": "content:read"}]
    assert [d for _, _, d in events(ctx, "role_permission_revoked")] == [
        {"actor": "a", "role": "editor", "permission": "content:read"}]
    assert [d for _, _, d in events(ctx, "role_updated")] == [
        {"actor": "a", "role": "editor", "description": "Editors", "permissions": ["a:x", "b:x"]}]


def test_built_in_roles_are_editable_not_deletable(ctx):
    with transaction(ctx.sessions) as db:
        roles.revoke_permission(db, "support", "admin:sessions:write", actor="a")
        roles.grant_permission(db, "auditor", "reports:read", actor="a")
        with pytest.raises(RoleError, match="built-in"):
            roles.delete_role(db, "admin", actor="a")
    with transaction(ctx.sessions) as db:
        assert "admin:sessions:write" not in roles.require_role(db, "support").permissions
        assert "reports:read" in roles.require_role(db, "auditor").permissions
        assert roles.get_role(db, "admin") is not None
    assert events(ctx, "role_deleted") == []


def test_delete_removes_assignments(ctx, make_user, make_client):
    user = make_user(roles=["editor", "auditor"])
    cid, _ = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    with transaction(ctx.sessions) as db:
        roles.set_client_roles(db, get_client(db, cid), ["editor"], actor="a")
    with transaction(ctx.sessions) as db:
        assert roles.delete_role(db, "editor", actor="admin-1") == (1, 1)
    with transaction(ctx.sessions) as db:
        assert get_user(db, user.id).role_names == ["auditor"]
        assert roles.client_roles(db, cid) == []
        assert roles.get_role(db, "editor") is None
        with pytest.raises(UnknownRole):
            roles.delete_role(db, "editor", actor="a")
    assert [d for _, _, d in events(ctx, "role_deleted")] == [
        {"actor": "admin-1", "role": "editor", "users": 1, "clients": 1}]


def test_set_user_roles(ctx, make_user):
    user = make_user(roles=["support"])
    with transaction(ctx.sessions) as db:
        alice = get_user(db, user.id)
        assert roles.set_user_roles(db, alice, ["auditor", "admin", "auditor"], actor="root") == ["admin", "auditor"]
        assert roles.set_user_roles(db, alice, ["admin", "auditor"], actor="root") == ["admin", "auditor"]
        with pytest.raises(UnknownRole, match="no such role: ghost"):
            roles.set_user_roles(db, alice, ["admin", "ghost"], actor="root")
    with transaction(ctx.sessions) as db:
        assert get_user(db, user.id).role_names == ["admin", "auditor"]
    # an unchanged set is not an event
    assert events(ctx, "user_roles_changed") == [
        (user.id, None, {"actor": "root", "roles": ["admin", "auditor"], "previous": ["support"]})]


def test_set_client_roles(ctx, make_client):
    cid, _ = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    with transaction(ctx.sessions) as db:
        client = get_client(db, cid)
        assert roles.set_client_roles(db, client, ["support"], actor="root") == ["support"]
        assert roles.set_client_roles(db, client, ["auditor", "support"], actor="root") == ["auditor", "support"]
        assert roles.set_client_roles(db, client, ["auditor"], actor="root") == ["auditor"]
        with pytest.raises(UnknownRole):
            roles.set_client_roles(db, client, ["ghost"], actor="root")
    with transaction(ctx.sessions) as db:
        assert roles.client_roles(db, cid) == ["auditor"]
    assert [(c, d["roles"], d["previous"]) for _, c, d in events(ctx, "client_roles_changed")] == [
        (cid, ["support"], []), (cid, ["auditor", "support"], ["support"]), (cid, ["auditor"], ["auditor", "support"])]


def test_permission_prefixes(ctx, make_client):
    cid, _ = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api",
                         permission_prefixes=["orders"])
    with transaction(ctx.sessions) as db:
        client = get_client(db, cid)
        assert client.permission_prefixes == ["orders"]
        assert roles.set_client_permission_prefixes(db, client, ["orders", "billing", "orders"],
                                                    actor="root") == ["orders", "billing"]
        with pytest.raises(RoleError, match="invalid permission prefix"):
            roles.set_client_permission_prefixes(db, client, ["https://api.example.com"], actor="root")
    assert [d for _, _, d in events(ctx, "client_updated")] == [
        {"actor": "root", "permission_prefixes": ["orders", "billing"]}]


def test_a_user_can_only_get_existing_roles(ctx):
    with transaction(ctx.sessions) as db, pytest.raises(AccountError, match="no such role: ghost"):
        create_user(db, ctx.passwords, username="bob", email="bob@example.com", password=PASSWORD,
                    roles=["ghost"])


def test_deleting_a_client_or_user_drops_its_roles(ctx, make_user, make_client):
    from authserver.clients.service import delete_client
    from authserver.roles.models import ClientRole

    user = make_user(roles=["auditor"])
    cid, _ = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    with transaction(ctx.sessions) as db:
        roles.set_client_roles(db, get_client(db, cid), ["auditor"], actor="a")
    with transaction(ctx.sessions) as db:
        delete_client(db, cid, revoked=ctx.revoked, actor="test")
        db.delete(get_user(db, user.id))
    with transaction(ctx.sessions) as db:
        assert db.scalars(select(ClientRole)).all() == []
        assert roles.holders(db, "auditor") == (0, 0)
