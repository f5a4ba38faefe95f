"""Checks of the grants and the token service that the rest of the suite left
unguarded (found by mutation testing, docs/mutation.md): each test fails when
its check is removed."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from authserver.audit.models import AuditEvent
from authserver.clients.service import get_client
from authserver.db import transaction, utcnow
from authserver.roles import service as roles
from authserver.sessions.models import Device
from authserver.settings import RateLimit
from authserver.tokens.models import AuthorizationCode, RefreshToken
from tests.conftest import PASSWORD
from tests.flows import REDIRECT_URI, exchange, get_code, introspect, pkce, refresh, tokens, unverified


def test_password_grant_refused_to_a_user_without_mfa_at_a_client_requiring_it(client, make_user, make_client):
    make_user()
    cid, secret = make_client(grant_types=["password"], require_mfa=True)
    response = client.post("/token", data={"grant_type": "password", "username": "alice",
                                           "password": PASSWORD, "scope": "openid"}, auth=(cid, secret))
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "This account requires multi-factor authentication; use the authorization code flow.",
    }


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


def test_password_grant_logins_are_audited_on_their_channel(client, ctx, make_user, make_client):
    user = make_user()
    cid, secret = make_client(grant_types=["password"])
    data = {"grant_type": "password", "username": "alice", "password": "wrong password here", "scope": "openid"}
    failed = client.post("/token", data=data, auth=(cid, secret))
    assert failed.json() == {"error": "invalid_grant", "error_description": "Invalid username or password."}
    assert client.post("/token", data={**data, "password": PASSWORD}, auth=(cid, secret)).status_code == 200
    (failure,) = _events(ctx, "login_failed")
    (success,) = _events(ctx, "login_succeeded")
    assert failure.user_id == user.id and failure.detail["channel"] == "password_grant"
    assert (success.user_id, success.client_id, success.ip) == (user.id, cid, "testclient")
    assert success.detail == {"channel": "password_grant"}


def test_password_grant_tokens_carry_acr_and_auth_time(client, make_user, make_client):
    import time

    make_user()
    cid, secret = make_client(grant_types=["password"])
    before = int(time.time())
    body = client.post("/token", data={"grant_type": "password", "username": "alice", "password": PASSWORD,
                                       "scope": "openid"}, auth=(cid, secret)).json()
    for token in (body["access_token"], body["id_token"]):
        claims = unverified(token)
        assert claims["acr"] == "urn:authserver:acr:pwd" and claims["amr"] == ["pwd"]
        assert before <= claims["auth_time"] <= int(time.time())


def test_introspection_of_an_access_token_is_exactly_its_claims(client, make_user, make_client):
    user = make_user()
    cid, secret = make_client()
    body = tokens(client, cid, secret)
    claims = unverified(body["access_token"])
    result = introspect(client, cid, secret, body["access_token"])
    assert result == {
        "active": True, "token_type": "Bearer", "scope": body["scope"], "client_id": cid, "sub": user.id,
        **{k: claims[k] for k in ("aud", "iss", "exp", "iat", "jti", "auth_time", "acr", "amr")},
    }
    assert {"aud", "iss", "exp", "iat", "jti", "auth_time", "acr", "amr"} <= claims.keys()


def test_introspection_of_a_refresh_token_is_exact(client, ctx, make_user, make_client):
    import time

    user = make_user()
    cid, secret = make_client()
    before = int(time.time())
    body = tokens(client, cid, secret)
    result = introspect(client, cid, secret, body["refresh_token"])
    assert before - 1 <= result.pop("iat") <= int(time.time())
    expires = result.pop("exp")
    idle = ctx.settings.refresh_token_idle_ttl
    assert before + idle - 1 <= expires <= time.time() + idle
    assert result == {"active": True, "token_type": "refresh_token", "scope": body["scope"], "client_id": cid,
                      "sub": user.id, "iss": ctx.settings.issuer}


ERROR_BODIES = {
    "password grant not allowed": (
        dict(grant_types=["authorization_code"]),
        {"grant_type": "password", "username": "alice", "password": PASSWORD},
        {"error": "unauthorized_client", "error_description": "The client is not allowed the password grant."},
    ),
    "password grant without username": (
        dict(grant_types=["password"]),
        {"grant_type": "password", "password": PASSWORD},
        {"error": "invalid_request", "error_description": "Missing 'username' or 'password'."},
    ),
}


@pytest.mark.parametrize(("client_kw", "data", "expected"), ERROR_BODIES.values(), ids=ERROR_BODIES.keys())
def test_token_error_bodies_are_exact(client, make_user, make_client, client_kw, data, expected):
    make_user()
    cid, secret = make_client(**client_kw)
    response = client.post("/token", data=data, auth=(cid, secret))
    assert response.status_code in (400, 401) and response.json() == expected


def test_revocation_without_token_body_is_exact(client, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    response = client.post("/revoke", data={}, auth=(cid, secret))
    assert response.json() == {"error": "invalid_request", "error_description": "Missing 'token'."}


VERIFIER_ERRORS = {
    "missing": (lambda v: None, "invalid_request", "Missing 'code_verifier'."),
    "malformed": (lambda v: "a" * 42, "invalid_request", "Invalid 'code_verifier'."),
    "mismatch": (lambda v: pkce()[0], "invalid_grant", "The 'code_verifier' does not match the 'code_challenge'."),
}


@pytest.mark.parametrize(("make_verifier", "error", "description"), VERIFIER_ERRORS.values(),
                         ids=VERIFIER_ERRORS.keys())
def test_code_verifier_error_bodies_are_exact(client, make_user, make_client, make_verifier, error, description):
    make_user()
    cid, secret = make_client()
    code, verifier, _ = get_code(client, cid)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    if make_verifier(verifier) is not None:
        data["code_verifier"] = make_verifier(verifier)
    response = client.post("/token", data=data, auth=(cid, secret))
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


@pytest.mark.parametrize("settings_overrides", [{"require_pkce": False}])
def test_verifier_without_a_challenge_is_refused(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    code, _verifier, _ = get_code(client, cid, code_challenge="", code_challenge_method="")
    response = client.post("/token", data={"grant_type": "authorization_code", "code": code,
                                           "redirect_uri": REDIRECT_URI, "code_verifier": pkce()[0]},
                           auth=(cid, secret))
    assert response.json() == {"error": "invalid_request",
                               "error_description": "No 'code_challenge' was sent for this code."}


def test_code_flow_tokens_carry_acr_and_the_requested_id_token_claims(client, make_user, make_client):
    import json

    make_user()
    cid, secret = make_client()
    body = tokens(client, cid, secret, scope="openid email",
                  claims=json.dumps({"id_token": {"email": None}}))
    id_token = unverified(body["id_token"])
    assert id_token["acr"] == "urn:authserver:acr:pwd" and id_token["email"] == "alice@example.com"
    assert unverified(body["access_token"])["acr"] == "urn:authserver:acr:pwd"


def test_invalid_client_answer_is_json(client):
    response = client.post("/token", data={"grant_type": "client_credentials"}, auth=("nobody", "nothing"))
    assert response.status_code == 401 and response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "invalid_client"


def test_client_credentials_token_without_any_scope_has_an_empty_scope(client, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="openid offline_access")
    response = client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "" and unverified(response.json()["access_token"])["scope"] == ""


@pytest.mark.parametrize("name", ["code_challenge", "code_challenge_method"])
def test_repeated_pkce_parameter_is_invalid_request(client, make_client, name):
    from tests.flows import auth_params, query

    cid, _ = make_client()
    _verifier, challenge = pkce()
    extra = (name, "S256" if name.endswith("method") else challenge)
    params = [*auth_params(cid, challenge).items(), extra]
    response = client.get("/authorize", params=params)
    assert response.status_code == 302
    q = query(response.headers["location"])
    assert q["error"] == "invalid_request" and q["error_description"] == f"Multiple '{name}' in request."


def test_missing_grant_type_body_is_exact(client, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    response = client.post("/token", data={}, auth=(cid, secret))
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": "Missing 'grant_type'."}
    assert response.headers.get_list("cache-control") == ["no-store"]


def test_token_response_has_one_cache_control_header(client, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    response = client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))
    assert response.status_code == 200
    assert response.headers.get_list("cache-control") == ["no-store"]
    assert response.headers.get_list("pragma") == ["no-cache"]


def test_undecodable_basic_credentials_body_is_exact(client):
    response = client.post("/token", data={"grant_type": "client_credentials"},
                           headers={"authorization": "Basic //8="})  # base64 of bytes that are not UTF-8
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request",
                               "error_description": "The Basic credentials are not valid UTF-8."}


def test_bad_base64_basic_credentials_are_invalid_client(client):
    response = client.post("/token", data={"grant_type": "client_credentials"},
                           headers={"authorization": "Basic a"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_missing_code_challenge_is_refused_with_its_reason(client, make_client):
    from tests.flows import auth_params, query

    cid, _ = make_client()
    response = client.get("/authorize", params=auth_params(cid, "", code_challenge_method=""))
    q = query(response.headers["location"])
    assert (q["error"], q["error_description"]) == ("invalid_request", "'code_challenge' (PKCE, S256) is required.")


@pytest.mark.parametrize("field", ["client_secret", "client_assertion"])
def test_basic_credentials_with_credentials_in_the_body_are_refused(client, make_client, field):
    """RFC 6749 §2.3: a client uses one authentication method per request."""
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    response = client.post("/token", data={"grant_type": "client_credentials", field: "x"}, auth=(cid, secret))
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "Use one client authentication method: the Authorization header or the body, not both.",
    }


@pytest.mark.parametrize("settings_overrides", [{"rate_limits": True,
                                                 "rate_limit_client_auth_failures": RateLimit(2, 300)}])
def test_failed_client_authentications_from_an_address_refuse_the_next_attempt(client, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    data = {"grant_type": "client_credentials"}
    assert [client.post("/token", data=data, auth=(cid, f"guess-{i}")).status_code for i in range(2)] == [401, 401]
    # the bucket of this client at this address is full: refused before the secret is checked
    response = client.post("/token", data=data, auth=(cid, secret))
    assert response.status_code == 429 and int(response.headers["retry-after"]) > 0


@pytest.mark.parametrize("settings_overrides", [{"rate_limits": True,
                                                 "rate_limit_client_auth_failures": RateLimit(2, 300)}])
def test_failed_client_assertions_fill_the_bucket_of_the_client_they_name(client, make_client):
    """A ``private_key_jwt`` failure is counted for the client the assertion names (its
    unverified ``sub``), as a Basic failure is for its user name: that client's bucket at
    this address fills, another client's does not."""
    from tests.oauth.test_private_key_jwt import Signer, cc, jwks

    signer, forger = Signer(), Signer()
    ids = [make_client(token_endpoint_auth_method="private_key_jwt", grant_types=["client_credentials"],
                       redirect_uris=[], scope="api", jwks=jwks(signer))[0] for _ in range(2)]
    target, other = ids

    def forged() -> str:  # a payload whose base64 needs padding, as most do
        while len((assertion := forger.assertion(target)).split(".")[1]) % 4 == 0:
            pass
        return assertion

    assert [cc(client, forged()).status_code for _ in range(2)] == [401, 401]
    assert cc(client, signer.assertion(target)).status_code == 429  # refused before the signature is checked
    assert cc(client, signer.assertion(other)).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"max_devices_per_user": 2}])
def test_code_exchange_under_a_device_limit_issues_tokens_to_a_live_device(ctx, client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    code, verifier, _ = get_code(client, cid)
    response = exchange(client, cid, secret, code, verifier)
    assert response.status_code == 200, response.text
    assert "refresh_token" in response.json()
    with transaction(ctx.sessions) as db:
        code_device = db.scalar(select(AuthorizationCode.device_id).where(AuthorizationCode.client_id == cid))
        family_device = db.scalar(select(RefreshToken.device_id).where(RefreshToken.client_id == cid))
    # the refresh family stays on the browser's device, so signing that device out ends it
    assert code_device is not None and family_device == code_device


@pytest.mark.parametrize("settings_overrides", [{"max_devices_per_user": 2}])
def test_under_a_device_limit_a_code_without_a_device_is_exchanged_and_an_ended_devices_is_not(
        ctx, client, make_user, make_client):
    """A code that names no device (issued before devices were recorded) is not checked
    against one; a code whose device was signed out meanwhile is refused."""
    make_user()
    cid, secret = make_client()
    code, verifier, _ = get_code(client, cid)
    with transaction(ctx.sessions) as db:
        db.execute(sa.update(AuthorizationCode).values(device_id=None))
    assert exchange(client, cid, secret, code, verifier).status_code == 200
    code, verifier, _ = get_code(client, cid)
    with transaction(ctx.sessions) as db:
        device_id = db.scalar(select(AuthorizationCode.device_id).where(AuthorizationCode.used_at.is_(None)))
        assert device_id is not None
        db.execute(sa.update(Device).where(Device.id == device_id).values(ended_at=utcnow()))
    response = exchange(client, cid, secret, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_a_user_token_with_the_roles_scope_carries_the_users_roles_not_the_clients(ctx, client, make_user,
                                                                                  make_client):
    with transaction(ctx.sessions) as db:
        roles.create_role(db, "clerk", permissions=["orders:read"], actor="test")
        roles.create_role(db, "robot", permissions=["orders:write"], actor="test")
    make_user(roles=["clerk"])
    cid, secret = make_client(grant_types=["password"], redirect_uris=[], scope="openid roles",
                              permission_prefixes=["orders"])
    with transaction(ctx.sessions) as db:
        roles.set_client_roles(db, get_client(db, cid), ["robot"], actor="test")
    response = client.post("/token", data={"grant_type": "password", "username": "alice", "password": PASSWORD,
                                           "scope": "openid roles"}, auth=(cid, secret))
    assert response.status_code == 200, response.text
    claims = unverified(response.json()["access_token"])
    assert (claims["roles"], claims["entitlements"]) == (["clerk"], ["orders:read"])
