"""``authserver cleanup`` and ``authserver deny-list …``."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa

from authserver.accounts.models import EmailCode
from authserver.db import transaction, utcnow
from authserver.security.models import IpDenyEntry
from authserver.sessions.models import BrowserSession
from authserver.tokens.models import AuthorizationCode, RefreshToken, RevokedToken, TokenCutoff
from tests.cli.conftest import age_keys, assert_error, audit_events, fresh_keys


def test_cleanup_deletes_only_dead_rows(run, ctx, make_user, make_client):
    user = make_user("alice")
    cid, _ = make_client()
    now = utcnow()
    old, fresh = now - dt.timedelta(days=3), now + dt.timedelta(hours=1)

    def code(n: int, expires: dt.datetime) -> AuthorizationCode:
        return AuthorizationCode(code_hash=f"c{n}", client_id=cid, user_id=user.id, redirect_uri="x",
                                 scope="openid", auth_time=0, expires_at=expires)

    def token(n: int, expires: dt.datetime, family: dt.datetime, **kw: Any) -> RefreshToken:
        return RefreshToken(token_hash=f"t{n}", family_id=f"f{n}", client_id=cid, user_id=user.id,
                            scope="openid", expires_at=expires, family_expires_at=family, **kw)

    def session(n: int, expires: dt.datetime) -> BrowserSession:
        return BrowserSession(id=f"s{n}", sid=f"sid{n}", csrf_secret="x", expires_at=expires)

    with transaction(ctx.sessions) as db:
        db.add_all([
            code(1, old), code(2, now - dt.timedelta(seconds=30)),
            token(1, old, old),  # family expired
            token(2, old, fresh, revoked_at=old),  # revoked and expired
            token(3, old, fresh),  # idle-expired, never rotated
            token(4, old, fresh, rotated_at=old),  # rotated: kept for reuse detection until the family ends
            token(5, fresh, fresh),
            session(1, old), session(2, fresh),
            EmailCode(purpose="reset", email="a@example.com", code_hash="e1", expires_at=old),
            EmailCode(purpose="reset", email="a@example.com", code_hash="e2", expires_at=fresh),
            RevokedToken(jti="j1", expires_at=now - dt.timedelta(seconds=1)), RevokedToken(jti="j2", expires_at=fresh),
            TokenCutoff(subject_kind="user", subject_id="u1", not_before=0, expires_at=old),
            TokenCutoff(subject_kind="user", subject_id="u2", not_before=0, expires_at=fresh),
        ])
    status, out, _ = run("cleanup")
    assert status == 0
    counts = dict(line.split(":", 1) for line in out.splitlines())
    assert counts["authorization_codes"].strip() == "1 deleted"
    assert counts["refresh_tokens"].strip() == "3 deleted"
    assert counts["browser_sessions"].strip() == "1 deleted"
    assert counts["email_codes"].strip() == "1 deleted"
    assert counts["revoked_tokens"].strip() == "1 deleted"
    assert counts["token_cutoffs"].strip() == "1 deleted"
    with transaction(ctx.sessions) as db:
        assert db.scalars(sa.select(AuthorizationCode.code_hash)).all() == ["c2"]
        assert sorted(db.scalars(sa.select(RefreshToken.token_hash))) == ["t4", "t5"]
        assert db.scalars(sa.select(BrowserSession.id)).all() == ["s2"]
        assert db.scalars(sa.select(EmailCode.code_hash)).all() == ["e2"]
        assert db.scalars(sa.select(RevokedToken.jti)).all() == ["j2"]
        assert db.scalars(sa.select(TokenCutoff.subject_id)).all() == ["u2"]


def test_cleanup_removes_retired_keys(run, ctx, settings):
    [first] = ctx.keys.keys()
    second = ctx.keys.rotate(delay=0)
    # make the first key's successor old enough that the first one is retired
    age_keys(ctx, 86400)
    age_keys(ctx, 86400, only=first.kid)
    status, out, _ = run("cleanup")
    assert status == 0 and "retired_keys: 1 deleted" in out
    assert [k.kid for k in fresh_keys(ctx)] == [second.kid]


# -- deny list ----------------------------------------------------------------


def test_deny_list_add_list_remove(run, ctx):
    assert run("deny-list", "add", "203.0.113.7", "--reason", "abuse")[0] == 0
    assert run("deny-list", "add", "2001:db8::/32")[0] == 0
    status, out, _ = run("deny-list", "list")
    assert status == 0 and "203.0.113.7/32" in out and "abuse" in out and "2001:db8::/32" in out
    with transaction(ctx.sessions) as db:
        assert sorted(db.scalars(sa.select(IpDenyEntry.cidr))) == ["2001:db8::/32", "203.0.113.7/32"]
    assert_error(run("deny-list", "add", "203.0.113.7/32"), "already")
    assert run("deny-list", "remove", "203.0.113.7")[0] == 0
    assert_error(run("deny-list", "remove", "203.0.113.7"), "not on the deny list")
    assert [e.detail["action"] for e in audit_events(ctx, "deny_list_changed")] == ["add", "add", "remove"]


@pytest.mark.parametrize("cidr", ["10.0.0.1/8", "not-an-ip", "300.1.1.1"])
def test_deny_list_rejects_bad_cidr(run, cidr):
    assert_error(run("deny-list", "add", cidr))


def test_cleanup_json_and_deny_list_json(run):
    status, out, _ = run("cleanup", "--json")
    assert status == 0
    assert json.loads(out) == {"authorization_codes": 0, "refresh_tokens": 0, "browser_sessions": 0, "devices": 0,
                               "email_codes": 0, "initial_access_tokens": 0, "revoked_tokens": 0,
                               "token_cutoffs": 0, "client_assertion_jtis": 0,
                               "pushed_authorization_requests": 0, "retired_keys": 0}
    run("deny-list", "add", "198.51.100.0/24", "--reason", "scan")
    [entry] = json.loads(run("deny-list", "list", "--json")[1])
    assert entry["cidr"] == "198.51.100.0/24" and entry["reason"] == "scan"


def test_deny_list_rejects_a_long_reason(run):
    assert_error(run("deny-list", "add", "198.51.100.7", "--reason", "x" * 201), "at most 200")
