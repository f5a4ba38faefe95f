"""``/admin/api/users``: each operation's answer, its errors, and its audit event
naming the administrator."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PASSWORD

NEW = {"username": "carol", "email": "carol@example.com", "password": "another long passphrase"}


def actor_of(client: Any, admin: dict[str, str], kind: str, **filters: str) -> str:
    events = client.get("/admin/api/audit-events", params={"kind": kind, **filters}, headers=admin).json()["items"]
    assert events, kind
    return str(events[0]["detail"]["actor"])


@pytest.fixture
def admin_id(ctx: Any, admin: dict[str, str]) -> str:
    """The client_id behind the ``admin`` headers (what audit events name)."""
    from joserfc import jwt

    return str(jwt.decode(admin["Authorization"][7:], ctx.keys.verify_set).claims["client_id"])


def test_create_show_and_list(client, admin, admin_id):
    created = client.post("/admin/api/users", headers=admin, json={**NEW, "roles": ["auditor"], "name": "Carol"})
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["username"] == "carol" and user["roles"] == ["auditor"] and user["email_verified"] is True
    assert NEW["password"] not in created.text and "password_hash" not in created.text
    assert client.get(f"/admin/api/users/{user['id']}", headers=admin).json() == user
    assert actor_of(client, admin, "user_created", user_id=user["id"]) == admin_id
    listed = client.get("/admin/api/users", params={"q": "CAROL"}, headers=admin).json()
    assert listed == {"items": [user], "next_offset": None}


def test_pages(client, admin, make_user):
    for name in ("ann", "bob", "cyd"):
        make_user(name)
    first = client.get("/admin/api/users", params={"limit": 2}, headers=admin).json()
    assert [u["username"] for u in first["items"]] == ["ann", "bob"] and first["next_offset"] == 2
    second = client.get("/admin/api/users", params={"limit": 2, "offset": 2}, headers=admin).json()
    assert [u["username"] for u in second["items"]] == ["cyd"] and second["next_offset"] is None
    # LIKE wildcards are literal
    assert client.get("/admin/api/users", params={"q": "%"}, headers=admin).json()["items"] == []


@pytest.mark.parametrize(("body", "message"), [
    ({}, "username is required"),
    ({**NEW, "extra": 1}, "unknown field: 'extra'"),
    ({**NEW, "username": 5}, "username must be a string"),
    ({**NEW, "email": "not-an-address"}, "e-mail address is not valid"),
    ({**NEW, "password": "short"}, None),
    ({**NEW, "roles": ["no-such-role"]}, "no such role: no-such-role"),
    ({**NEW, "name": "a\x00b"}, "The value of a parameter contains a control or invisible character."),
])
def test_bad_input_is_400_with_a_clear_message(client, admin, body, message):
    response = client.post("/admin/api/users", headers=admin, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    if message:
        assert response.json()["error_description"] == message


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"text"', b"{" * 100_000])
def test_a_body_that_is_not_an_object_is_400(client, admin, raw):
    response = client.post("/admin/api/users", headers={**admin, "content-type": "application/json"}, content=raw)
    assert response.status_code in (400, 413)


def test_duplicate_is_400(client, admin, make_user):
    make_user("carol")
    response = client.post("/admin/api/users", headers=admin, json=NEW)
    assert response.json() == {"error": "invalid_request",
                               "error_description": "a user with this username or e-mail already exists"}


@pytest.mark.parametrize(("method", "suffix"), [
    ("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/disable"), ("POST", "/enable"), ("PUT", "/password"),
    ("POST", "/unlock"), ("DELETE", "/mfa"), ("GET", "/sessions"), ("DELETE", "/sessions"),
    ("DELETE", "/sessions/abc"),
])
@pytest.mark.parametrize("user_id", ["00000000-0000-4000-8000-000000000000", "x" * 64])
def test_unknown_user_is_404(client, admin, method, suffix, user_id):
    body = {"password": PASSWORD} if suffix == "/password" else {}
    response = client.request(method, f"/admin/api/users/{user_id}{suffix}", headers=admin, json=body)
    assert response.status_code == 404, response.text
    assert response.json() == {"error": "not_found", "error_description": f"no such user: {user_id}"}


def test_patch_changes_only_the_fields_given(client, admin, admin_id, make_user):
    user = make_user("carol", roles=["support"])
    url = f"/admin/api/users/{user.id}"
    changed = client.patch(url, headers=admin, json={"email": "Carol@New.Example", "roles": ["auditor"]}).json()
    assert changed["email"] == "carol@new.example" and changed["roles"] == ["auditor"]
    assert changed["name"] == "Alice Example"
    assert actor_of(client, admin, "user_updated", user_id=user.id) == admin_id
    assert actor_of(client, admin, "user_roles_changed", user_id=user.id) == admin_id
    assert client.patch(url, headers=admin, json={"name": None}).json()["name"] is None
    make_user("dave")
    taken = client.patch(url, headers=admin, json={"email": "dave@example.com"})
    assert taken.status_code == 400 and "another user" in taken.json()["error_description"]


def test_disable_enable_delete(client, admin, admin_id, make_user):
    user = make_user("carol")
    url = f"/admin/api/users/{user.id}"
    assert client.post(f"{url}/disable", headers=admin).json()["disabled"] is True
    assert actor_of(client, admin, "user_disabled", user_id=user.id) == admin_id
    assert client.post(f"{url}/enable", headers=admin).json()["disabled"] is False
    assert actor_of(client, admin, "user_enabled", user_id=user.id) == admin_id
    assert client.delete(url, headers=admin).status_code == 204
    assert actor_of(client, admin, "user_deleted", user_id=user.id) == admin_id
    assert client.get(url, headers=admin).status_code == 404


def test_set_password(ctx, client, admin, admin_id, make_user):
    user = make_user("carol")
    url = f"/admin/api/users/{user.id}/password"
    weak = client.put(url, headers=admin, json={"password": "password"})
    assert weak.status_code == 400
    assert client.put(url, headers=admin, json={"password": "a brand new passphrase"}).status_code == 204
    assert actor_of(client, admin, "password_set_by_admin", user_id=user.id) == admin_id
    from authserver.accounts.service import find_by_login
    from authserver.db import transaction

    with transaction(ctx.sessions) as db:
        found = find_by_login(db, "carol")
        assert found is not None and ctx.passwords.verify(found.password_hash, "a brand new passphrase")


def test_sessions_and_mfa(ctx, client, admin, admin_id, make_user):
    import pyotp

    from authserver.accounts import mfa
    from authserver.db import transaction
    from authserver.sessions import service as sessions

    user = make_user("carol")
    with transaction(ctx.sessions) as db:
        rows = [sessions.log_in(db, ctx.box, ctx.settings, None, user_id=user.id, amr=["pwd"], acr=None,
                                auth_time=int(ctx.clock()), ip="203.0.113.9", user_agent="Firefox",
                                device_id=None)[0]
                for _ in range(3)]
        sids = [row.sid for row in rows]
        secret = mfa.start_enrolment(db, ctx.box, user.id)
        assert mfa.confirm_enrolment(db, ctx.box, user.id, pyotp.TOTP(secret).now())
    url = f"/admin/api/users/{user.id}"
    assert client.get(url, headers=admin).json()["mfa"] is True
    listed = client.get(f"{url}/sessions", headers=admin).json()["items"]
    assert sorted(s["sid"] for s in listed) == sorted(sids) and listed[0]["user_agent"] == "Firefox"
    assert client.delete(f"{url}/sessions/{sids[0]}", headers=admin).status_code == 204
    assert client.delete(f"{url}/sessions/{sids[0]}", headers=admin).status_code == 404
    assert actor_of(client, admin, "session_revoked", user_id=user.id) == admin_id
    assert client.delete(f"{url}/sessions", headers=admin).json() == {"ended": 2}
    assert client.get(f"{url}/sessions", headers=admin).json() == {"items": []}
    assert client.delete(f"{url}/mfa", headers=admin).json()["mfa"] is False
    with transaction(ctx.sessions) as db:
        assert mfa.pending_secret(db, ctx.box, user.id) is None
    assert actor_of(client, admin, "mfa_disabled", user_id=user.id) == admin_id


def test_unlock(ctx, client, admin, admin_id, make_user):
    user = make_user("carol")
    key = f"user:{user.id}"
    for _ in range(ctx.settings.lockout_account_threshold):
        ctx.lockout.register_failure(key, "203.0.113.1")
    assert ctx.lockout.check(key, "203.0.113.2") > 0
    assert client.post(f"/admin/api/users/{user.id}/unlock", headers=admin).status_code == 204
    assert ctx.lockout.check(key, "203.0.113.2") == 0
    assert actor_of(client, admin, "account_unlocked", user_id=user.id) == admin_id
