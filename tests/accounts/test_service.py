"""Account rules in the accounts service, as every surface (pages, CLI, admin API) calls them."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from authserver.accounts import service as accounts
from authserver.accounts.models import User
from authserver.audit.models import AuditEvent
from authserver.db import transaction
from authserver.security.passwords import WeakPasswordError
from authserver.sessions.models import BrowserSession
from tests.account_flows import login
from tests.conftest import PASSWORD
from tests.flows import bearer, introspect, refresh, tokens

NEW_PASSWORD = "a much longer new passphrase"


def test_set_password_ends_sessions_and_revokes_tokens(client, ctx, make_user, make_client):
    user = make_user()
    cid, secret = make_client()
    issued = tokens(client, cid, secret)
    with transaction(ctx.sessions) as db:
        accounts.set_password(db, ctx, db.get(User, user.id), NEW_PASSWORD, event="password_changed")
    with transaction(ctx.sessions) as db:
        assert ctx.passwords.verify(db.get(User, user.id).password_hash, NEW_PASSWORD)
        assert db.scalar(select(func.count()).select_from(BrowserSession)
                         .where(BrowserSession.user_id == user.id)) == 0
        kinds = db.scalars(select(AuditEvent.event).where(AuditEvent.user_id == user.id)).all()
        assert kinds.count("password_changed") == 1
    assert refresh(client, cid, secret, issued["refresh_token"]).json()["error"] == "invalid_grant"
    assert introspect(client, cid, secret, issued["access_token"]) == {"active": False}
    assert client.get("/userinfo", headers=bearer(issued["access_token"])).status_code == 401


def test_set_password_keeps_the_session_it_was_made_from(app, client, ctx, make_user):
    user = make_user()
    login(client)
    with transaction(ctx.sessions) as db:
        keep = db.scalar(select(BrowserSession.id).where(BrowserSession.user_id == user.id))
        accounts.set_password(db, ctx, db.get(User, user.id), NEW_PASSWORD, keep_session=keep)
    assert client.get("/account").status_code == 200


def test_set_password_refuses_a_weak_password_and_changes_nothing(client, ctx, make_user):
    user = make_user()
    login(client)
    with pytest.raises(WeakPasswordError), transaction(ctx.sessions) as db:
        accounts.set_password(db, ctx, db.get(User, user.id), "alice123")
    with transaction(ctx.sessions) as db:
        assert ctx.passwords.verify(db.get(User, user.id).password_hash, PASSWORD)
    assert client.get("/account").status_code == 200


def test_complete_signup_creates_the_verified_user_once(ctx):
    with transaction(ctx.sessions) as db:
        request = accounts.start_signup(db, ctx, username=" Bob ", email="BOB@example.com",
                                        password=NEW_PASSWORD)
        assert (request.username, request.email, request.email_taken) == ("bob", "bob@example.com", False)
        user = accounts.complete_signup(db, request.pending(), ip="127.0.0.1")
        assert user is not None and user.email_verified
        assert ctx.passwords.verify(user.password_hash, NEW_PASSWORD)
    with transaction(ctx.sessions) as db:
        assert accounts.complete_signup(db, request.pending()) is None  # registered meanwhile
        assert accounts.start_signup(db, ctx, username="carol", email="bob@example.com",
                                     password=NEW_PASSWORD).email_taken
