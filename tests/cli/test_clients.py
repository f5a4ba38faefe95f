"""``authserver clients …``."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from authserver.clients.models import Client
from authserver.db import transaction
from tests.cli.conftest import assert_error, audit_events


def test_clients_create_json_works_at_the_token_endpoint(run, ctx, client):
    status, out, err = run("clients", "create", "--name", "Backend", "--grant-type", "client_credentials",
                           "--scope", "api:read api:write", "--json")
    assert status == 0, err
    body = json.loads(out)
    assert set(body) == {"client_id", "client_secret", "client_name", "redirect_uris", "grant_types",
                         "scope", "token_endpoint_auth_method", "post_logout_redirect_uris",
                         "id_token_signed_response_alg", "require_pushed_authorization_requests"}
    assert body["grant_types"] == ["client_credentials"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    r = client.post("/token", data={"grant_type": "client_credentials", "scope": "api:read"},
                    auth=(body["client_id"], body["client_secret"]))
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "api:read"
    [event] = audit_events(ctx, "client_created")
    assert event.client_id == body["client_id"]
    assert body["client_secret"] not in json.dumps(event.detail)


def test_clients_create_text_output(run):
    status, out, _ = run("clients", "create", "--name", "Web", "--redirect-uri", "https://rp.example.com/cb",
                         "--grant-type", "authorization_code", "--scope", "openid")
    assert status == 0
    assert out.startswith("client_id:") and "client_secret:" in out


@pytest.mark.parametrize("public", [
    ["--public"], ["--auth-method", "none"], ["--public", "--auth-method", "none"],
])
def test_clients_create_public_has_no_secret(run, ctx, public):
    status, out, _ = run("clients", "create", "--name", "SPA", "--redirect-uri", "https://spa.example.com/cb",
                         "--grant-type", "authorization_code", "refresh_token", "--scope", "openid profile",
                         *public, "--json")
    assert status == 0
    body = json.loads(out)
    assert "client_secret" not in body and body["token_endpoint_auth_method"] == "none"
    with transaction(ctx.sessions) as db:
        assert db.get(Client, body["client_id"]).client_secret_hash is None


@pytest.mark.parametrize("spelling", [
    ["--redirect-uri", "https://a.example.com/cb", "--redirect-uri", "https://b.example.com/cb"],
    ["--redirect-uri", "https://a.example.com/cb", "https://b.example.com/cb"],
])
def test_clients_create_repeated_or_listed_values(run, spelling):
    status, out, _ = run("clients", "create", "--name", "Two", *spelling,
                         "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                         "--scope", "openid", "--post-logout-redirect-uri", "https://a.example.com/bye",
                         "--skip-consent", "--json")
    body = json.loads(out)
    assert status == 0
    assert body["redirect_uris"] == ["https://a.example.com/cb", "https://b.example.com/cb"]
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["post_logout_redirect_uris"] == ["https://a.example.com/bye"]


def test_clients_create_flags_are_stored(run, ctx):
    status, out, _ = run("clients", "create", "--name", "RS", "--grant-type", "client_credentials",
                         "--scope", "api", "--introspect-any", "--audience", "https://api.example.com",
                         "--require-mfa", "--auth-method", "client_secret_post", "--json")
    assert status == 0
    with transaction(ctx.sessions) as db:
        row = db.get(Client, json.loads(out)["client_id"])
        assert row.introspect_any and row.require_mfa and not row.skip_consent
        assert row.audience == ["https://api.example.com"]
        assert row.token_endpoint_auth_method == "client_secret_post"


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--grant-type", "implicit", "--redirect-uri", "https://rp.example.com/cb"], "unsupported grant type"),
    (["--grant-type", "authorization_code", "--redirect-uri", "http://rp.example.com/cb"], "https"),
    (["--grant-type", "authorization_code", "--redirect-uri", "https://rp.example.com/cb#x"], "fragment"),
    (["--grant-type", "authorization_code"], "redirect URI"),
    (["--grant-type", "client_credentials", "--public"], "public clients"),
    (["--grant-type", "client_credentials", "--public", "--auth-method", "client_secret_post"], "--public"),
    (["--grant-type", "client_credentials", "--auth-method", "private_key_jwt"], "exactly one of jwks and jwks_uri"),
    (["--grant-type", "client_credentials", "--auth-method", "tls_client_auth"], "invalid choice"),
    (["--redirect-uri", "https://rp.example.com/cb"], "--grant-type"),
])
def test_clients_create_rejects(run, ctx, argv, fragment):
    assert_error(run("clients", "create", "--name", "Bad", "--scope", "openid", *argv), fragment)
    with transaction(ctx.sessions) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Client)) == 0


def test_clients_create_rejects_bad_scope(run):
    assert_error(run("clients", "create", "--name", "Bad", "--grant-type", "client_credentials",
                     "--scope", 'api "quoted"'), "invalid scope")


def test_clients_list(run, make_client):
    cid, _ = make_client(client_name="Listed")
    status, out, _ = run("clients", "list")
    assert status == 0 and cid in out and "Listed" in out
    status, out, _ = run("clients", "list", "--json")
    [entry] = json.loads(out)
    assert entry["client_id"] == cid and "client_secret" not in entry


# A client_id may start with "-" (base64url), hence the "--" before it.


def test_clients_rotate_secret(run, ctx, client, make_client):
    cid, old = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    status, out, _ = run("clients", "rotate-secret", "--json", "--", cid)
    assert status == 0
    body = json.loads(out)
    assert body["client_id"] == cid and body["client_secret"] != old
    data = {"grant_type": "client_credentials"}
    assert client.post("/token", data=data, auth=(cid, old)).status_code == 401
    assert client.post("/token", data=data, auth=(cid, body["client_secret"])).status_code == 200
    assert len(audit_events(ctx, "client_secret_rotated")) == 1
    status, out, _ = run("clients", "rotate-secret", "--", cid)
    assert status == 0 and out.startswith("client_secret: ")


def test_clients_rotate_secret_of_public_client(run, make_client):
    cid, _ = make_client(token_endpoint_auth_method="none")
    assert_error(run("clients", "rotate-secret", "--", cid), "public")


def test_clients_rotate_secret_of_private_key_jwt_client(run, ctx, make_client):
    """A client that authenticates with its keys (RFC 7523 §2.2) has no secret to rotate."""
    cid, _ = make_client(token_endpoint_auth_method="private_key_jwt", grant_types=["client_credentials"],
                         redirect_uris=[], scope="api", jwks_uri="https://rp.example.com/jwks.json")
    status, out, err = run("clients", "rotate-secret", "--", cid)
    assert (status, out, err) == (2, "", "error: private_key_jwt clients have no secret\n")
    with transaction(ctx.sessions) as db:
        assert db.get(Client, cid).client_secret_hash is None
    assert audit_events(ctx, "client_secret_rotated") == []


@pytest.mark.parametrize("command", ["rotate-secret", "delete"])
def test_clients_unknown_id(run, command):
    assert_error(run("clients", command, "no-such-client"), "no such client")


def test_clients_delete(run, ctx, make_client):
    cid, _ = make_client()
    status, _, _ = run("clients", "delete", "--", cid)
    assert status == 0
    with transaction(ctx.sessions) as db:
        assert db.get(Client, cid) is None
    assert [e.client_id for e in audit_events(ctx, "client_deleted")] == [cid]


def test_clients_show(run, make_client):
    cid, secret = make_client(client_name="Shown", audience=["https://api.example.com"], require_mfa=True)
    status, out, _ = run("clients", "show", "--", cid)
    assert status == 0 and secret not in out
    fields = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in out.splitlines()}
    assert fields["client_id"] == cid and fields["client_name"] == "Shown" and fields["require_mfa"] == "yes"
    body = json.loads(run("clients", "show", "--json", "--", cid)[1])
    assert body["audience"] == ["https://api.example.com"] and "client_secret" not in body
    assert_error(run("clients", "show", "no-such-client"), "no such client")


def test_clients_backchannel_logout_options(run, ctx):
    status, out, err = run("clients", "create", "--name", "RP", "--redirect-uri", "https://rp.example.com/cb",
                           "--grant-type", "authorization_code", "--scope", "openid",
                           "--backchannel-logout-uri", "https://rp.example.com/bc",
                           "--backchannel-logout-session-required", "--json")
    assert status == 0, err
    body = json.loads(out)
    assert body["backchannel_logout_uri"] == "https://rp.example.com/bc"
    assert body["backchannel_logout_session_required"] is True
    cid = body["client_id"]
    status, out, err = run("clients", "update", "--no-backchannel-logout-session-required", "--json", "--", cid)
    assert status == 0, err
    assert json.loads(out)["backchannel_logout_session_required"] is False
    assert_error(run("clients", "update", "--backchannel-logout-uri", "http://rp.example.com/bc", "--", cid),
                 "must use https")
    status, out, err = run("clients", "update", "--backchannel-logout-uri", "", "--json", "--", cid)
    assert status == 0, err
    assert "backchannel_logout_uri" not in json.loads(out)
