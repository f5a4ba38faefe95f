"""``authserver keys …``."""

from __future__ import annotations

import json

from authserver.keys.service import KeyStore
from tests.cli.conftest import assert_error, audit_events


def test_keys_rotate_then_list_shows_two_keys(run, ctx):
    [first] = ctx.keys.keys()
    status, out, _ = run("keys", "rotate", "--delay", "3600")
    assert status == 0
    new_kid = out.split()[2].rstrip(":")
    assert new_kid != first.kid
    status, out, _ = run("keys", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["KID", "STATUS", "CREATED", "ACTIVATES", "RETIRES"]
    statuses = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert statuses == {first.kid: "active", new_kid: "pending"}
    [event] = audit_events(ctx, "key_rotated")
    assert event.detail["kid"] == new_kid


def test_keys_rotate_default_delay_activates_now(run, ctx, settings):
    [first] = ctx.keys.keys()
    meta_path = settings.keys_dir / f"{first.kid}.json"
    meta = json.loads(meta_path.read_text())
    meta["activates_at"] -= 60  # not the same second as the new key
    meta_path.write_text(json.dumps(meta))
    status, out, _ = run("keys", "rotate")
    assert status == 0
    kid = out.split()[2].rstrip(":")
    fresh = KeyStore(settings.keys_dir, activation_delay=0, retain_seconds=600)  # ctx.keys caches 1 s
    statuses = {k.kid: k.status for k in fresh.keys()}  # noqa: SIM118
    assert statuses[kid] == "active" and sorted(statuses.values()) == ["active", "published"]


def test_keys_rotate_negative_delay(run):
    assert_error(run("keys", "rotate", "--delay", "-5"), "--delay")


def test_keys_json(run, ctx):
    [first] = ctx.keys.keys()
    status, out, _ = run("keys", "rotate", "--delay", "3600", "--json")
    assert status == 0
    new = json.loads(out)
    assert new["activates_at"] > new["created_at"]
    listed = {k["kid"]: k for k in json.loads(run("keys", "list", "--json")[1])}
    assert listed[first.kid]["status"] == "active" and listed[new["kid"]]["status"] == "pending"
