"""``authserver registration-token create|list|revoke`` (RFC 7591 §3 initial access tokens)."""

from __future__ import annotations

import json

from tests.cli.conftest import assert_error, audit_events

METADATA = {"client_name": "Dyn", "redirect_uris": ["https://rp.example.com/cb"]}


def register(client, token: str) -> int:
    return client.post("/register", json=METADATA, headers={"authorization": f"Bearer {token}"}).status_code


def test_create_list_revoke(client, run, ctx):
    status, out, _ = run("registration-token", "create", "--description", "ci", "--expires-in", "600",
                         "--json")
    assert status == 0
    token = json.loads(out)["initial_access_token"]
    assert register(client, token) == 201
    status, out, _ = run("registration-token", "list", "--json")
    [entry] = json.loads(out)
    assert entry["description"] == "ci" and entry["expires_at"] > entry["created_at"]
    assert token not in out
    status, out, _ = run("registration-token", "list")
    assert out.splitlines()[0].split() == ["ID", "DESCRIPTION", "CREATED", "EXPIRES"]
    assert run("registration-token", "revoke", str(entry["id"]))[0] == 0
    assert register(client, token) == 401
    assert json.loads(run("registration-token", "list", "--json")[1]) == []
    assert [e.detail["token_id"] for e in audit_events(ctx, "registration_token_revoked")] == [entry["id"]]


def test_create_text_output_never_expires(run):
    status, out, _ = run("registration-token", "create")
    assert status == 0 and out.startswith("initial_access_token: ") and "never" in out


def test_rejects(run):
    assert_error(run("registration-token", "create", "--expires-in", "0"), "--expires-in")
    assert_error(run("registration-token", "revoke", "999"), "no such registration token")
    assert_error(run("registration-token", "revoke", "abc"), "invalid int value")
