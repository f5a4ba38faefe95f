"""``authserver roles …``, ``users set-roles`` and ``clients set-roles`` (docs/roles.md)."""

from __future__ import annotations

import json

import pytest

from authserver.db import transaction
from authserver.roles import service as roles
from tests.cli.conftest import assert_error, audit_events, get_user

ADMIN_READ = ["admin:audit:read", "admin:clients:read", "admin:consents:read", "admin:deny_list:read",
              "admin:keys:read", "admin:registration_tokens:read", "admin:roles:read", "admin:sessions:read",
              "admin:users:read"]


def test_create_show_list(run, ctx):
    status, out, _ = run("roles", "create", "clerk", "--description", "Reads orders",
                         "--permission", "orders:read", "--permission", "orders:items:write")
    assert (status, out) == (0, "created role clerk: orders:items:write orders:read\n")
    status, out, _ = run("roles", "show", "clerk", "--json")
    assert status == 0 and json.loads(out) == {
        "name": "clerk", "description": "Reads orders", "built_in": False,
        "permissions": ["orders:items:write", "orders:read"], "users": 0, "clients": 0}
    status, out, _ = run("roles", "show", "clerk")
    assert "permissions: orders:items:write orders:read" in out and "built_in:    no" in out
    status, out, _ = run("roles", "list", "--json")
    listed = {r["name"]: r for r in json.loads(out)}
    assert list(listed) == ["admin", "auditor", "clerk", "support"]
    assert listed["auditor"]["permissions"] == ADMIN_READ and listed["auditor"]["built_in"] is True
    status, out, _ = run("roles", "list")
    assert out.splitlines()[0].split() == ["NAME", "BUILT-IN", "USERS", "CLIENTS", "PERMISSIONS"]
    assert [e.detail["actor"] for e in audit_events(ctx, "role_created")] == ["cli"]


def test_grant_revoke_update_delete(run, ctx, make_user):
    run("roles", "create", "clerk")
    assert run("roles", "grant", "clerk", "orders:read", "orders:write")[1] == (
        "clerk: granted orders:read orders:write; now orders:read orders:write\n")
    assert run("roles", "grant", "clerk", "orders:read")[1] == (
        "clerk: granted nothing new; now orders:read orders:write\n")
    status, out, _ = run("roles", "revoke", "clerk", "orders:write", "--json")
    assert status == 0 and json.loads(out)["permissions"] == ["orders:read"]
    status, out, _ = run("roles", "update", "clerk", "--description", "Clerks", "--json")
    assert json.loads(out)["description"] == "Clerks"
    make_user("alice", roles=["clerk"])
    status, out, _ = run("roles", "delete", "clerk", "--json")
    assert status == 0 and json.loads(out) == {"name": "clerk", "deleted": True, "users": 1, "clients": 0}
    assert get_user(ctx, "alice").role_names == []
    kinds = ["role_permission_granted", "role_permission_revoked", "role_updated", "role_deleted"]
    assert {k: len(audit_events(ctx, k)) for k in kinds} == {
        "role_permission_granted": 2, "role_permission_revoked": 1, "role_updated": 1, "role_deleted": 1}


BAD = {
    "bad name": (["roles", "create", "bad role"], "invalid role name"),
    "bad permission": (["roles", "create", "clerk", "--permission", "orders"], "invalid permission"),
    "taken": (["roles", "create", "admin"], "already exists"),
    "show unknown": (["roles", "show", "ghost"], "no such role: ghost"),
    "grant unknown role": (["roles", "grant", "ghost", "orders:read"], "no such role: ghost"),
    "grant bad permission": (["roles", "grant", "auditor", "Orders:Read"], "invalid permission"),
    "delete built-in": (["roles", "delete", "admin"], "built-in"),
    "delete unknown": (["roles", "delete", "ghost"], "no such role"),
    "grant nothing": (["roles", "grant", "auditor"], "PERMISSION"),
}


@pytest.mark.parametrize(("argv", "fragment"), BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_line(run, argv, fragment):
    assert_error(run(*argv), fragment)


def test_built_in_roles_are_editable(run, ctx):
    assert run("roles", "revoke", "support", "admin:sessions:write")[0] == 0
    with transaction(ctx.sessions) as db:
        assert "admin:sessions:write" not in roles.require_role(db, "support").permissions


def test_users_set_roles_uses_existing_roles(run, ctx, make_user):
    make_user("alice", roles=["admin"])
    assert run("users", "set-roles", "alice", "auditor", "support", "auditor")[1] == "alice: roles auditor, support\n"
    assert get_user(ctx, "alice").role_names == ["auditor", "support"]
    status, out, _ = run("users", "set-roles", "alice", "--json")
    assert status == 0 and json.loads(out) == {"username": "alice", "roles": []}
    assert_error(run("users", "set-roles", "alice", "ghost"), "no such role: ghost")
    assert_error(run("users", "set-roles", "alice", "bad role"), "invalid role name")
    assert get_user(ctx, "alice").role_names == []
    events = audit_events(ctx, "user_roles_changed")
    assert [(e.detail["actor"], e.detail["roles"]) for e in events] == [
        ("cli", ["auditor", "support"]), ("cli", [])]


def test_users_create_needs_existing_roles(run, ctx):
    from tests.conftest import PASSWORD

    assert_error(run("users", "create", "--username", "bob", "--email", "bob@example.com", "--password-stdin",
                     "--role", "ghost", stdin=PASSWORD + "\n"), "no such role: ghost")
    assert get_user(ctx, "bob") is None


def test_clients_set_roles_and_permission_prefixes(run, ctx):
    status, out, _ = run("clients", "create", "--name", "Robot", "--grant-type", "client_credentials",
                         "--scope", "roles", "--audience", "orders-api", "--permission-prefix", "orders", "--json")
    assert status == 0, out
    cid = json.loads(out)["client_id"]
    assert run("clients", "set-roles", "--", cid, "auditor")[1] == f"{cid}: roles auditor\n"
    status, out, _ = run("clients", "show", "--json", "--", cid)
    body = json.loads(out)
    assert body["roles"] == ["auditor"] and body["permission_prefixes"] == ["orders"]
    status, out, _ = run("clients", "set-permission-prefixes", "--json", "--", cid, "orders", "billing")
    assert json.loads(out) == {"client_id": cid, "permission_prefixes": ["orders", "billing"]}
    assert_error(run("clients", "set-roles", "--", cid, "ghost"), "no such role: ghost")
    assert_error(run("clients", "set-permission-prefixes", "--", cid, "https://x"), "invalid permission prefix")
    assert_error(run("clients", "set-roles", "nope", "auditor"), "no such client")
    assert [e.detail["actor"] for e in audit_events(ctx, "client_roles_changed")] == ["cli"]
