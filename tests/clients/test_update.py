"""``clients.service.update_client``: in place, checked like creation, audited with the actor."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from authserver.audit.models import AuditEvent
from authserver.clients import service as clients
from authserver.clients.errors import ClientError
from authserver.db import transaction
from tests.oauth.test_private_key_jwt import Signer, jwks


def test_update_keeps_the_client_id_and_audits_what_changed(ctx, make_client):
    cid, secret = make_client()
    with transaction(ctx.sessions) as db:
        result = clients.update_client(db, ctx.box, cid, actor="admin-1",
                                       redirect_uris=["https://rp.example.com/cb", "https://rp.example.com/2"])
        assert result.client.client_id == cid and result.client_secret is None
        assert result.client.client_secret_hash == ctx.box.keyed_hash(secret)
        clients.update_client(db, ctx.box, cid, actor="admin-1", client_name="Test App")  # no change
    with transaction(ctx.sessions) as db:
        [event] = db.scalars(select(AuditEvent).where(AuditEvent.event == "client_updated")).all()
    assert event.client_id == cid and event.detail == {"actor": "admin-1", "changed": ["redirect_uris"]}


@pytest.mark.parametrize(("changes", "message"), [
    ({"client_id": "other"}, "cannot change client_id"),
    ({"client_secret_hash": "x"}, "cannot change client_secret_hash"),
    ({"redirect_uris": ["http://evil.example/cb"]}, "https"),
    ({"grant_types": ["implicit"]}, "unsupported grant type"),
    ({"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}, "public clients"),
    ({"scope": "openid bad\\scope"}, "invalid scope"),
])
def test_update_refuses_what_creation_refuses(ctx, make_client, changes, message):
    cid, _ = make_client()
    with transaction(ctx.sessions) as db, pytest.raises(ClientError, match=message):
        clients.update_client(db, ctx.box, cid, actor="admin-1", **changes)


def test_update_an_unknown_client(ctx):
    with transaction(ctx.sessions) as db, pytest.raises(ClientError, match="no such client"):
        clients.update_client(db, ctx.box, "nope", actor="admin-1", client_name="x")


def test_private_key_jwt_keys_stay_until_replaced(ctx, make_client):
    """A private_key_jwt client keeps its jwks or jwks_uri through unrelated changes; sending one
    replaces the other (OIDC Registration §2: never both)."""
    signer = Signer()
    uri = "https://rp.example.com/jwks.json"
    cid, _ = make_client(token_endpoint_auth_method="private_key_jwt", grant_types=["client_credentials"],
                         redirect_uris=[], scope="orders:read", jwks_uri=uri)
    with transaction(ctx.sessions) as db:
        updated = clients.update_client(db, ctx.box, cid, actor="admin-1", client_name="Renamed").client
        assert (updated.client_name, updated.jwks, updated.jwks_uri) == ("Renamed", None, uri)
        updated = clients.update_client(db, ctx.box, cid, actor="admin-1", jwks=jwks(signer)).client
        assert (updated.jwks, updated.jwks_uri) == (jwks(signer), None)
        updated = clients.update_client(db, ctx.box, cid, actor="admin-1", scope="orders:write").client
        assert (updated.scope, updated.jwks, updated.jwks_uri) == ("orders:write", jwks(signer), None)
        updated = clients.update_client(db, ctx.box, cid, actor="admin-1", jwks_uri=uri).client
        assert (updated.jwks, updated.jwks_uri) == (None, uri)
    with transaction(ctx.sessions) as db:
        events = db.scalars(select(AuditEvent).where(AuditEvent.event == "client_updated")
                            .order_by(AuditEvent.id)).all()
    assert [e.detail["changed"] for e in events] == [["client_name"], ["jwks", "jwks_uri"], ["scope"],
                                                     ["jwks", "jwks_uri"]]
