"""``authserver keys …``."""

from __future__ import annotations

import datetime as dt
import json

from tests.cli.conftest import age_keys, assert_error, audit_events, fresh_keys
from tests.conftest import write_key_files


def test_keys_rotate_then_list_shows_two_keys(run, ctx):
    [first] = ctx.keys.keys(alg="RS256")
    status, out, _ = run("keys", "rotate", "--delay", "3600")
    assert status == 0
    new_kid = out.split()[2].rstrip(":")
    assert new_kid != first.kid
    status, out, _ = run("keys", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["KID", "STATUS", "ALG", "CREATED", "ACTIVATES", "RETIRES"]
    statuses = {line.split()[0]: line.split()[1] for line in lines[1:] if line.split()[2] == "RS256"}
    assert statuses == {first.kid: "active", new_kid: "pending"}
    assert sorted(line.split()[1:3] for line in lines[1:]) == sorted(
        [[status, alg] for status in ("active", "pending") for alg in ("RS256", "ES256", "EdDSA")])
    events = audit_events(ctx, "key_rotated")
    assert sorted(e.detail["alg"] for e in events) == ["ES256", "EdDSA", "RS256"]
    assert [e.detail["kid"] for e in events if e.detail["alg"] == "RS256"] == [new_kid]


def test_keys_rotate_default_delay_is_at_least_the_jwks_max_age(run, ctx, settings):
    """KEY_ACTIVATION_DELAY is 0 here: the key is still published JWKS_MAX_AGE before it signs."""
    status, out, _ = run("keys", "rotate")
    assert status == 0
    kid = out.split()[2].rstrip(":")
    [new] = [k for k in fresh_keys(ctx) if k.kid == kid]
    assert new.status == "pending"
    assert new.activates_at >= int(dt.datetime.now(dt.UTC).timestamp()) + settings.jwks_max_age - 2


def test_keys_rotate_delay_zero_activates_now(run, ctx):
    age_keys(ctx, 60)  # not the same second as the new key
    status, out, _ = run("keys", "rotate", "--delay", "0")
    assert status == 0
    kid = out.split()[2].rstrip(":")
    statuses = {k.kid: k.status for k in fresh_keys(ctx) if k.alg == "RS256"}
    assert statuses[kid] == "active" and sorted(statuses.values()) == ["active", "published"]


def test_keys_import_keeps_kids_and_skips_known_keys(run, ctx, tmp_path):
    old = tmp_path / "old-keys"
    old.mkdir(mode=0o700)
    kid = write_key_files(old, activates_at=int(dt.datetime.now(dt.UTC).timestamp()) - 3600)
    status, out, _ = run("keys", "import", str(old))
    assert status == 0 and out.strip() == f"imported 1 key(s): {kid}"
    assert run("keys", "import", str(old))[1].strip() == "imported 0 key(s)"
    assert kid in {k.kid for k in fresh_keys(ctx)}
    assert [e.detail["kid"] for e in audit_events(ctx, "key_imported")] == [kid]
    assert_error(run("keys", "import", str(tmp_path / "missing")), "not a directory")


def test_keys_rotate_negative_delay(run):
    assert_error(run("keys", "rotate", "--delay", "-5"), "--delay")


def test_keys_json(run, ctx):
    [first] = ctx.keys.keys(alg="RS256")
    status, out, _ = run("keys", "rotate", "--delay", "3600", "--json")
    assert status == 0
    new = json.loads(out)
    assert new["activates_at"] > new["created_at"]
    listed = {k["kid"]: k for k in json.loads(run("keys", "list", "--json")[1])}
    assert listed[first.kid]["status"] == "active" and listed[new["kid"]]["status"] == "pending"
