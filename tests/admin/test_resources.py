"""Clients, keys, consents, registration tokens, the deny list and the audit log
through the admin API: answers, errors, and audit events naming the administrator."""

from __future__ import annotations

from typing import Any

import pytest

from authserver.db import transaction
from tests.admin.test_users import actor_of, admin_id  # noqa: F401  (the fixture)

NEW_CLIENT = {"client_name": "Shop", "redirect_uris": ["https://shop.example/cb"],
              "grant_types": ["authorization_code", "refresh_token"], "scope": "openid profile"}


def cc_token(client: Any, cid: str, secret: str) -> int:
    return int(client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret)).status_code)


def test_client_create_shows_the_secret_once(client, admin, admin_id):  # noqa: F811
    created = client.post("/admin/api/clients", headers=admin, json=NEW_CLIENT)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["client_secret"] and body["token_endpoint_auth_method"] == "client_secret_basic"
    cid = body["client_id"]
    shown = client.get(f"/admin/api/clients/{cid}", headers=admin).json()
    assert "client_secret" not in shown and shown == {k: v for k, v in body.items() if k != "client_secret"}
    assert actor_of(client, admin, "client_created", client_id=cid) == admin_id
    public = client.post("/admin/api/clients", headers=admin,
                         json={**NEW_CLIENT, "token_endpoint_auth_method": "none"}).json()
    assert "client_secret" not in public
    listed = client.get("/admin/api/clients", params={"q": "sho"}, headers=admin).json()["items"]
    assert {c["client_id"] for c in listed} == {cid, public["client_id"]}


def test_client_patch_keeps_the_client_id_and_secret(client, admin, admin_id, make_client):  # noqa: F811
    cid, secret = make_client(grant_types=["client_credentials", "authorization_code"], scope="api")
    url = f"/admin/api/clients/{cid}"
    uris = ["https://rp.example.com/cb", "https://rp.example.com/other"]
    patched = client.patch(url, headers=admin, json={"redirect_uris": uris, "roles": ["auditor"]})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["client_id"] == cid and body["redirect_uris"] == uris and body["roles"] == ["auditor"]
    assert body["scope"] == "api" and body["client_name"] == "Test App"
    assert cc_token(client, cid, secret) == 200
    assert actor_of(client, admin, "client_updated", client_id=cid) == admin_id
    assert actor_of(client, admin, "client_roles_changed", client_id=cid) == admin_id


@pytest.mark.parametrize(("changes", "message"), [
    ({"redirect_uris": ["http://evil.example/cb"]}, "redirect URI must use https"),
    ({"grant_types": []}, "grant_types must have at least 1 entries"),
    ({"grant_types": ["implicit"]}, "grant_types[0] must be one of"),
    ({"client_id": "mine"}, "unknown field: 'client_id'"),
    ({"client_secret": "mine"}, "unknown field: 'client_secret'"),
    ({"audience": ["has space"]}, "invalid audience"),
    ({"roles": ["nope"]}, "no such role"),
])
def test_client_patch_refuses(client, admin, make_client, changes, message):
    cid, _ = make_client()
    response = client.patch(f"/admin/api/clients/{cid}", headers=admin, json=changes)
    assert response.status_code == 400, response.text
    assert response.json()["error_description"].startswith(message)


def test_client_rotate_and_delete(client, admin, admin_id, make_client):  # noqa: F811
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    rotated = client.post(f"/admin/api/clients/{cid}/secret", headers=admin).json()
    assert rotated["client_id"] == cid and rotated["client_secret"] != secret
    assert cc_token(client, cid, secret) == 401
    assert cc_token(client, cid, rotated["client_secret"]) == 200
    assert actor_of(client, admin, "client_secret_rotated", client_id=cid) == admin_id
    assert client.delete(f"/admin/api/clients/{cid}", headers=admin).status_code == 204
    assert actor_of(client, admin, "client_deleted", client_id=cid) == admin_id
    for method, suffix in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/secret")):
        response = client.request(method, f"/admin/api/clients/{cid}{suffix}", headers=admin, json={})
        assert response.status_code == 404
        assert response.json() == {"error": "not_found", "error_description": f"no such client: {cid}"}


def test_a_public_client_made_confidential_gets_a_secret_once(client, admin, make_client):
    cid, _ = make_client(token_endpoint_auth_method="none", grant_types=["authorization_code"])
    changes = {"token_endpoint_auth_method": "client_secret_basic", "grant_types": ["client_credentials"],
               "redirect_uris": []}
    body = client.patch(f"/admin/api/clients/{cid}", headers=admin, json=changes).json()
    assert body["client_id"] == cid and body["client_secret"]
    assert cc_token(client, cid, body["client_secret"]) == 200
    assert "client_secret" not in client.get(f"/admin/api/clients/{cid}", headers=admin).json()


def test_public_client_has_no_secret_to_rotate(client, admin, make_client):
    cid, _ = make_client(token_endpoint_auth_method="none")
    response = client.post(f"/admin/api/clients/{cid}/secret", headers=admin)
    assert response.status_code == 400
    assert response.json()["error_description"] == "public clients have no secret"


def test_keys_list_and_rotate(client, admin, admin_id):  # noqa: F811
    before = [k for k in client.get("/admin/api/keys", headers=admin).json()["items"] if k["alg"] == "RS256"]
    assert [k["status"] for k in before] == ["active"]
    rotated = client.post("/admin/api/keys", headers=admin, json={"activation_delay": 3600})
    assert rotated.status_code == 201
    assert rotated.json()["status"] == "pending"
    after = client.get("/admin/api/keys", headers=admin).json()["items"]
    assert sorted(k["alg"] for k in after) == ["ES256", "ES256", "EdDSA", "EdDSA", "RS256", "RS256"]
    assert {k["kid"]: k["status"] for k in after if k["alg"] == "RS256"} == {
        before[0]["kid"]: "active", rotated.json()["kid"]: "pending"}
    assert actor_of(client, admin, "key_rotated") == admin_id
    assert client.post("/admin/api/keys", headers=admin, json={"activation_delay": -1}).status_code == 400


def test_consents_list_and_withdraw(ctx, client, admin, admin_id, make_user, make_client):  # noqa: F811
    from authserver.consents import service as consents

    user = make_user("carol")
    cid, _ = make_client()
    with transaction(ctx.sessions) as db:
        consents.grant(db, user.id, cid, ["openid", "profile"])
    listed = client.get("/admin/api/consents", params={"user_id": user.id}, headers=admin).json()["items"]
    assert [(c["client_id"], c["scope"]) for c in listed] == [(cid, "openid profile")]
    assert client.get("/admin/api/consents", params={"client_id": "other"}, headers=admin).json()["items"] == []
    assert client.delete(f"/admin/api/consents/{listed[0]['id']}", headers=admin).status_code == 204
    assert client.delete(f"/admin/api/consents/{listed[0]['id']}", headers=admin).status_code == 404
    assert actor_of(client, admin, "consent_revoked", user_id=user.id) == admin_id
    with transaction(ctx.sessions) as db:
        assert consents.granted_scopes(db, user.id, cid) == set()
    assert client.delete("/admin/api/consents/abc", headers=admin).json() == {
        "error": "invalid_request", "error_description": "consent_id must be a whole number"}


def test_registration_tokens(client, admin, admin_id):  # noqa: F811
    created = client.post("/admin/api/registration-tokens", headers=admin,
                          json={"description": "ci", "expires_in": 3600})
    assert created.status_code == 201
    body = created.json()
    register = client.post("/register", json={"redirect_uris": ["https://new.example/cb"]},
                           headers={"Authorization": f"Bearer {body['initial_access_token']}"})
    assert register.status_code == 201, register.text
    listed = client.get("/admin/api/registration-tokens", headers=admin).json()["items"]
    assert listed == [{k: v for k, v in body.items() if k != "initial_access_token"}]
    assert actor_of(client, admin, "registration_token_created") == admin_id
    assert client.delete(f"/admin/api/registration-tokens/{body['id']}", headers=admin).status_code == 204
    assert client.delete(f"/admin/api/registration-tokens/{body['id']}", headers=admin).status_code == 404
    assert actor_of(client, admin, "registration_token_revoked") == admin_id
    assert client.post("/admin/api/registration-tokens", headers=admin,
                       json={"expires_in": 0}).status_code == 400


def test_deny_list(client, admin, admin_id):  # noqa: F811
    added = client.post("/admin/api/deny-list", headers=admin, json={"cidr": "203.0.113.7", "reason": "abuse"})
    assert added.status_code == 201
    assert added.json()["cidr"] == "203.0.113.7/32"
    again = client.post("/admin/api/deny-list", headers=admin, json={"cidr": "203.0.113.7/32"})
    assert again.status_code == 400 and "already" in again.json()["error_description"]
    assert client.post("/admin/api/deny-list", headers=admin, json={"cidr": "nonsense"}).status_code == 400
    assert client.get("/admin/api/deny-list", headers=admin).json()["items"] == [added.json()]
    assert client.delete(f"/admin/api/deny-list/{added.json()['id']}", headers=admin).status_code == 204
    assert client.delete(f"/admin/api/deny-list/{added.json()['id']}", headers=admin).status_code == 404
    assert actor_of(client, admin, "deny_list_changed") == admin_id


def test_audit_filters_and_pages(ctx, client, admin, make_user):
    import datetime as dt

    from authserver.audit import service as audit
    from authserver.audit.models import AuditEvent

    carol = make_user("carol")
    with transaction(ctx.sessions) as db:
        for days in (10, 5, 1):
            audit.record(db, "login_failed", user_id=carol.id, client_id="c1", reason="bad_credentials")
            db.flush()
            db.query(AuditEvent).filter(AuditEvent.id == db.query(AuditEvent.id).order_by(
                AuditEvent.id.desc()).limit(1).scalar_subquery()).update(
                {"created_at": dt.datetime.now(dt.UTC) - dt.timedelta(days=days)}, synchronize_session=False)

    def get(**params: Any) -> Any:
        return client.get("/admin/api/audit-events", params=params, headers=admin)

    assert len(get(user_id=carol.id, kind="login_failed").json()["items"]) == 3
    assert len(get(client_id="c1", since="7d").json()["items"]) == 2
    until = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).isoformat()
    assert len(get(client_id="c1", since="2000-01-01", until=until).json()["items"]) == 2
    first = get(user_id=carol.id, limit=2).json()
    assert len(first["items"]) == 2 and first["next_offset"] == 2
    times = [e["created_at"] for e in first["items"]]
    assert times == sorted(times, reverse=True)
    assert get(user_id=carol.id, limit=2, offset=2).json()["next_offset"] is None
    for params, message in (({"since": "yesterday"}, "not a time"), ({"kind": "nope"}, "kind must be one of"),
                            ({"limit": "0"}, "limit must be between 1 and 200"),
                            ({"limit": "x"}, "limit must be a whole number"),
                            ({"color": "red"}, "unknown query parameter: 'color'")):
        response = get(**params)
        assert response.status_code == 400, params
        assert response.json()["error_description"].startswith(message)


@pytest.mark.parametrize("action", ["rotate", "delete"])
def test_secret_rotation_and_deletion_end_the_clients_access_tokens(client, admin, make_client, action):
    """Through the API as through the CLI: the cutoff lives in the clients service."""
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    issued = client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))
    token = issued.json()["access_token"]
    resource, rs_secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api",
                                      introspect_any=True)
    seen = client.post("/introspect", data={"token": token}, auth=(resource, rs_secret))
    assert seen.json()["active"] is True
    if action == "rotate":
        r = client.post(f"/admin/api/clients/{cid}/secret", headers=admin)
    else:
        r = client.delete(f"/admin/api/clients/{cid}", headers=admin)
    assert r.status_code in (200, 204), r.text
    seen = client.post("/introspect", data={"token": token}, auth=(resource, rs_secret))
    assert seen.json() == {"active": False}
