"""RFC 7591 dynamic registration and RFC 7592 management, on both backends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from authserver.audit.models import AuditEvent
from authserver.clients.models import Client, InitialAccessToken
from authserver.clients.registration import create_initial_access_token
from authserver.db import transaction, utcnow
from authserver.settings import RateLimit
from tests.conftest import ISSUER

WEB_APP = {
    "client_name": "Registered App",
    "redirect_uris": ["https://rp.example.com/cb"],
    "grant_types": ["authorization_code", "refresh_token"],
    "scope": "openid profile offline_access",
    "post_logout_redirect_uris": ["https://rp.example.com/bye"],
}


@pytest.fixture
def initial_token(ctx: Any) -> str:
    with transaction(ctx.sessions) as db:
        return create_initial_access_token(db, ctx.box, "tests", expires_in=3600)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(client: Any, token: str, **metadata: Any) -> Any:
    return client.post("/register", json=metadata, headers=bearer(token))


def assert_invalid_token(r: Any, *, presented: bool = True) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_token"
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) is presented
    assert r.headers["cache-control"] == "no-store"


# -- initial access token ----------------------------------------------------


def test_registration_without_token_is_401(client):
    assert_invalid_token(client.post("/register", json=WEB_APP), presented=False)
    assert_invalid_token(client.post("/register", json=WEB_APP, headers={"Authorization": "Basic eDp5"}),
                         presented=False)


def test_registration_with_bad_token_is_401(client, initial_token, ctx):
    assert_invalid_token(register(client, initial_token + "x", **WEB_APP))
    # a token in the query string is not a bearer credential
    r = client.post(f"/register?access_token={initial_token}", json=WEB_APP)
    assert_invalid_token(r, presented=False)
    with transaction(ctx.sessions) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Client)) == 0


def test_registration_with_expired_token_is_401(client, initial_token, ctx):
    with transaction(ctx.sessions) as db:
        db.execute(sa.update(InitialAccessToken).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert_invalid_token(register(client, initial_token, **WEB_APP))


def test_initial_token_is_stored_hashed(ctx, initial_token):
    with transaction(ctx.sessions) as db:
        row = db.scalars(sa.select(InitialAccessToken)).one()
        assert row.token_hash == ctx.box.keyed_hash(initial_token) != initial_token
        assert row.description == "tests" and row.expires_at is not None
        create_initial_access_token(db, ctx.box)  # no expiry
        assert db.scalar(sa.select(sa.func.count()).where(InitialAccessToken.expires_at.is_(None))) == 1


# -- registration ------------------------------------------------------------


def test_register_confidential_client(client, initial_token, ctx):
    r = register(client, initial_token, **WEB_APP)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    cid = body["client_id"]
    assert body["client_secret"] and body["client_secret_expires_at"] == 0
    assert body["registration_access_token"]
    assert body["registration_client_uri"] == f"{ISSUER}/register/{cid}"
    assert abs(body["client_id_issued_at"] - utcnow().timestamp()) < 60
    assert body["client_name"] == "Registered App"
    assert body["redirect_uris"] == WEB_APP["redirect_uris"]
    assert body["post_logout_redirect_uris"] == WEB_APP["post_logout_redirect_uris"]
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["response_types"] == ["code"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["scope"] == "openid profile offline_access"
    with transaction(ctx.sessions) as db:
        row = db.get(Client, cid)
        assert row is not None
        assert row.client_secret_hash == ctx.box.keyed_hash(body["client_secret"])
        assert row.registration_access_token_hash == ctx.box.keyed_hash(body["registration_access_token"])
        assert not (row.skip_consent or row.require_mfa or row.introspect_any or row.audience)
        events = db.scalars(sa.select(AuditEvent).where(AuditEvent.event == "client_created")).all()
        assert [(e.client_id, e.ip, e.detail) for e in events] == [(cid, "testclient", {
            "actor": "registration", "grant_types": ["authorization_code", "refresh_token"],
            "auth_method": "client_secret_basic"})]
        text = str([e.detail for e in events])
        assert body["client_secret"] not in text and body["registration_access_token"] not in text


def test_register_public_client_gets_no_secret(client, initial_token):
    r = register(client, initial_token, redirect_uris=["http://127.0.0.1:7777/cb"],
                 token_endpoint_auth_method="none")
    assert r.status_code == 201, r.text
    body = r.json()
    assert "client_secret" not in body and "client_secret_expires_at" not in body
    assert body["token_endpoint_auth_method"] == "none"
    assert body["grant_types"] == ["authorization_code"]  # RFC 7591 §2 default
    assert body["scope"] == "openid profile email"
    assert body["client_name"]


def test_admin_only_settings_are_ignored(client, initial_token, ctx):
    r = register(client, initial_token, **WEB_APP, skip_consent=True, require_mfa=False,
                 introspect_any=True, audience=["https://api.example.com"], client_id="chosen",
                 client_secret="chosen-secret", logo_uri="https://rp.example.com/logo.png")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["client_id"] != "chosen" and body["client_secret"] != "chosen-secret"
    assert "skip_consent" not in body and "logo_uri" not in body
    with transaction(ctx.sessions) as db:
        row = db.get(Client, body["client_id"])
        assert not row.skip_consent and not row.introspect_any and row.audience == []


LONG_URI = "https://rp.example.com/" + "x" * 2000


@pytest.mark.parametrize("metadata, description", [
    ({**WEB_APP, "grant_types": ["password"]},
     "the password grant cannot be registered dynamically (RFC 9700, section 2.4)"),
    ({**WEB_APP, "grant_types": ["authorization_code", "password"]},
     "the password grant cannot be registered dynamically (RFC 9700, section 2.4)"),
    ({**WEB_APP, "grant_types": ["implicit"]}, "unsupported grant type: implicit"),
    ({**WEB_APP, "response_types": ["token"]}, "unsupported response type: token"),
    ({**WEB_APP, "grant_types": ["client_credentials"], "response_types": ["code"]},
     'response_types ["code"] and grant type authorization_code go together'),
    ({**WEB_APP, "token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]},
     "public clients cannot use client_credentials or password grants"),
    ({**WEB_APP, "token_endpoint_auth_method": "private_key_jwt"},
     "private_key_jwt clients register their keys with exactly one of jwks and jwks_uri"),
    ({**WEB_APP, "token_endpoint_auth_method": "tls_client_auth"}, "unsupported auth method: tls_client_auth"),
    ({**WEB_APP, "application_type": "desktop"},
     "application_type must be web or native (OpenID Connect Registration, section 2)"),
    ({**WEB_APP, "scope": "openid admin"},
     "scope 'admin' cannot be registered (allowed: openid profile email offline_access roles)"),
    ({**WEB_APP, "scope": ["openid"]}, "scope must be a string"),
    ({**WEB_APP, "client_name": "x" * 201}, "client_name must be at most 200 characters"),
    ({**WEB_APP, "post_logout_redirect_uris": ["http://rp.example.com/bye"]},
     "post_logout_redirect_uris: redirect URI must use https unless it is a loopback address: "
     "http://rp.example.com/bye"),
    ({**WEB_APP, "post_logout_redirect_uris": [f"https://rp.example.com/bye{i}" for i in range(21)]},
     "at most 20 post-logout redirect URIs of at most 2000 characters"),
    ({**WEB_APP, "post_logout_redirect_uris": [LONG_URI]},
     "at most 20 post-logout redirect URIs of at most 2000 characters"),
    ({**WEB_APP, "dpop_bound_access_tokens": "yes"},
     "dpop_bound_access_tokens must be true or false (RFC 9449, section 5.2)"),
    ({**WEB_APP, "require_pushed_authorization_requests": 1},
     "require_pushed_authorization_requests must be true or false"),
    ({**WEB_APP, "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": 5}, "jwks_uri must be a string"),
])
def test_invalid_metadata(client, initial_token, ctx, metadata, description):
    """Refused metadata: 400 invalid_client_metadata naming the problem (RFC 7591 §3.2.2); nothing stored."""
    r = register(client, initial_token, **metadata)
    assert r.status_code == 400, r.text
    assert r.json() == {"error": "invalid_client_metadata", "error_description": description}
    assert r.headers["cache-control"] == "no-store"
    with transaction(ctx.sessions) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Client)) == 0


def test_body_must_be_a_json_object(client, initial_token):
    for content in (b"[]", b"not json", b"\"text\""):
        r = client.post("/register", content=content, headers={**bearer(initial_token),
                                                               "Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata", content


@pytest.mark.parametrize("uris", [
    ["http://rp.example.com/cb"],  # http on a non-loopback host
    ["https://rp.example.com/cb#frag"],
    ["/relative/cb"],
    ["javascript:alert(1)"],
    [],  # authorization_code needs one
    "https://rp.example.com/cb",  # not an array
])
def test_invalid_redirect_uri(client, initial_token, uris):
    r = register(client, initial_token, **{**WEB_APP, "redirect_uris": uris})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_redirect_uri"


def test_a_refusal_quoting_the_request_stays_ascii(client, initial_token):
    """RFC 7591 §3.2.2: error_description is ASCII, also when it quotes what was sent."""
    r = register(client, initial_token, **{**WEB_APP, "redirect_uris": ["http://rp.example.com/caf\u00e9"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_redirect_uri"
    assert r.json()["error_description"].endswith("http://rp.example.com/caf\\xe9")
    assert r.content.isascii()


def test_registered_client_gets_a_client_credentials_token(client, initial_token):
    r = register(client, initial_token, client_name="Service", grant_types=["client_credentials"],
                 token_endpoint_auth_method="client_secret_post")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["redirect_uris"] == [] and body["response_types"] == []
    assert body["scope"] == ""  # the default scope is for code-flow clients only
    r = client.post("/token", data={"grant_type": "client_credentials", "client_id": body["client_id"],
                                    "client_secret": body["client_secret"]})
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer"
    # the grant it did not register is refused
    r = client.post("/token", data={"grant_type": "password", "username": "a", "password": "b",
                                    "client_id": body["client_id"], "client_secret": body["client_secret"]})
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"


def test_discovery_names_the_registration_endpoint(client):
    assert client.get("/.well-known/openid-configuration").json()["registration_endpoint"] == \
        f"{ISSUER}/register"


@pytest.mark.parametrize("settings_overrides",
                         [{"rate_limits": True, "rate_limit_registration": RateLimit(2, 3600)}])
def test_registration_is_rate_limited(client, initial_token):
    for _ in range(2):
        assert register(client, initial_token, **WEB_APP).status_code == 201
    r = register(client, initial_token, **WEB_APP)
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) > 0


# -- RFC 7592 ----------------------------------------------------------------


@pytest.fixture
def registered(client: Any, initial_token: str) -> dict[str, Any]:
    r = register(client, initial_token, **WEB_APP)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_read_never_shows_the_secret(client, registered):
    r = client.get(f"/register/{registered['client_id']}",
                   headers=bearer(registered["registration_access_token"]))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert "client_secret" not in body and "registration_access_token" not in body
    assert registered["client_secret"] not in r.text
    expected = {k: v for k, v in registered.items()
                if k not in ("client_secret", "client_secret_expires_at", "registration_access_token")}
    assert body == expected


def test_read_needs_that_clients_token(client, initial_token, registered):
    cid, token = registered["client_id"], registered["registration_access_token"]
    other = register(client, initial_token, **WEB_APP).json()
    assert_invalid_token(client.get(f"/register/{cid}", headers=bearer(other["registration_access_token"])))
    assert_invalid_token(client.get(f"/register/{cid}"), presented=False)
    assert_invalid_token(client.get(f"/register/{cid}", headers=bearer(initial_token)))
    assert_invalid_token(client.get(f"/register/{cid}", headers=bearer(registered["client_secret"])))
    # an unknown client looks the same as a wrong token
    assert_invalid_token(client.get("/register/nope", headers=bearer(token)))
    # the other token still works for its own client
    r = client.get(f"/register/{other['client_id']}", headers=bearer(other["registration_access_token"]))
    assert r.status_code == 200


def test_admin_created_client_cannot_be_managed(client, make_client, registered):
    cid, _ = make_client()
    token = registered["registration_access_token"]
    assert_invalid_token(client.get(f"/register/{cid}", headers=bearer(token)))


def audit_rows(ctx, event: str, client_id: str) -> list[AuditEvent]:
    with transaction(ctx.sessions) as db:
        rows = db.scalars(sa.select(AuditEvent).where(AuditEvent.event == event, AuditEvent.client_id == client_id))
        return list(rows)


def test_update(client, registered, ctx):
    cid, token = registered["client_id"], registered["registration_access_token"]
    update = {"client_id": cid, "client_name": "Renamed", "redirect_uris": ["https://rp.example.com/cb2"],
              "grant_types": ["authorization_code", "client_credentials"],
              "token_endpoint_auth_method": "client_secret_post", "scope": "openid email",
              "client_secret": registered["client_secret"],
              "registration_client_uri": registered["registration_client_uri"]}
    r = client.put(f"/register/{cid}", json=update, headers=bearer(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["client_name"] == "Renamed"
    assert body["redirect_uris"] == ["https://rp.example.com/cb2"]
    assert body["post_logout_redirect_uris"] == []  # omitted means empty (RFC 7592 §2.2)
    assert body["grant_types"] == ["authorization_code", "client_credentials"]
    assert body["token_endpoint_auth_method"] == "client_secret_post"
    assert body["scope"] == "openid email"
    assert "client_secret" not in body
    # the registration access token is replaced; the old one is dead
    new_token = body["registration_access_token"]
    assert new_token != token
    assert_invalid_token(client.get(f"/register/{cid}", headers=bearer(token)))
    assert client.get(f"/register/{cid}", headers=bearer(new_token)).json()["client_name"] == "Renamed"
    # the secret is unchanged
    r = client.post("/token", data={"grant_type": "client_credentials", "client_id": cid,
                                    "client_secret": registered["client_secret"]})
    assert r.status_code == 200, r.text
    [event] = audit_rows(ctx, "client_updated", cid)
    assert (event.ip, event.detail) == ("testclient", {
        "actor": "registration", "grant_types": ["authorization_code", "client_credentials"],
        "auth_method": "client_secret_post"})


@pytest.mark.parametrize("change, error", [
    ({"client_id": "other"}, "invalid_request"),
    ({"client_id": None}, "invalid_request"),
    ({"client_secret": "chosen-by-client"}, "invalid_request"),
    ({"grant_types": ["password"]}, "invalid_client_metadata"),
    ({"token_endpoint_auth_method": "none"}, "invalid_client_metadata"),
    ({"redirect_uris": ["http://evil.example.com/cb"]}, "invalid_redirect_uri"),
])
def test_invalid_update_changes_nothing(client, registered, change, error):
    cid, token = registered["client_id"], registered["registration_access_token"]
    update = {**WEB_APP, "client_id": cid, **change}
    r = client.put(f"/register/{cid}", json=update, headers=bearer(token))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error
    r = client.get(f"/register/{cid}", headers=bearer(token))  # token not rotated, metadata unchanged
    assert r.status_code == 200 and r.json()["grant_types"] == WEB_APP["grant_types"]


def test_update_needs_that_clients_token(client, initial_token, registered):
    cid = registered["client_id"]
    other = register(client, initial_token, **WEB_APP).json()
    wrong = bearer(other["registration_access_token"])
    assert_invalid_token(client.put(f"/register/{cid}", json={**WEB_APP, "client_id": cid}, headers=wrong))
    assert_invalid_token(client.delete(f"/register/{cid}", headers=wrong))
    r = client.get(f"/register/{cid}", headers=bearer(registered["registration_access_token"]))
    assert r.status_code == 200


def test_delete(client, registered, ctx):
    cid, token = registered["client_id"], registered["registration_access_token"]
    r = client.delete(f"/register/{cid}", headers=bearer(token))
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_invalid_token(client.get(f"/register/{cid}", headers=bearer(token)))
    assert_invalid_token(client.delete(f"/register/{cid}", headers=bearer(token)))
    r = client.post("/token", data={"grant_type": "client_credentials"},
                    auth=(cid, registered["client_secret"]))
    assert r.status_code == 401
    with transaction(ctx.sessions) as db:
        assert db.get(Client, cid) is None
    [event] = audit_rows(ctx, "client_deleted", cid)
    assert (event.ip, event.detail) == ("testclient", {"actor": "registration"})


def test_backchannel_logout_metadata(client, initial_token):
    r = register(client, initial_token, **WEB_APP, backchannel_logout_uri="https://rp.example.com/bc",
                 backchannel_logout_session_required=True)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["backchannel_logout_uri"] == "https://rp.example.com/bc"
    assert body["backchannel_logout_session_required"] is True
    for bad in ("http://rp.example.com/bc", "https://rp.example.com/bc#x", "javascript:alert(1)",
                "https://user:pw@rp.example.com/bc"):
        r = register(client, initial_token, **WEB_APP, backchannel_logout_uri=bad)
        assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata", bad
    r = register(client, initial_token, **WEB_APP, backchannel_logout_uri="https://rp.example.com/bc",
                 backchannel_logout_session_required="yes")
    assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata"
