"""KeyStore: private files, RFC 7638 kids, rotation over time, public-only JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from authserver.app import create_app
from authserver.keys.service import CLOCK_SKEW, KeyError_, KeyStore
from authserver.settings import SettingsError
from tests.conftest import make_settings

DELAY = 600
RETAIN = 900
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    path = tmp_path / "keys"
    path.mkdir(mode=0o700)
    return KeyStore(path, activation_delay=DELAY, retain_seconds=RETAIN)


def fresh(store: KeyStore) -> KeyStore:
    """A second view of the directory (another worker), without the 1 s re-read throttle."""
    return KeyStore(store.keys_dir, activation_delay=DELAY, retain_seconds=RETAIN)


def b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rfc7638_thumbprint(pem: bytes) -> str:
    private = serialization.load_pem_private_key(pem, password=None)
    numbers = private.public_key().public_numbers()  # type: ignore[union-attr]
    members = {"e": b64url_uint(numbers.e), "kty": "RSA", "n": b64url_uint(numbers.n)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def test_generated_key_is_private_and_named_by_its_thumbprint(store):
    store.ensure_key()
    [pem] = list(store.keys_dir.glob("*.pem"))
    assert pem.stat().st_mode & 0o777 == 0o600
    kid = pem.stem
    assert kid == rfc7638_thumbprint(pem.read_bytes())
    meta = json.loads((store.keys_dir / f"{kid}.json").read_text())
    assert meta["kid"] == kid and meta["alg"] == "RS256"
    assert b"PRIVATE" not in (store.keys_dir / f"{kid}.json").read_bytes()
    assert store.active.kid == kid


def test_ensure_key_is_idempotent(store):
    store.ensure_key()
    store.ensure_key()
    fresh(store).ensure_key()
    assert len(list(store.keys_dir.glob("*.pem"))) == 1


def test_rotation_gives_distinct_kids(store):
    store.ensure_key()
    kids = {store.rotate(delay=0).kid for _ in range(3)}
    kids |= {k.kid for k in fresh(store).keys()}  # noqa: SIM118
    assert len(kids) == 4
    assert len(list(store.keys_dir.glob("*.pem"))) == 4


def test_statuses_over_time(store):
    store.ensure_key()
    [first] = store.keys()
    second = store.rotate()  # activation_delay ahead
    t0 = second.activates_at - DELAY
    assert second.activates_at > first.activates_at

    def statuses(now: int) -> dict[str, str]:
        return {k.kid: k.status for k in fresh(store).keys(now=now)}

    assert statuses(t0) == {first.kid: "active", second.kid: "pending"}
    assert statuses(second.activates_at - 1) == {first.kid: "active", second.kid: "pending"}
    assert statuses(second.activates_at) == {first.kid: "published", second.kid: "active"}
    retires_at = second.activates_at + RETAIN + CLOCK_SKEW
    [old] = [k for k in fresh(store).keys(now=second.activates_at) if k.kid == first.kid]
    assert old.retires_at == retires_at
    assert statuses(retires_at - 1) == {first.kid: "published", second.kid: "active"}
    assert statuses(retires_at) == {first.kid: "retired", second.kid: "active"}


def test_pending_key_is_published_but_does_not_sign(store):
    store.ensure_key()
    active = store.active.kid
    pending = store.rotate(delay=3600)
    view = fresh(store)
    assert view.active.kid == active
    assert {k["kid"] for k in view.jwks["keys"]} == {active, pending.kid}
    assert [k.kid for k in view.signing_set.keys] == [active]


def test_remove_retired_deletes_only_retired_files(store):
    store.ensure_key()
    [first] = store.keys()
    second = store.rotate(delay=0)
    meta_path = store.keys_dir / f"{first.kid}.json"
    meta = json.loads(meta_path.read_text())
    meta["activates_at"] -= 10 * 86400
    meta_path.write_text(json.dumps(meta))
    meta_path = store.keys_dir / f"{second.kid}.json"
    meta = json.loads(meta_path.read_text())
    meta["activates_at"] -= 5 * 86400
    meta_path.write_text(json.dumps(meta))
    view = fresh(store)
    assert view.remove_retired() == [first.kid]
    assert sorted(p.name for p in store.keys_dir.iterdir()) == [f"{second.kid}.json", f"{second.kid}.pem"]
    assert [k["kid"] for k in fresh(store).jwks["keys"]] == [second.kid]


def test_jwks_has_public_members_only(store):
    store.ensure_key()
    store.rotate(delay=60)
    jwks = fresh(store).jwks
    assert len(jwks["keys"]) == 2
    for jwk in jwks["keys"]:
        assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}
        assert not PRIVATE_MEMBERS & set(jwk)
        assert jwk["kty"] == "RSA" and jwk["alg"] == "RS256" and jwk["use"] == "sig"
    assert not PRIVATE_MEMBERS & set(json.loads(fresh(store).jwks_bytes)["keys"][0])


def test_empty_directory_has_no_signing_key(store):
    with pytest.raises(KeyError_, match="keys rotate"):
        _ = store.active


def test_readable_key_file_is_refused(store):
    store.ensure_key()
    [pem] = list(store.keys_dir.glob("*.pem"))
    os.chmod(pem, 0o644)
    with pytest.raises(SettingsError, match="chmod 600"):
        fresh(store).keys()
    with pytest.raises(SettingsError):
        store.check_permissions()


def test_server_refuses_to_start_with_a_readable_key(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    store = KeyStore(keys, activation_delay=0, retain_seconds=600)
    store.ensure_key()
    [pem] = list(keys.glob("*.pem"))
    pem.chmod(0o644)
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", keys_dir=keys)
    with pytest.raises(SettingsError, match="readable by others"):
        create_app(settings)


def test_jwks_endpoint(client, ctx):
    r = client.get("/jwks.json")
    assert r.status_code == 200
    assert r.headers["cache-control"] == f"public, max-age={ctx.settings.jwks_max_age}"
    assert r.headers["content-type"].startswith("application/jwk-set+json")
    body = r.json()
    assert [k["kid"] for k in body["keys"]] == [k["kid"] for k in ctx.keys.jwks["keys"]]
    for jwk in body["keys"]:
        assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}
