"""``authserver.tokens.service``: family revocation, atomic claims and the
revoked-``jti`` list, on the rows themselves (RFC 6749 §4.1.2, §6; RFC 9700 §4.14)."""

from __future__ import annotations

import datetime as dt
import secrets
import socket
import time

import pytest
import redis
import sqlalchemy as sa

from authserver.db import transaction, utcnow
from authserver.tokens import service
from authserver.tokens.models import AuthorizationCode, RefreshToken


@pytest.fixture
def revoked():
    return service.RevokedJtiList()


def _family(db, user_id, client_id, *, members=2, live_access=True) -> str:
    """A family of ``members`` rows, all but the last rotated; returns its id."""
    family = secrets.token_hex(8)
    now = utcnow()
    for i in range(members):
        db.add(RefreshToken(
            token_hash=secrets.token_hex(32), family_id=family, client_id=client_id, user_id=user_id,
            scope="openid", expires_at=now + dt.timedelta(days=1), family_expires_at=now + dt.timedelta(days=9),
            rotated_at=now if i < members - 1 else None,
            access_token_jti=f"{family}-{i}",
            access_token_expires_at=now + dt.timedelta(minutes=10 if live_access else -10),
        ))
    db.flush()
    return family


def _revoked_rows(db, family) -> list[bool]:
    return [r is not None for r in db.scalars(
        sa.select(RefreshToken.revoked_at).where(RefreshToken.family_id == family).order_by(RefreshToken.id))]


def test_revoke_family_revokes_its_rows_and_live_access_tokens_only(ctx, make_user, make_client, revoked):
    user = make_user()
    cid, _ = make_client()
    with transaction(ctx.sessions) as db:
        family = _family(db, user.id, cid)
        other = _family(db, user.id, cid)
        expired = _family(db, user.id, cid, live_access=False)
        assert service.revoke_family(db, revoked, family) == 2
        assert _revoked_rows(db, family) == [True, True] and _revoked_rows(db, other) == [False, False]
        assert service.revoke_family(db, revoked, family) == 0  # already revoked
        service.revoke_family(db, revoked, expired)
    assert revoked.is_revoked(f"{family}-0") and revoked.is_revoked(f"{family}-1")
    assert not revoked.is_revoked(f"{other}-1")
    assert revoked._memory.keys() == {f"{family}-0", f"{family}-1"}  # expired access tokens need no entry


def test_revoke_user_families_spares_other_users_and_other_clients(ctx, make_user, make_client, revoked):
    alice, bob = make_user(), make_user("bob")
    cid, _ = make_client()
    other_cid, _ = make_client()
    with transaction(ctx.sessions) as db:
        a1, a2 = _family(db, alice.id, cid), _family(db, alice.id, other_cid)
        b1 = _family(db, bob.id, cid)
        assert service.revoke_user_families(db, revoked, alice.id, client_id=cid) == 2
        assert _revoked_rows(db, a1) == [True, True]
        assert _revoked_rows(db, a2) == [False, False] and _revoked_rows(db, b1) == [False, False]
        assert service.revoke_user_families(db, revoked, alice.id) == 2
        assert _revoked_rows(db, a2) == [True, True] and _revoked_rows(db, b1) == [False, False]
        assert service.revoke_user_families(db, revoked, alice.id) == 0
    assert revoked.is_revoked(f"{a1}-1") and revoked.is_revoked(f"{a2}-1") and not revoked.is_revoked(f"{b1}-1")


def _code(db, user_id, client_id, **values) -> str:
    code_hash = secrets.token_hex(32)
    db.add(AuthorizationCode(code_hash=code_hash, client_id=client_id, user_id=user_id, redirect_uri="x",
                             scope="openid", auth_time=0,
                             expires_at=values.pop("expires_at", utcnow() + dt.timedelta(seconds=60)), **values))
    db.flush()
    return code_hash


def test_claim_code_once_for_its_client_before_it_expires(ctx, make_user, make_client):
    user = make_user()
    cid, _ = make_client()
    other, _ = make_client()
    with transaction(ctx.sessions) as db:
        live = _code(db, user.id, cid)
        sibling = _code(db, user.id, cid)  # another outstanding code of the same client
        expired = _code(db, user.id, cid, expires_at=utcnow() - dt.timedelta(seconds=1))
        assert service.claim_code(db, live, other) is None
        row = service.claim_code(db, live, cid)
        assert row is not None and row.code_hash == live
        assert service.claim_code(db, live, cid) is None
        assert service.claim_code(db, sibling, cid) is not None
        assert service.claim_code(db, expired, cid) is None
        assert db.scalar(sa.select(AuthorizationCode.used_at).where(AuthorizationCode.code_hash == expired)) is None


def test_claim_refresh_token_once_and_never_a_revoked_one(ctx, make_user, make_client, revoked):
    user = make_user()
    cid, _ = make_client()
    with transaction(ctx.sessions) as db:
        family = _family(db, user.id, cid, members=1)
        (token_id,) = db.scalars(sa.select(RefreshToken.id).where(RefreshToken.family_id == family))
        assert service.claim_refresh_token(db, token_id) is True
        assert service.claim_refresh_token(db, token_id) is False
        dead = _family(db, user.id, cid, members=1)
        service.revoke_family(db, revoked, dead)
        (dead_id,) = db.scalars(sa.select(RefreshToken.id).where(RefreshToken.family_id == dead))
        assert service.claim_refresh_token(db, dead_id) is False


def test_revoke_code_issue_revokes_the_family_and_the_access_token(ctx, make_user, make_client, revoked):
    user = make_user()
    cid, _ = make_client()
    with transaction(ctx.sessions) as db:
        family = _family(db, user.id, cid, members=1)
        code_hash = _code(db, user.id, cid, family_id=family, access_token_jti="code-jti",
                          access_token_expires_at=utcnow() + dt.timedelta(minutes=5))
        code = db.scalar(sa.select(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash))
        service.revoke_code_issue(db, revoked, code)
        assert _revoked_rows(db, family) == [True]
    assert revoked.is_revoked("code-jti") and revoked.is_revoked(f"{family}-0")


def test_revoked_jti_is_kept_until_its_exp_and_not_after(revoked):
    revoked.revoke("gone", time.time() - 5)
    assert "gone" not in revoked._memory and not revoked.is_revoked("gone")
    revoked.revoke("live", time.time() + 60)
    assert revoked.is_revoked("live") and not revoked.is_revoked("other")
    revoked._memory["live"] = time.time() - 1  # as if its exp had passed
    assert not revoked.is_revoked("live") and "live" not in revoked._memory


def test_revoked_jti_list_fails_closed_when_redis_is_unreachable():
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        down = redis.Redis(host="127.0.0.1", port=closed.getsockname()[1], socket_connect_timeout=0.2,
                           socket_timeout=0.2)
        revoked = service.RevokedJtiList(down, prefix="authserver-test:")
        assert revoked.is_revoked("anything") is True
        # a revocation that cannot reach Redis is still honoured by this process
        revoked.revoke("jti-1", time.time() + 60)
        assert revoked._memory.get("jti-1", 0) > time.time()


@pytest.fixture
def redis_client():
    from tests.conftest import REDIS_URL

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.skip(f"Redis unreachable: {exc}")
    yield client
    client.close()


def test_revoked_jti_list_in_redis_is_shared_and_expires(redis_client):
    prefix = f"authserver-test:{secrets.token_hex(6)}:"
    try:
        writer = service.RevokedJtiList(redis_client, prefix=prefix)
        writer.revoke("jti-1", time.time() + 30)
        assert writer._memory == {}  # stored in Redis, not in this process
        assert 0 < redis_client.ttl(f"{prefix}revoked-jti:jti-1") <= 31
        # another worker sees it; an unknown jti is not revoked
        reader = service.RevokedJtiList(redis_client, prefix=prefix)
        assert reader.is_revoked("jti-1") is True
        assert reader.is_revoked("jti-2") is False
    finally:
        for key in redis_client.scan_iter(match=prefix + "*"):
            redis_client.delete(key)
