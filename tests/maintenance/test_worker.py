"""Maintenance in the server: cleanup and staged rotation, one pass per interval by
one worker of all nodes (lock + last-run record), figures returned and logged."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from authserver.app import create_app
from authserver.audit.models import AuditEvent
from authserver.db import transaction, utcnow
from authserver.keys.models import StoredKey
from authserver.maintenance import state
from authserver.maintenance.worker import MAINTENANCE_LOCK, run_maintenance
from authserver.tokens.models import RevokedToken
from tests.conftest import ISSUER

INTERVAL = 3600
ROTATION = 30 * 86400


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"maintenance_interval": INTERVAL, "key_rotation_interval": ROTATION, "jwks_max_age": 5}


def test_one_pass_per_interval_with_figures(ctx):
    with transaction(ctx.sessions) as db:
        db.add(RevokedToken(jti="gone", expires_at=utcnow() - dt.timedelta(seconds=5)))
    figures = run_maintenance(ctx)
    assert figures is not None
    assert figures["revoked_tokens"] == 1 and figures["rotated"] is None
    assert run_maintenance(ctx) is None  # ran less than an interval ago
    assert run_maintenance(ctx, now=int(time.time()) + INTERVAL) is not None
    assert run_maintenance(ctx, force=True) is not None


def test_a_due_rotation_happens_in_the_pass_and_is_audited(ctx):
    first = ctx.keys.active
    with transaction(ctx.sessions) as db:
        row = db.get(StoredKey, first.kid)
        assert row is not None
        row.activates_at -= dt.timedelta(seconds=ROTATION)
        state.bump(db, state.SIGNING_KEYS)
    figures = run_maintenance(ctx)
    assert figures is not None and figures["rotated"] not in (None, first.kid)
    statuses = {k.kid: k.status for k in ctx.keys.keys(alg="RS256")}
    assert statuses == {first.kid: "active", figures["rotated"]: "pending"}
    # the ES256 and EdDSA chains rotate with it
    others = [k.status for k in ctx.keys.keys() if k.alg != "RS256"]  # noqa: SIM118
    assert sorted(others) == ["active", "active", "pending", "pending"]
    with transaction(ctx.sessions) as db:
        events = db.scalars(sa.select(AuditEvent).where(AuditEvent.event == "key_rotated")).all()
        [event] = [e for e in events if e.detail["alg"] == "RS256"]
        assert len(events) == 3
        assert event.detail["actor"] == "maintenance" and event.detail["kid"] == figures["rotated"]


def test_a_pass_is_skipped_while_another_worker_holds_the_lock(ctx, backend):
    if backend != "postgres":
        pytest.skip("on SQLite the lock is the database's write lock (see the race test)")
    with ctx.engine.connect() as holder:
        holder.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MAINTENANCE_LOCK})
        assert run_maintenance(ctx, force=True) is None
        holder.rollback()
    assert run_maintenance(ctx, force=True) is not None


RACER = """
import json, sys, time
from authserver.context import Context
from authserver.db import import_models
from authserver.maintenance.worker import run_maintenance
from authserver.settings import Settings
import_models()
ctx = Context(Settings.from_env())
start = float(sys.argv[1])
_ = ctx.keys.keys()
while time.time() < start:
    pass
print(json.dumps(run_maintenance(ctx)))
ctx.close()
"""


def test_racing_workers_run_one_pass(ctx):
    s = ctx.settings
    env = {**os.environ, "AUTHSERVER_DATABASE_URL": s.database_url, "AUTHSERVER_SECRET_KEY": s.secret_key.get(),
           "AUTHSERVER_ISSUER": s.issuer, "AUTHSERVER_KEYS_DIR": str(s.keys_dir),
           "AUTHSERVER_MAINTENANCE_INTERVAL": str(INTERVAL), "AUTHSERVER_LOG_LEVEL": "warning"}
    env.pop("AUTHSERVER_REDIS_URL", None)
    start = str(time.time() + 4)
    racers = [subprocess.Popen([sys.executable, "-c", RACER, start], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=60) for p in racers]
    assert [p.returncode for p in racers] == [0, 0], [err for _, err in results]
    passes = [json.loads(out) for out, _ in results]
    assert sorted(p is None for p in passes) == [False, True], passes


def test_the_server_runs_maintenance_in_its_lifespan(ctx, monkeypatch):
    settings = ctx.settings.__class__(**{**ctx.settings.__dict__, "maintenance_interval": 2})
    ctx.settings = settings
    with TestClient(create_app(settings, context=ctx), base_url=ISSUER):
        for _ in range(150):
            with transaction(ctx.sessions) as db:
                if state.get(db, state.MAINTENANCE_AT):
                    break
            time.sleep(0.1)
        else:
            pytest.fail("no maintenance pass within 15 s")
