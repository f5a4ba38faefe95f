"""Checks of the grants and the token service that the rest of the suite left
unguarded (found by mutation testing, docs/mutation.md): each test fails when
its check is removed."""

from __future__ import annotations

from sqlalchemy import select

from authserver.audit.models import AuditEvent
from authserver.db import transaction
from tests.conftest import PASSWORD
from tests.flows import exchange, get_code, refresh, tokens


def test_password_grant_refused_to_a_user_without_mfa_at_a_client_requiring_it(client, make_user, make_client):
    make_user()
    cid, secret = make_client(grant_types=["password"], require_mfa=True)
    response = client.post("/token", data={"grant_type": "password", "username": "alice",
                                           "password": PASSWORD, "scope": "openid"}, auth=(cid, secret))
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert "multi-factor" in response.json()["error_description"]


def _events(ctx, name):
    with transaction(ctx.sessions) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == name)))


def test_code_replay_is_audited(client, ctx, make_user, make_client):
    user = make_user()
    cid, secret = make_client()
    code, verifier, _ = get_code(client, cid)
    assert exchange(client, cid, secret, code, verifier).status_code == 200
    assert _events(ctx, "code_replay_detected") == []
    assert exchange(client, cid, secret, code, verifier).status_code == 400
    (event,) = _events(ctx, "code_replay_detected")
    assert (event.user_id, event.client_id, event.ip) == (user.id, cid, "testclient")
    assert event.request_id


def test_refresh_token_reuse_is_audited_with_the_family_revoked(client, ctx, make_user, make_client):
    user = make_user()
    cid, secret = make_client()
    body = tokens(client, cid, secret)
    refresh(client, cid, secret, body["refresh_token"])
    assert _events(ctx, "token_reuse_detected") == []
    assert refresh(client, cid, secret, body["refresh_token"]).status_code == 400
    (event,) = _events(ctx, "token_reuse_detected")
    assert (event.user_id, event.client_id, event.ip) == (user.id, cid, "testclient")
    # both rows of the family were revoked: the reused one and its successor
    assert event.detail["family_revoked"] == 2
