"""KeyStore: keys in the database sealed under SECRET_KEY, RFC 7638 kids, staged
rotation over time, one rotation among racing processes, public-only JWKS."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from authserver.app import create_app
from authserver.context import Context
from authserver.db import transaction
from authserver.keys.models import StoredKey
from authserver.keys.service import CLOCK_SKEW, KeyError_, KeyStore
from authserver.maintenance.state import ChangeWatcher
from authserver.security.crypto import SecretBox
from authserver.settings import Secret, SettingsError
from tests.conftest import make_settings, write_key_files

DELAY = 600
RETAIN = 900
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


_WATCHERS: list[ChangeWatcher] = []


def view(ctx: Context, *, box: SecretBox | None = None, interval: float = 0.0, keys_dir: Path | None = None,
         **kw: Any) -> KeyStore:
    """A key store as another process sees the database (its own change watcher)."""
    watcher = ChangeWatcher(ctx.engine, interval=interval)
    _WATCHERS.append(watcher)
    return KeyStore(ctx.sessions, box or ctx.box, watcher, keys_dir=keys_dir or Path("/nonexistent"),
                    activation_delay=DELAY, retain_seconds=RETAIN, **kw)


@pytest.fixture
def store(ctx: Context) -> Iterator[KeyStore]:
    with transaction(ctx.sessions) as db:
        db.execute(sa.delete(StoredKey))
    yield view(ctx)
    while _WATCHERS:
        _WATCHERS.pop().close()


def rows(ctx: Context, alg: str | None = "RS256") -> list[StoredKey]:
    """The stored keys of ``alg`` (RS256 unless told: each algorithm has its own chain)."""
    with transaction(ctx.sessions) as db:
        return [r for r in db.scalars(sa.select(StoredKey)) if alg is None or r.alg == alg]


def rsa_kids(jwks: dict[str, Any]) -> list[str]:
    return [k["kid"] for k in jwks["keys"] if k["alg"] == "RS256"]


def b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rfc7638_thumbprint(pem: bytes) -> str:
    private = serialization.load_pem_private_key(pem, password=None)
    numbers = private.public_key().public_numbers()  # type: ignore[union-attr]
    members = {"e": b64url_uint(numbers.e), "kty": "RSA", "n": b64url_uint(numbers.n)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def test_generated_key_is_sealed_and_named_by_its_thumbprint(store, ctx):
    store.ensure_key()
    [row] = rows(ctx)
    assert row.sealed_private_key.startswith("v1.") and b"PRIVATE" not in row.sealed_private_key.encode()
    pem = ctx.box.decrypt(row.sealed_private_key, row.kid.encode())
    assert row.kid == rfc7638_thumbprint(pem)
    assert store.active.kid == row.kid


def test_a_sealed_key_cannot_be_moved_to_another_kid(store, ctx):
    store.ensure_key()
    [row] = rows(ctx)
    with transaction(ctx.sessions) as db:
        db.add(StoredKey(kid="forged", sealed_private_key=row.sealed_private_key,
                         activates_at=dt.datetime.now(dt.UTC)))
    with pytest.raises(KeyError_, match="forged"):
        view(ctx).keys()


def test_another_secret_key_cannot_open_the_keys_until_listed_as_previous(store, ctx):
    store.ensure_key()
    new_secret = "another-secret-key-" + "y" * 40
    with pytest.raises(KeyError_, match="AUTHSERVER_PREVIOUS_SECRET_KEYS"):
        view(ctx, box=SecretBox(new_secret)).keys()
    rotated = SecretBox(new_secret, (ctx.settings.secret_key.get(),))
    assert view(ctx, box=rotated).active.kid == store.active.kid


def test_ensure_key_is_idempotent(store, ctx):
    store.ensure_key()
    store.ensure_key()
    view(ctx).ensure_key()
    assert len(rows(ctx)) == 1
    assert sorted(r.alg for r in rows(ctx, None)) == ["ES256", "EdDSA", "RS256"]


def test_ensure_key_imports_the_key_files_once_keeping_their_kids(store, ctx, tmp_path):
    keys_dir = tmp_path / "old-keys"
    keys_dir.mkdir(mode=0o700)
    old = write_key_files(keys_dir, activates_at=int(time.time()) - 100)
    importer = view(ctx, keys_dir=keys_dir)
    importer.ensure_key()
    importer.ensure_key()
    assert [r.kid for r in rows(ctx)] == [old]
    assert importer.active.kid == old
    newer = write_key_files(keys_dir, activates_at=int(time.time()) - 50)
    assert importer.import_dir(keys_dir) == [newer]
    assert importer.import_dir(keys_dir) == []
    assert view(ctx).active.kid == newer


def test_a_readable_key_file_is_refused_on_import(store, ctx, tmp_path):
    keys_dir = tmp_path / "old-keys"
    keys_dir.mkdir(mode=0o700)
    kid = write_key_files(keys_dir)
    os.chmod(keys_dir / f"{kid}.pem", 0o644)
    with pytest.raises(SettingsError, match="chmod 600"):
        view(ctx, keys_dir=keys_dir).ensure_key()
    assert rows(ctx) == []


def test_rotation_gives_distinct_kids(store, ctx):
    store.ensure_key()
    kids = {store.rotate(delay=0).kid for _ in range(3)}
    kids |= {k.kid for k in view(ctx).keys(alg="RS256")}
    assert len(kids) == 4 == len(rows(ctx))
    assert len({r.kid for r in rows(ctx, None)}) == 12 == len(rows(ctx, None))  # 4 of each algorithm


def test_statuses_over_time(store, ctx):
    store.ensure_key()
    [first] = store.keys(alg="RS256")
    second = store.rotate()  # activation_delay ahead
    t0 = second.activates_at - DELAY
    assert second.activates_at > first.activates_at

    def statuses(now: int) -> dict[str, str]:
        return {k.kid: k.status for k in view(ctx).keys(now=now, alg="RS256")}

    assert statuses(t0) == {first.kid: "active", second.kid: "pending"}
    assert statuses(second.activates_at - 1) == {first.kid: "active", second.kid: "pending"}
    assert statuses(second.activates_at) == {first.kid: "published", second.kid: "active"}
    retires_at = second.activates_at + RETAIN + CLOCK_SKEW
    [old] = [k for k in view(ctx).keys(now=second.activates_at) if k.kid == first.kid]
    assert old.retires_at == retires_at
    assert statuses(retires_at - 1) == {first.kid: "published", second.kid: "active"}
    assert statuses(retires_at) == {first.kid: "retired", second.kid: "active"}


def test_pending_key_is_published_but_does_not_sign(store, ctx):
    store.ensure_key()
    active = store.active.kid
    pending = store.rotate(delay=3600)
    other = view(ctx)
    assert other.active.kid == active
    assert set(rsa_kids(other.jwks)) == {active, pending.kid}
    assert [k.kid for k in other.signing_set.keys] == [active]


def test_another_process_sees_a_new_key_within_its_poll_interval(store, ctx):
    store.ensure_key()
    other = view(ctx, interval=1.0)
    assert len(rsa_kids(other.jwks)) == 1
    new = store.rotate(delay=0)
    # a rotated key activates strictly after the newest (whole seconds): in the same second
    # as ensure_key that is the next second, so wait for it
    time.sleep(max(0.0, new.activates_at - time.time()) + 0.05)
    assert store.active.kid == new.kid  # the rotating process at once
    time.sleep(1.05)
    assert other.active.kid == new.kid
    assert len(rsa_kids(other.jwks)) == 2


def _age(ctx: Context, kid: str, days: int) -> None:
    with transaction(ctx.sessions) as db:
        row = db.get(StoredKey, kid)
        assert row is not None
        row.activates_at -= dt.timedelta(days=days)
        db.execute(sa.text("UPDATE cluster_state SET value = value + 1 WHERE name = 'signing_keys'"))


def test_remove_retired_deletes_only_retired_keys(store, ctx):
    store.ensure_key()
    [first] = store.keys(alg="RS256")
    second = store.rotate(delay=0)
    _age(ctx, first.kid, 10)
    _age(ctx, second.kid, 5)
    assert view(ctx).remove_retired() == [first.kid]
    assert [r.kid for r in rows(ctx)] == [second.kid]
    assert rsa_kids(view(ctx).jwks) == [second.kid]


def test_jwks_has_public_members_only(store, ctx):
    store.ensure_key()
    store.rotate(delay=60)
    jwks = view(ctx).jwks
    assert len(jwks["keys"]) == 6  # two of each algorithm
    members = {"RS256": ("RSA", {"n", "e"}), "ES256": ("EC", {"crv", "x", "y"}), "EdDSA": ("OKP", {"crv", "x"})}
    for jwk in jwks["keys"]:
        kty, public = members[jwk["alg"]]
        assert set(jwk) == {"kty", "kid", "alg", "use", *public}
        assert not PRIVATE_MEMBERS & set(jwk)
        assert jwk["kty"] == kty and jwk["use"] == "sig"
    assert sorted(k["alg"] for k in jwks["keys"]) == ["ES256", "ES256", "EdDSA", "EdDSA", "RS256", "RS256"]
    for jwk in json.loads(view(ctx).jwks_bytes)["keys"]:
        assert not PRIVATE_MEMBERS & set(jwk)


def test_empty_table_has_no_signing_key(store):
    with pytest.raises(KeyError_, match="keys rotate"):
        _ = store.active


# -- staged automatic rotation ------------------------------------------------------

INTERVAL = 90 * 86400
MAX_AGE = 1200  # above DELAY: the publish delay is the larger of the two


def test_rotation_is_due_only_near_the_end_of_the_interval(store, ctx):
    rotating = view(ctx, rotation_interval=INTERVAL, jwks_max_age=MAX_AGE)
    rotating.ensure_key()
    first = rotating.active
    with transaction(ctx.sessions) as db:
        assert rotating.rotate_if_due(db) is None  # a fresh key
    due_at = first.activates_at + INTERVAL - MAX_AGE
    with transaction(ctx.sessions) as db:
        assert rotating.rotate_if_due(db, now=due_at - 1) is None
    with transaction(ctx.sessions) as db:
        new = rotating.rotate_if_due(db, now=due_at)
    assert new is not None
    # published at least the JWKS max-age before it signs (tokens issued now still use `first`)
    assert new.activates_at - int(time.time()) >= MAX_AGE - 2
    statuses = {k.kid: k.status for k in view(ctx).keys(alg="RS256")}
    assert statuses == {first.kid: "active", new.kid: "pending"}
    # every algorithm's chain moved with it
    assert sorted(k.status for k in view(ctx).keys()) == ["active"] * 3 + ["pending"] * 3  # noqa: SIM118
    with transaction(ctx.sessions) as db:
        assert rotating.rotate_if_due(db, now=due_at) is None  # a key is pending already


def test_rotation_off_when_the_interval_is_zero(store, ctx):
    store.ensure_key()
    with transaction(ctx.sessions) as db:
        assert store.rotate_if_due(db, now=int(time.time()) + 10 * INTERVAL) is None


RACER = """
import sys, time
from authserver.context import Context
from authserver.db import import_models, transaction
from authserver.settings import Settings
import_models()
ctx = Context(Settings.from_env())
start, now = float(sys.argv[1]), int(sys.argv[2])
_ = ctx.keys.keys()  # connections and imports warm before the start line
while time.time() < start:
    pass
with transaction(ctx.sessions) as db:
    key = ctx.keys.rotate_if_due(db, now=now)
print(key.kid if key else "-")
ctx.close()
"""


@pytest.mark.parametrize("round_", range(3))
def test_racing_processes_rotate_once(store, ctx, round_):
    """Two processes decide at the same instant that a rotation is due: one adds a key."""
    store.ensure_key()
    first = store.active
    s = ctx.settings
    env = {**os.environ, "AUTHSERVER_DATABASE_URL": s.database_url, "AUTHSERVER_SECRET_KEY": s.secret_key.get(),
           "AUTHSERVER_ISSUER": s.issuer, "AUTHSERVER_KEYS_DIR": str(s.keys_dir),
           "AUTHSERVER_KEY_ROTATION_INTERVAL": str(INTERVAL), "AUTHSERVER_JWKS_MAX_AGE": "60",
           "AUTHSERVER_KEY_ACTIVATION_DELAY": "0", "AUTHSERVER_LOG_LEVEL": "warning"}
    env.pop("AUTHSERVER_REDIS_URL", None)
    due = str(first.activates_at + INTERVAL)
    start = str(time.time() + 4)
    racers = [subprocess.Popen([sys.executable, "-c", RACER, start, due], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=60) for p in racers]
    assert [p.returncode for p in racers] == [0, 0], [err for _, err in results]
    added = sorted(out.strip() for out, _ in results)
    assert added[0] == "-" and added[1] != "-", added
    assert {r.kid for r in rows(ctx)} == {first.kid, added[1]}


# -- the server ---------------------------------------------------------------------


def test_server_refuses_to_start_with_a_readable_key_file(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    kid = write_key_files(keys)
    (keys / f"{kid}.pem").chmod(0o644)
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", keys_dir=keys,
                             secret_key=Secret("s" * 40))
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
        assert set(jwk) >= {"kty", "kid", "alg", "use"} and not PRIVATE_MEMBERS & set(jwk)


def test_jwks_etag_answers_304_until_a_key_changes(client, ctx):
    first = client.get("/jwks.json")
    etag = first.headers["etag"]
    again = client.get("/jwks.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == f"public, max-age={ctx.settings.jwks_max_age}"
    assert client.get("/jwks.json", headers={"If-None-Match": '"other"'}).status_code == 200
    ctx.keys.rotate(delay=3600)  # a pending key is published at once
    changed = client.get("/jwks.json", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert len(changed.json()["keys"]) > len(first.json()["keys"])  # a new key of each algorithm
