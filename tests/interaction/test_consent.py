"""The consent page needs the whole authentication the pending request needs (MFA included)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from authserver.consents.models import Consent
from authserver.db import transaction
from tests.account_flows import enrol, login, totp_code
from tests.flows import REDIRECT_URI, auth_params, form_value, login_rid, pkce, query


def _consents(ctx) -> int:
    with transaction(ctx.sessions) as db:
        return int(db.scalar(select(func.count()).select_from(Consent)))


@pytest.mark.parametrize("why", ["enrolled", "client_requires", "acr_values"])
def test_password_alone_cannot_open_or_answer_consent(client, ctx, make_user, make_client, why):
    user = make_user()
    secret = enrol(ctx, user.id)[0] if why == "enrolled" else None
    cid, _ = make_client(require_mfa=why == "client_requires")
    _verifier, challenge = pkce()
    extra = {"acr_values": "urn:authserver:acr:mfa"} if why == "acr_values" else {}
    rid = login_rid(client.get("/authorize", params=auth_params(cid, challenge, **extra)))
    assert login(client, rid=rid).status_code == 303  # the password only
    csrf = form_value(client.get(f"/login?rid={rid}").text, "csrf_token")  # this session's token
    mfa = f"/login/mfa?rid={rid}"

    r = client.get(f"/consent?rid={rid}")
    assert r.status_code == 303 and r.headers["location"] == mfa
    r = client.post("/consent", data={"csrf_token": csrf, "rid": rid, "decision": "allow"})
    assert r.status_code == 303 and r.headers["location"] == mfa
    assert _consents(ctx) == 0
    if secret is None:
        return
    # the real user, after the second factor, still sees the consent screen
    page = client.get(mfa)
    r = client.post("/login/mfa", data={"csrf_token": form_value(page.text, "csrf_token"), "rid": rid,
                                        "code": totp_code(secret)})
    assert r.status_code == 303 and r.headers["location"] == f"/consent?rid={rid}"
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and 'action="/consent"' in page.text


def test_consent_without_mfa_needs_only_the_password(client, ctx, make_user, make_client):
    make_user()
    cid, _ = make_client()
    _verifier, challenge = pkce()
    rid = login_rid(client.get("/authorize", params=auth_params(cid, challenge)))
    assert login(client, rid=rid).status_code == 303
    page = client.get(f"/consent?rid={rid}")
    assert page.status_code == 200
    r = client.post("/consent", data={"csrf_token": form_value(page.text, "csrf_token"), "rid": rid,
                                      "decision": "allow"})
    # the consent POST continues the request itself: straight back to the client
    assert r.status_code == 303 and r.headers["location"].startswith(REDIRECT_URI) and _consents(ctx) == 1
    assert "code" in query(r.headers["location"])
