"""``accounts.service.disable_user`` / ``delete_user``: a disabled or deleted account
keeps no way in — no browser session, no usable refresh token, no live access token."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from authserver.accounts import service as accounts
from authserver.accounts.models import User
from authserver.db import transaction
from authserver.sessions.models import BrowserSession
from authserver.tokens.models import RefreshToken
from tests.flows import introspect, tokens


@pytest.fixture
def holdings(client: Any, make_user: Any, make_client: Any) -> dict[str, Any]:
    """alice logged in (a browser session) with two grants: one with a refresh token
    and one from a client without the refresh_token grant (an access token only)."""
    user = make_user("alice")
    cid, secret = make_client()
    code_only_cid, code_only_secret = make_client(grant_types=["authorization_code"])
    with_refresh = tokens(client, cid, secret)
    code_only = tokens(client, code_only_cid, code_only_secret, scope="openid")
    assert "refresh_token" in with_refresh and "refresh_token" not in code_only
    return {
        "user_id": user.id,
        "checks": [
            (cid, secret, with_refresh["access_token"]),
            (cid, secret, with_refresh["refresh_token"]),
            (code_only_cid, code_only_secret, code_only["access_token"]),
        ],
    }


def active(client: Any, holdings: dict[str, Any]) -> list[bool]:
    return [introspect(client, cid, secret, token)["active"] for cid, secret, token in holdings["checks"]]


def sessions_of(ctx: Any, user_id: str) -> int:
    with transaction(ctx.sessions) as db:
        return db.scalar(sa.select(sa.func.count()).where(BrowserSession.user_id == user_id)) or 0


def test_disable_ends_sessions_and_revokes_every_token(ctx, client, holdings):
    user_id = holdings["user_id"]
    assert active(client, holdings) == [True, True, True]
    assert sessions_of(ctx, user_id) == 1
    with transaction(ctx.sessions) as db:
        ended = accounts.disable_user(db, ctx.revoked, db.get(User, user_id), actor="test")
    assert ended == accounts.EndedAccess(sessions=1, refresh_tokens=1)
    assert sessions_of(ctx, user_id) == 0
    # introspection does not look at the account: only the revocation makes these inactive
    assert active(client, holdings) == [False, False, False]
    with transaction(ctx.sessions) as db:
        assert db.get(User, user_id).disabled is True
        assert all(db.scalars(sa.select(RefreshToken.revoked_at).where(RefreshToken.user_id == user_id)))
        assert accounts.disable_user(db, ctx.revoked, db.get(User, user_id), actor="test") is None


def test_enable_lets_the_user_in_again_but_revives_nothing(ctx, client, holdings):
    user_id = holdings["user_id"]
    with transaction(ctx.sessions) as db:
        user = db.get(User, user_id)
        assert accounts.enable_user(db, user, actor="test") is False
        accounts.disable_user(db, ctx.revoked, user, actor="test")
        assert accounts.enable_user(db, user, actor="test") is True
    assert active(client, holdings) == [False, False, False]
    with transaction(ctx.sessions) as db:
        assert db.get(User, user_id).disabled is False


def test_delete_revokes_access_tokens_and_removes_the_rows(ctx, client, holdings):
    user_id = holdings["user_id"]
    with transaction(ctx.sessions) as db:
        ended = accounts.delete_user(db, ctx.revoked, db.get(User, user_id), actor="test")
    assert ended == accounts.EndedAccess(sessions=1, refresh_tokens=1)
    assert active(client, holdings) == [False, False, False]
    with transaction(ctx.sessions) as db:
        assert db.get(User, user_id) is None
        assert db.scalar(sa.select(sa.func.count()).where(RefreshToken.user_id == user_id)) == 0
    assert sessions_of(ctx, user_id) == 0
