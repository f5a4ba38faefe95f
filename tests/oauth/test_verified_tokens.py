"""What ``TokenIssuer.verify_access_token`` remembers of an access token's signature
(``_signed_access_token``), and what it checks again on every call: expiry,
revocation, and whether the key that signed it is still published."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from authserver.context import Context
from authserver.db import transaction
from authserver.keys.models import StoredKey
from authserver.oauth import tokens as tokens_module
from authserver.oauth.bridge import current_db
from tests.flows import introspect
from tests.tokens.test_revocation import cc_client, cc_token


def remembered(ctx: Context) -> dict[str, Any]:
    return ctx.oauth.token_issuer._verified[1]


def test_an_introspected_token_is_remembered_and_a_forged_one_is_not(client, ctx, make_client):
    cid, secret = cc_client(make_client)
    token = cc_token(client, cid, secret)
    assert introspect(client, cid, secret, token)["active"] is True
    assert token in remembered(ctx)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert introspect(client, cid, secret, forged) == {"active": False}
    assert forged not in remembered(ctx)


def test_a_remembered_token_is_refused_once_its_key_is_removed(client, ctx, make_client):
    cid, secret = cc_client(make_client)
    token = cc_token(client, cid, secret)
    assert introspect(client, cid, secret, token)["active"] is True
    old = ctx.keys.active.kid
    new = ctx.keys.rotate(delay=0).kid
    with transaction(ctx.sessions) as db:  # the old key superseded long ago: retired
        for kid, days in ((old, 10), (new, 5)):
            row = db.get(StoredKey, kid)
            assert row is not None
            row.activates_at -= dt.timedelta(days=days)
    assert old in ctx.keys.remove_retired()
    assert old not in [k["kid"] for k in ctx.keys.jwks["keys"]]  # type: ignore[index, union-attr]
    assert introspect(client, cid, secret, token) == {"active": False}
    fresh = cc_token(client, cid, secret)
    assert introspect(client, cid, secret, fresh)["active"] is True


def test_a_remembered_token_still_expires(client, ctx, make_client, monkeypatch):
    cid, secret = cc_client(make_client)
    token = cc_token(client, cid, secret)
    body = introspect(client, cid, secret, token)
    assert body["active"] is True
    later = body["exp"] + tokens_module.CLOCK_SKEW + 1
    monkeypatch.setattr(tokens_module, "time", type("Clock", (), {"time": staticmethod(lambda: later)}))
    assert introspect(client, cid, secret, token) == {"active": False}


def test_a_remembered_token_still_sees_its_revocation(client, ctx, make_client):
    cid, secret = cc_client(make_client)
    token = cc_token(client, cid, secret)
    assert introspect(client, cid, secret, token)["active"] is True
    r = client.post("/revoke", data={"token": token}, auth=(cid, secret))
    assert r.status_code == 200
    if ctx.redis is None:
        time.sleep(1.05)  # the per-process revocation cache's bound
    assert introspect(client, cid, secret, token) == {"active": False}


def test_callers_get_a_copy_of_what_is_remembered(client, ctx, make_client):
    cid, secret = cc_client(make_client)
    token = cc_token(client, cid, secret)
    issuer = ctx.oauth.token_issuer
    with transaction(ctx.sessions) as db:
        mark = current_db.set(db)
        try:
            first = issuer.verify_access_token(token)
            assert first is not None
            first["client_id"] = "someone-else"
            again = issuer.verify_access_token(token)
        finally:
            current_db.reset(mark)
    assert again is not None and again["client_id"] == cid


def test_the_memory_is_emptied_when_full(client, ctx, make_client, monkeypatch):
    monkeypatch.setattr(tokens_module, "VERIFIED_MAX", 2)
    cid, secret = cc_client(make_client)
    issued = [cc_token(client, cid, secret) for _ in range(3)]
    for token in issued:
        assert introspect(client, cid, secret, token)["active"] is True
    assert list(remembered(ctx)) == [issued[2]]
