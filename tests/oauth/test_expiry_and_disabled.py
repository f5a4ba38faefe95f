"""Lifetimes and disabled accounts at ``/token`` (README "Security model", Protocol).

Expiry is shown by backdating the stored row rather than by sleeping: the grant
compares the row's ``expires_at`` with ``utcnow()``, so a row whose
``expires_at`` lies in the past is exactly a code older than
``AUTHORIZATION_CODE_TTL`` (or a refresh token past its idle or family lifetime).
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from authserver.accounts import service as accounts
from authserver.accounts.models import User
from authserver.db import transaction, utcnow
from authserver.tokens.models import AuthorizationCode, RefreshToken
from tests.flows import exchange, get_code, introspect, refresh, tokens


def _backdate(ctx, model, **values) -> None:
    with transaction(ctx.sessions) as db:
        db.execute(sa.update(model).values(**values))


def _disable(ctx, user_id: str) -> None:
    """Flip the flag only: the grant's own check must refuse, whatever else revokes."""
    with transaction(ctx.sessions) as db:
        db.execute(sa.update(User).where(User.id == user_id).values(disabled=True))


def test_code_older_than_its_ttl_is_invalid_grant(client, ctx, make_user, make_client):
    make_user()
    cid, secret = make_client()
    code, verifier, _ = get_code(client, cid)
    ttl = ctx.settings.authorization_code_ttl
    # issued TTL + 1 s ago: expires_at is 1 s in the past
    _backdate(ctx, AuthorizationCode, created_at=utcnow() - dt.timedelta(seconds=ttl + 1),
              expires_at=utcnow() - dt.timedelta(seconds=1))
    response = exchange(client, cid, secret, code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert response.headers["cache-control"] == "no-store"
    with transaction(ctx.sessions) as db:
        # refused before being claimed: an expired code is not a replay
        assert db.scalar(sa.select(AuthorizationCode.used_at)) is None


def test_code_within_its_ttl_is_accepted(client, ctx, make_user, make_client):
    """The counterpart: the same backdating with a second left still works."""
    make_user()
    cid, secret = make_client()
    code, verifier, _ = get_code(client, cid)
    _backdate(ctx, AuthorizationCode, expires_at=utcnow() + dt.timedelta(seconds=5))
    assert exchange(client, cid, secret, code, verifier).status_code == 200


def test_code_of_a_user_disabled_since_is_invalid_grant(client, ctx, make_user, make_client):
    user = make_user()
    cid, secret = make_client()
    code, verifier, _ = get_code(client, cid)
    _disable(ctx, user.id)
    response = exchange(client, cid, secret, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert "access_token" not in response.json()


def test_disabled_user_cannot_refresh(client, ctx, make_user, make_client):
    user = make_user()
    cid, secret = make_client()
    body = tokens(client, cid, secret)
    _disable(ctx, user.id)
    response = refresh(client, cid, secret, body["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert "access_token" not in response.json()
    with transaction(ctx.sessions) as db:
        # refused before rotation: nothing new was stored
        assert db.scalar(sa.select(sa.func.count()).select_from(RefreshToken)) == 1


@pytest.mark.parametrize("column", ["expires_at", "family_expires_at"])
def test_expired_refresh_token_is_invalid_grant(client, ctx, make_user, make_client, column):
    make_user()
    cid, secret = make_client()
    body = tokens(client, cid, secret)
    _backdate(ctx, RefreshToken, **{column: utcnow() - dt.timedelta(seconds=1)})
    response = refresh(client, cid, secret, body["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert introspect(client, cid, secret, body["refresh_token"]) == {"active": False}



def _freeze(monkeypatch) -> dt.datetime:
    """Pin the clock the grants, the server and the token service read, to test the
    boundary: a row whose ``expires_at`` is exactly now is expired."""
    now = utcnow()
    for module in ("authserver.oauth.grants", "authserver.oauth.server", "authserver.tokens.service"):
        monkeypatch.setattr(f"{module}.utcnow", lambda: now)
    return now


def test_code_is_expired_at_its_expiry_instant(client, ctx, make_user, make_client, monkeypatch):
    make_user()
    cid, secret = make_client()
    code, verifier, _ = get_code(client, cid)
    _backdate(ctx, AuthorizationCode, expires_at=_freeze(monkeypatch))
    response = exchange(client, cid, secret, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("column", ["expires_at", "family_expires_at"])
def test_refresh_token_is_expired_at_its_expiry_instant(client, ctx, make_user, make_client, monkeypatch, column):
    make_user()
    cid, secret = make_client()
    body = tokens(client, cid, secret)
    _backdate(ctx, RefreshToken, **{column: _freeze(monkeypatch)})
    assert introspect(client, cid, secret, body["refresh_token"]) == {"active": False}
    response = refresh(client, cid, secret, body["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_a_code_is_not_redeemable_after_the_account_is_disabled_and_enabled_again(
        client, ctx, make_user, make_client):
    """Disabling ends what the account holds, codes not yet exchanged included: enabled
    again within the code's minute, the account's earlier code stays refused."""
    user = make_user()
    cid, secret = make_client()
    code, verifier, _ = get_code(client, cid)
    with transaction(ctx.sessions) as db:
        row = accounts.get_user(db, user.id)
        assert accounts.disable_user(db, ctx.revoked, row, actor="test") is not None
    with transaction(ctx.sessions) as db:
        assert accounts.enable_user(db, accounts.get_user(db, user.id), actor="test")
    response = exchange(client, cid, secret, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    with transaction(ctx.sessions) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(AuthorizationCode)) == 0
