"""``clients update`` (PATCH semantics through the service the admin API uses) and
``audit list`` (the admin API's filters)."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import assert_error, audit_events


def test_clients_update_changes_only_what_is_given(run, ctx, client, make_client):
    cid, secret = make_client(grant_types=["client_credentials", "authorization_code"], scope="api")
    status, out, err = run("clients", "update", "--json", "--redirect-uri", "https://rp.example.com/cb",
                           "https://rp.example.com/two", "--skip-consent", "--", cid)
    assert status == 0, err
    body = json.loads(out)
    assert body["client_id"] == cid and body["scope"] == "api" and body["client_name"] == "Test App"
    assert body["redirect_uris"] == ["https://rp.example.com/cb", "https://rp.example.com/two"]
    status, out, _ = run("clients", "show", "--json", "--", cid)
    assert json.loads(out)["skip_consent"] is True
    # the secret still works: the client was changed in place
    response = client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))
    assert response.status_code == 200
    [event] = audit_events(ctx, "client_updated")
    assert event.detail == {"actor": "cli", "changed": ["redirect_uris", "skip_consent"]}
    status, out, _ = run("clients", "update", "--no-skip-consent", "--name", "Renamed", "--", cid)
    assert status == 0 and out.strip() == f"updated client {cid}: client_name, skip_consent"
    status, out, _ = run("clients", "update", "--name", "Renamed", "--", cid)
    assert status == 0 and "nothing changed" in out


@pytest.mark.parametrize(("argv", "fragment"), [
    ((), "nothing to change"),
    (("--redirect-uri", "http://evil.example/cb"), "must use https"),
    (("--grant-type", "implicit"), "unsupported grant type"),
])
def test_clients_update_rejects(run, make_client, argv, fragment):
    cid, _ = make_client()
    assert_error(run("clients", "update", *argv, "--", cid), fragment)


def test_clients_update_unknown_client(run):
    assert_error(run("clients", "update", "--name", "x", "no-such-client"), "no such client")


def test_audit_list_filters(run, ctx, make_user, make_client):
    make_user("carol")
    cid, _ = make_client()
    assert run("users", "disable", "carol")[0] == 0
    assert run("clients", "update", "--name", "New", "--", cid)[0] == 0
    status, out, _ = run("audit", "list", "--json", "--user", "carol")
    assert status == 0
    kinds = [e["kind"] for e in json.loads(out)]
    assert kinds == ["user_disabled", "user_created"]
    status, out, _ = run("audit", "list", "--json", "--client", cid, "--kind", "client_updated", "--since", "1h")
    [event] = json.loads(out)
    assert event["client_id"] == cid and event["detail"]["actor"] == "cli"
    status, out, _ = run("audit", "list", "--json", "--until", "2000-01-01")
    assert json.loads(out) == []
    status, out, _ = run("audit", "list", "--kind", "user_disabled")
    assert status == 0 and "user_disabled" in out and "TIME" in out


@pytest.mark.parametrize(("argv", "fragment"), [
    (("--since", "yesterday"), "not a time"),
    (("--kind", "nope"), "unknown event kind"),
    (("--limit", "0"), "--limit must be between"),
])
def test_audit_list_rejects(run, argv, fragment):
    assert_error(run("audit", "list", *argv), fragment)
