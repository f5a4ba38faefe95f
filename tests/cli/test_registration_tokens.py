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


def test_a_bad_lifetime_or_description_is_refused_with_its_reason(ctx):
    """What the CLI and the admin API print when minting an initial access token fails."""
    import pytest

    from authserver.clients import registration
    from authserver.clients.errors import ClientError
    from authserver.db import transaction

    for kwargs, message in [
        ({"expires_in": 0}, "expires-in must be a positive number of seconds"),
        ({"description": "d" * 201}, "description must be at most 200 characters"),
        ({"description": "two\nlines"}, "description must be one line without control characters"),
    ]:
        with transaction(ctx.sessions) as db, pytest.raises(ClientError) as refused:
            registration.issue_initial_access_token(db, ctx.box, **kwargs)
        assert str(refused.value) == message
    with transaction(ctx.sessions) as db:
        issued = registration.issue_initial_access_token(db, ctx.box, "d" * 200, expires_in=1)
        assert issued.row.description == "d" * 200
