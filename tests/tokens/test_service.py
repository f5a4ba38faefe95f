"""``authserver.tokens.service``: family revocation, atomic claims and the
revoked-``jti`` list, on the rows themselves (RFC 6749 §4.1.2, §6; RFC 9700 §4.14)."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
import sqlalchemy as sa

from authserver.accounts.models import User
from authserver.db import transaction, utcnow
from authserver.tokens import service
from authserver.tokens.models import AuthorizationCode, RefreshToken, RevokedToken


@pytest.fixture
def revoked(ctx):
    return ctx.revoked


def _revoked_jtis(ctx) -> set[str]:
    """The record of revoked access tokens (``revoked_tokens``), which every cache is filled from."""
    with transaction(ctx.sessions) as db:
        return set(db.scalars(sa.select(RevokedToken.jti)))


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
    assert _revoked_jtis(ctx) == {f"{family}-0", f"{family}-1"}  # expired access tokens need no entry


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
    jtis = _revoked_jtis(ctx)
    assert f"{a1}-1" in jtis and f"{a2}-1" in jtis and f"{b1}-1" not in jtis


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


def test_claim_code_only_of_a_user_not_disabled(ctx, make_user, make_client):
    """The claim checks the code's own user (another user's state does not count): a
    disabled user's code is not claimed, and stays unused."""
    alice, bob = make_user("alice"), make_user("bob")
    cid, _ = make_client()
    with transaction(ctx.sessions) as db:
        db.execute(sa.update(User).where(User.id == alice.id).values(disabled=True))
        disabled, enabled = _code(db, alice.id, cid), _code(db, bob.id, cid)
        assert service.claim_code(db, disabled, cid) is None
        assert db.scalar(sa.select(AuthorizationCode.used_at).where(AuthorizationCode.code_hash == disabled)) is None
        assert service.claim_code(db, enabled, cid) is not None


def _live_token(db, user_id, client_id, **changes) -> str:
    """One unrotated refresh token (``changes`` override its columns); returns its hash."""
    now = utcnow()
    values = dict(token_hash=secrets.token_hex(32), family_id=secrets.token_hex(8), client_id=client_id,
                  user_id=user_id, scope="openid", amr=["pwd"], expires_at=now + dt.timedelta(days=1),
                  family_expires_at=now + dt.timedelta(days=9))
    db.add(RefreshToken(**{**values, **changes}))
    db.flush()
    return values["token_hash"] if "token_hash" not in changes else changes["token_hash"]


def test_claim_live_refresh_token_once_and_only_a_live_one_of_its_client(ctx, make_user, make_client, revoked):
    """Each condition of the claim (``tokens.service.CLAIM_REFRESH_TOKEN``): its client, not
    rotated, not revoked, not expired, its family not expired, its user not disabled; a claim marks it rotated
    and returns its columns by name, datetimes aware (UTC)."""
    user = make_user()
    blocked = make_user(username="blocked", email="blocked@example.com")
    cid, _ = make_client()
    other, _ = make_client()
    past = utcnow() - dt.timedelta(seconds=1)
    with transaction(ctx.sessions) as db:
        live = _live_token(db, user.id, cid)
        assert service.claim_live_refresh_token(db, live, other) is None  # another client's
        row = service.claim_live_refresh_token(db, live, cid)
        claimed_id = db.scalar(sa.select(RefreshToken.id).where(RefreshToken.token_hash == live))
        assert row is not None and row.id == claimed_id and row.user_id == user.id and row.amr == ["pwd"]
        assert row.rotated_at is not None and row.rotated_at.tzinfo is not None
        assert row.family_expires_at.tzinfo is not None
        assert service.claim_live_refresh_token(db, live, cid) is None  # once only
        assert db.scalar(sa.select(RefreshToken.rotated_at).where(RefreshToken.token_hash == live)) is not None
        for dead in (dict(revoked_at=past), dict(rotated_at=past), dict(expires_at=past),
                     dict(family_expires_at=past)):
            token_hash = _live_token(db, user.id, cid, **dead)
            assert service.claim_live_refresh_token(db, token_hash, cid) is None, dead
        assert service.claim_live_refresh_token(db, secrets.token_hex(32), cid) is None  # unknown
        token_hash = _live_token(db, blocked.id, cid)
        db.execute(sa.update(User).where(User.id == blocked.id).values(disabled=True))
        assert service.claim_live_refresh_token(db, token_hash, cid) is None  # its user disabled
        db.execute(sa.update(User).where(User.id == blocked.id).values(disabled=False))
        assert service.claim_live_refresh_token(db, token_hash, cid) is not None


def test_a_claim_is_released_as_if_never_presented(ctx, make_user, make_client, revoked):
    """The release undoes its own claim only: not a token revoked meanwhile, nor one
    claimed again since (another ``rotated_at``)."""
    user = make_user()
    cid, _ = make_client()
    with transaction(ctx.sessions) as db:
        live = _live_token(db, user.id, cid)
        beside = _live_token(db, user.id, cid)
        row = service.claim_live_refresh_token(db, live, cid)
        assert service.claim_live_refresh_token(db, beside, cid) is not None
        db.execute(sa.update(RefreshToken).where(RefreshToken.token_hash == beside)
                   .values(rotated_at=row.rotated_at))  # rotated in the same second
        service.release_refresh_token(db, row)
        assert service.claim_live_refresh_token(db, live, cid) is not None
        assert service.claim_live_refresh_token(db, beside, cid) is None  # only the one released

        revoked_since = _live_token(db, user.id, cid)
        row = service.claim_live_refresh_token(db, revoked_since, cid)
        db.execute(sa.update(RefreshToken).where(RefreshToken.token_hash == revoked_since)
                   .values(revoked_at=utcnow()))
        service.release_refresh_token(db, row)
        assert db.scalar(sa.select(RefreshToken.rotated_at).where(RefreshToken.token_hash == revoked_since))

        claimed_since = _live_token(db, user.id, cid)
        row = service.claim_live_refresh_token(db, claimed_since, cid)
        later = row.rotated_at + dt.timedelta(seconds=5)
        db.execute(sa.update(RefreshToken).where(RefreshToken.token_hash == claimed_since)
                   .values(rotated_at=later))
        service.release_refresh_token(db, row)
        assert db.scalar(sa.select(RefreshToken.rotated_at).where(
            RefreshToken.token_hash == claimed_since)) == later


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
    assert {"code-jti", f"{family}-0"} <= _revoked_jtis(ctx)


def test_a_cutoff_lasts_as_long_as_the_tokens_it_ends_and_only_moves_forward(ctx, revoked, monkeypatch):
    """``_cut_off``: ``not_before`` is the next second (tokens issued in this one are caught),
    the row lives as long as an access token issued now could (lifetime + clock skew), a
    second cutoff of the same subject never moves it back, and subjects stay apart."""
    from authserver.tokens.models import TokenCutoff

    now = [1_800_000_000.4]
    monkeypatch.setattr(service.time, "time", lambda: now[0])
    with transaction(ctx.sessions) as db:
        assert service._cut_off(db, revoked, "user", "u1") == 1_800_000_001
        assert service._cut_off(db, revoked, "user", "u2") == 1_800_000_001
    now[0] += 100
    with transaction(ctx.sessions) as db:
        assert service._cut_off(db, revoked, "user", "u1") == 1_800_000_101
    now[0] -= 50  # a node whose clock is behind: the cutoff stays where it is
    with transaction(ctx.sessions) as db:
        assert service._cut_off(db, revoked, "user", "u1") == 1_800_000_101
    with transaction(ctx.sessions) as db:
        rows = {(r.subject_id, r.not_before, int(service._aware(r.expires_at).timestamp()))
                for r in db.scalars(sa.select(TokenCutoff))}
    lifetime = revoked.lifetime + service.CLOCK_SKEW
    assert rows == {("u1", 1_800_000_101, 1_800_000_101 + lifetime), ("u2", 1_800_000_001, 1_800_000_001 + lifetime)}
    with transaction(ctx.sessions) as db:
        assert revoked.not_before(db, [("user", "u1")]) == 1_800_000_101
