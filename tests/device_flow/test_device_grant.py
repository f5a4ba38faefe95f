"""The device authorization grant (RFC 8628) through the ASGI app, on both backends:
the device authorization endpoint, the verification page, the login and consent pages it
shares with the code flow, and polling at the token endpoint."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from authserver.audit.models import AuditEvent
from authserver.db import transaction
from authserver.device_flow import service
from authserver.device_flow.models import DeviceAuthorization
from authserver.settings import RateLimit
from tests.conftest import ISSUER
from tests.flows import follow, form_value, unverified

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")


@pytest.fixture
def settings_overrides():
    return {"device_code_interval": 1}


@pytest.fixture
def device_client(make_client):
    def make(**kw):
        kw.setdefault("token_endpoint_auth_method", "none")
        kw.setdefault("redirect_uris", [])
        kw.setdefault("grant_types", [GRANT, "refresh_token"])
        kw.setdefault("scope", "openid profile offline_access")
        return make_client(**kw)

    return make


def start(client, client_id, secret=None, **data):
    if secret is None:
        return client.post("/device_authorization", data={"client_id": client_id, **data})
    return client.post("/device_authorization", data=data, auth=(client_id, secret))


def poll(client, client_id, device_code, secret=None):
    data = {"grant_type": GRANT, "device_code": device_code}
    if secret is None:
        return client.post("/token", data={**data, "client_id": client_id})
    return client.post("/token", data=data, auth=(client_id, secret))


def row(ctx):
    with transaction(ctx.sessions) as db:
        return db.scalars(sa.select(DeviceAuthorization)).one()


def rewind_poll(ctx, seconds=10):
    """The last poll happened ``seconds`` ago (instead of sleeping through the interval)."""
    with transaction(ctx.sessions) as db:
        db.execute(sa.update(DeviceAuthorization).values(
            last_polled_at=DeviceAuthorization.last_polled_at - seconds))


def enter(client, user_code, decision="allow"):
    """The user's side over HTTP: the verification page, login and consent."""
    page = client.get("/device", params={"user_code": user_code})
    assert page.status_code == 200
    r = client.post("/device", data={"csrf_token": form_value(page.text, "csrf_token"), "user_code": user_code})
    return follow(client, r, consent=decision, max_steps=12)


def test_discovery_advertises_the_endpoint_and_the_grant(client):
    meta = client.get("/.well-known/openid-configuration").json()
    assert meta["device_authorization_endpoint"] == f"{ISSUER}/device_authorization"
    assert GRANT in meta["grant_types_supported"]


def test_device_authorization_response(client, device_client):
    cid, _ = device_client()
    r = start(client, cid, scope="openid profile")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert USER_CODE.match(body["user_code"])
    assert len(body["device_code"]) >= 43
    assert body["verification_uri"] == f"{ISSUER}/device"
    assert body["verification_uri_complete"] == f"{ISSUER}/device?user_code={body['user_code']}"
    assert body["expires_in"] == 600 and body["interval"] == 1


def test_codes_are_stored_hashed(client, ctx, device_client):
    cid, _ = device_client()
    body = start(client, cid).json()
    stored = row(ctx)
    assert body["device_code"] not in (stored.device_code_hash, stored.user_code_hash)
    assert body["user_code"].replace("-", "") not in stored.user_code_hash
    assert stored.scope == "openid profile offline_access"  # none asked: the client's scopes


@pytest.mark.parametrize(("case", "status", "error", "description"), [
    ("unknown client", 401, "invalid_client", "Client authentication failed."),
    ("grant not registered", 400, "unauthorized_client", "The client is not allowed the device authorization grant."),
    ("scope not allowed", 400, "invalid_scope", "The requested scope is not allowed for this client."),
    ("confidential without secret", 401, "invalid_client", "Client authentication failed."),
    ("wrong secret", 401, "invalid_client", "Client authentication failed."),
])
def test_device_authorization_errors(client, device_client, case, status, error, description):
    if case == "unknown client":
        r = start(client, "nobody")
    elif case == "grant not registered":
        cid, secret = device_client(grant_types=["client_credentials"],
                                    token_endpoint_auth_method="client_secret_basic")
        r = start(client, cid, secret)
    elif case == "scope not allowed":
        cid, _ = device_client()
        r = start(client, cid, scope="openid email")
    elif case == "confidential without secret":
        cid, _ = device_client(token_endpoint_auth_method="client_secret_basic")
        r = start(client, cid)
    else:
        cid, _ = device_client(token_endpoint_auth_method="client_secret_basic")
        r = start(client, cid, "not-the-secret")
    assert r.status_code == status and r.json()["error"] == error
    assert r.json().get("error_description") == description
    assert r.headers["cache-control"] == "no-store"


def test_whole_flow_pending_slow_down_approval_and_single_use(client, ctx, make_user, device_client):
    user = make_user()
    cid, _ = device_client()
    grant = start(client, cid, scope="openid profile offline_access").json()
    device_code = grant["device_code"]

    r = poll(client, cid, device_code)
    assert r.status_code == 400 and r.json()["error"] == "authorization_pending"
    r = poll(client, cid, device_code)  # at once: too fast
    assert r.status_code == 400 and r.json()["error"] == "slow_down"
    assert row(ctx).poll_interval == 6  # 1 + 5, for this and every later poll (§3.5)
    rewind_poll(ctx, 3)  # 3 s ago: on time for 1 s, too early for 6 s
    assert poll(client, cid, device_code).json()["error"] == "slow_down"
    assert row(ctx).poll_interval == 11

    # the user types the code in lower case without the dash; login and consent as in the code flow
    done = enter(client, grant["user_code"].lower().replace("-", ""))
    assert done.status_code == 200 and "Device connected" in done.text
    approved = row(ctx)
    assert approved.status == "approved" and approved.user_id == user.id
    with transaction(ctx.sessions) as db:
        [event] = db.scalars(sa.select(AuditEvent).where(AuditEvent.event == "device_approved")).all()
        assert (event.user_id, event.client_id, event.ip, event.detail) == (
            user.id, cid, "testclient", {"scope": "openid profile offline_access"})

    rewind_poll(ctx, 20)
    r = poll(client, cid, device_code)
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert r.headers["cache-control"] == "no-store"
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"]
    id_token = unverified(tokens["id_token"])
    assert id_token["sub"] == user.id and id_token["aud"] == cid and id_token["sid"] and "nonce" not in id_token
    assert id_token["amr"] == ["pwd"]  # how the user signed in on the browser that approved
    assert unverified(tokens["access_token"])["scope"] == "openid profile offline_access"

    # single use: the device code is spent
    rewind_poll(ctx, 20)
    r = poll(client, cid, device_code)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # the refresh token works like any other
    r = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                                    "client_id": cid})
    assert r.status_code == 200


def test_consent_page_names_the_code_and_deny_gives_access_denied(client, ctx, make_user, device_client):
    make_user()
    cid, _ = device_client()
    grant = start(client, cid).json()
    page = client.get("/device", params={"user_code": grant["user_code"]})
    r = client.post("/device", data={"csrf_token": form_value(page.text, "csrf_token"),
                                     "user_code": grant["user_code"]})
    consent = follow(client, r, consent=None, max_steps=12)
    assert 'action="/consent"' in consent.text and grant["user_code"] in consent.text
    done = follow(client, consent, consent="deny")
    assert "Access denied" in done.text and row(ctx).status == "denied"
    r = poll(client, cid, grant["device_code"])
    assert r.status_code == 400 and r.json() == {"error": "access_denied",
                                                 "error_description": "The user denied the request."}


def test_consent_is_asked_every_time_even_when_remembered_or_skipped(client, ctx, make_user, device_client):
    make_user()
    cid, _ = device_client(skip_consent=True)
    for _ in range(2):
        grant = start(client, cid).json()
        page = client.get("/device")
        r = client.post("/device", data={"csrf_token": form_value(page.text, "csrf_token"),
                                         "user_code": grant["user_code"]})
        consent = follow(client, r, consent=None, max_steps=12)
        assert 'action="/consent"' in consent.text
        assert "Device connected" in follow(client, consent, consent="allow").text


def test_expired_code(client, ctx, make_user, device_client):
    make_user()
    cid, _ = device_client()
    grant = start(client, cid).json()
    with transaction(ctx.sessions) as db:
        db.execute(sa.update(DeviceAuthorization).values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    r = poll(client, cid, grant["device_code"])
    assert r.status_code == 400 and r.json()["error"] == "expired_token"
    page = client.get("/device")
    r = client.post("/device", data={"csrf_token": form_value(page.text, "csrf_token"),
                                     "user_code": grant["user_code"]})
    assert r.status_code == 400 and "not valid or has expired" in r.text


INVALID_CODE = {"error": "invalid_grant", "error_description": "The device code is not valid."}


def test_another_clients_device_code_is_invalid_grant(client, device_client):
    cid, _ = device_client()
    other, _ = device_client()
    grant = start(client, cid).json()
    r = poll(client, other, grant["device_code"])
    assert r.status_code == 400 and r.json() == INVALID_CODE
    r = poll(client, cid, "made-up")
    assert r.status_code == 400 and r.json() == INVALID_CODE


def test_approved_for_a_user_disabled_since_gets_no_tokens(client, ctx, make_user, device_client):
    from authserver.accounts import service as accounts

    user = make_user()
    cid, _ = device_client()
    grant = start(client, cid).json()
    assert "Device connected" in enter(client, grant["user_code"]).text
    with transaction(ctx.sessions) as db:
        accounts.disable_user(db, ctx.revoked, accounts.get_user(db, user.id), actor="test")
    r = poll(client, cid, grant["device_code"])
    assert r.status_code == 400 and r.json() == INVALID_CODE


def test_a_code_is_approved_once(client, ctx, make_user, device_client):
    """Two browsers enter the same code: the first approval wins, the second is told it expired."""
    make_user()
    bob = make_user("bob")
    cid, _ = device_client()
    grant = start(client, cid).json()
    page = client.get("/device")
    first = client.post("/device", data={"csrf_token": form_value(page.text, "csrf_token"),
                                         "user_code": grant["user_code"]})
    consent = follow(client, first, consent=None)
    assert 'action="/consent"' in consent.text
    with transaction(ctx.sessions) as db:  # meanwhile, in another browser
        assert service.approve(db, row(ctx).id, user_id=bob.id, scope="openid", auth_time=None, amr=[],
                               acr=None, sid=None)
    done = follow(client, consent, consent="allow")
    assert done.status_code == 400 and "expired or was already used" in done.text


@pytest.fixture
def limited(settings_overrides):
    settings_overrides.update(rate_limits=True, rate_limit_user_code_failures=RateLimit(3, 300))
    return settings_overrides


def test_wrong_codes_are_counted_per_address(limited, client, device_client):
    cid, _ = device_client()
    grant = start(client, cid).json()
    page = client.get("/device")
    csrf = form_value(page.text, "csrf_token")
    for wrong in ("BCDF-GHJK", "not a code", "BCDFGHJK"):
        if wrong == grant["user_code"] or wrong.replace("-", "") == grant["user_code"].replace("-", ""):
            continue
        r = client.post("/device", data={"csrf_token": csrf, "user_code": wrong})
        assert r.status_code == 400
    r = client.post("/device", data={"csrf_token": csrf, "user_code": grant["user_code"]})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
