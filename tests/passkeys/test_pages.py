"""Passkeys through the pages and JSON endpoints (ASGI client, SQLite and Postgres + Redis),
with real signed responses: passwordless sign-in and the second factor through the code
flow (``amr``/``acr`` in the tokens), ``acr_values`` asking for a passkey, the account page,
CSRF, and discovery. The issuer is ``http://localhost:8000``: WebAuthn takes no IP address."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from authserver.audit.models import AuditEvent
from authserver.db import transaction
from authserver.passkeys.models import Passkey
from authserver.settings import RateLimit
from tests.account_flows import enrol, login, totp_code
from tests.flows import REDIRECT_URI, auth_params, exchange, form_value, login_rid, pkce, query
from tests.passkeys.authenticator import Authenticator

ISSUER = "http://localhost:8000"
PHR = "urn:authserver:acr:phr"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"issuer": ISSUER}


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url=ISSUER, follow_redirects=False) as c:
        yield c


def _csrf(client, path: str) -> str:
    """The page's CSRF token: from a form, or from the passkey block (a page without a form)."""
    page = client.get(path)
    assert page.status_code == 200, (page.status_code, page.headers.get("location"))
    found = re.search(r'data-csrf="([^"]+)"', page.text)
    return found.group(1) if found else form_value(page.text, "csrf_token")


def _register(client, device: Authenticator, name: str = "Laptop") -> Any:
    token = _csrf(client, "/account")
    options = client.post("/account/passkeys/options", data={"csrf_token": token})
    assert options.status_code == 200, options.text
    assert options.headers["cache-control"] == "no-store"
    return client.post("/account/passkeys/register", data={
        "csrf_token": token, "credential": device.create(options.json()), "passkey_name": name})


def _ceremony(client, device: Authenticator, kind: str, page: str, rid: str = "", **kw) -> Any:
    token = _csrf(client, page)
    options = client.post(f"/passkeys/{kind}/options", data={"csrf_token": token, "rid": rid})
    assert options.status_code == 200, options.text
    return client.post(f"/passkeys/{kind}", data={"csrf_token": token, "rid": rid,
                                                  "credential": device.get(options.json(), **kw)})


def _user_with_passkey(client, make_user, device: Authenticator) -> Any:
    user = make_user()
    assert login(client).headers["location"] == "/account"
    assert _register(client, device).json() == {"location": "/account?m=passkey_added#passkeys"}
    client.cookies.clear()
    return user


def _code_flow(client, cid, **extra) -> tuple[str, str, dict[str, str]]:
    verifier, challenge = pkce()
    return login_rid(client.get("/authorize", params=auth_params(cid, challenge, **extra))), verifier, {}


def _finish(client, location: str) -> str:
    r = client.get(location)
    while r.status_code in (302, 303) and not r.headers["location"].startswith(REDIRECT_URI):
        r = client.get(r.headers["location"])
    assert r.status_code == 302 and r.headers["location"].startswith(REDIRECT_URI), (r.status_code, r.text[:300])
    return query(r.headers["location"])["code"]


def _claims(client, cid, secret, code, verifier) -> dict[str, Any]:
    tokens = exchange(client, cid, secret, code, verifier).json()
    return jwt.decode(tokens["id_token"], options={"verify_signature": False})


def _events(ctx, name):
    with transaction(ctx.sessions) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == name)))


def test_passwordless_sign_in_through_the_code_flow(client, ctx, make_user, make_client):
    device = Authenticator(ISSUER)
    user = _user_with_passkey(client, make_user, device)
    cid, secret = make_client(skip_consent=True)
    rid, verifier, _ = _code_flow(client, cid, acr_values=PHR)
    page = client.get(f"/login?rid={rid}")
    assert 'autocomplete="username webauthn"' in page.text and 'data-passkey="login"' in page.text
    assert '<script src="/static/passkeys.js" defer></script>' in page.text
    token = form_value(page.text, "csrf_token")
    options = client.post("/passkeys/login/options", data={"csrf_token": token, "rid": rid}).json()["publicKey"]
    assert options["rpId"] == "localhost" and options["userVerification"] == "required"
    done = client.post("/passkeys/login", data={"csrf_token": token, "rid": rid,
                                                "credential": device.get(options)})
    assert done.json() == {"location": f"/authorize/resume?rid={rid}"}, done.text
    claims = _claims(client, cid, secret, _finish(client, done.json()["location"]), verifier)
    assert claims["sub"] == user.id and claims["amr"] == ["hwk", "user", "mfa"] and claims["acr"] == PHR
    assert [e.detail["channel"] for e in _events(ctx, "login_succeeded")][-1] == "passkey"


def test_the_challenge_is_single_use_and_bound_to_the_session(client, app, make_user):
    device = Authenticator(ISSUER, counter=False)
    _user_with_passkey(client, make_user, device)
    token = _csrf(client, "/login")
    options = client.post("/passkeys/login/options", data={"csrf_token": token}).json()
    credential = device.get(options)
    # another browser (its own session) cannot answer this session's challenge
    with TestClient(app, base_url=ISSUER, follow_redirects=False) as other:
        other_token = _csrf(other, "/login")
        refused = other.post("/passkeys/login", data={"csrf_token": other_token, "credential": credential})
        assert refused.status_code == 400 and "expired" in refused.json()["error"]
    cookie = dict(client.cookies)
    assert client.post("/passkeys/login", data={"csrf_token": token, "credential": credential}).status_code == 200
    # the old cookie, still holding the challenge, played back with the same response
    client.cookies.clear()
    client.cookies.update(cookie)
    again = client.post("/passkeys/login", data={"csrf_token": token, "credential": credential})
    assert again.status_code == 400 and "expired" in again.json()["error"]


def test_passkey_as_second_factor_beside_totp(client, ctx, make_user, make_client):
    device = Authenticator(ISSUER, uv=False)  # a security key without a PIN: fine after a password
    user = _user_with_passkey(client, make_user, device)
    enrol(ctx, user.id)
    cid, secret = make_client(skip_consent=True)
    rid, verifier, _ = _code_flow(client, cid)
    assert login(client, rid=rid).status_code == 303
    page = client.get(f"/login/mfa?rid={rid}")
    assert 'data-passkey="mfa"' in page.text and 'name="code"' in page.text
    # passwordless would need user verification: refused
    token = _csrf(client, "/login")
    options = client.post("/passkeys/login/options", data={"csrf_token": token}).json()
    assert client.post("/passkeys/login", data={"csrf_token": token,
                                                "credential": device.get(options)}).status_code == 400
    done = _ceremony(client, device, "mfa", f"/login/mfa?rid={rid}", rid)
    assert done.json() == {"location": f"/authorize/resume?rid={rid}"}, done.text
    claims = _claims(client, cid, secret, _finish(client, done.json()["location"]), verifier)
    assert claims["sub"] == user.id and claims["amr"] == ["pwd", "hwk"] and claims["acr"] == PHR
    assert [e.detail["method"] for e in _events(ctx, "mfa_succeeded")] == ["passkey"]


def test_a_passkey_makes_password_sign_in_ask_for_it(client, make_user):
    device = Authenticator(ISSUER)
    _user_with_passkey(client, make_user, device)
    assert login(client).headers["location"] == "/account"
    assert client.get("/account").headers["location"] == "/login/mfa"
    page = client.get("/login/mfa")
    assert 'data-passkey="mfa"' in page.text and 'name="code"' not in page.text  # no TOTP to offer
    # the mfa endpoints need the password first: a new browser gets no options
    with TestClient(client.app, base_url=ISSUER, follow_redirects=False) as other:
        token = _csrf(other, "/login")
        r = other.post("/passkeys/mfa/options", data={"csrf_token": token})
        assert r.status_code == 403 and r.json()["location"] == "/login"
    assert _ceremony(client, device, "mfa", "/login/mfa").json() == {"location": "/account"}
    assert client.get("/account").status_code == 200


def test_acr_values_phr_needs_a_passkey_and_a_code_is_not_enough(client, ctx, make_user, make_client):
    user = make_user()
    secret_totp, _ = enrol(ctx, user.id)
    cid, _secret = make_client(skip_consent=True)
    rid, _verifier, _ = _code_flow(client, cid, acr_values=PHR)
    login(client, rid=rid)
    r = client.get(f"/login/mfa?rid={rid}")
    assert r.status_code == 403 and "requires a passkey" in r.text  # TOTP only: nothing to offer
    # with a passkey, the code is not taken (no code spent) and the passkey is asked for
    device = Authenticator(ISSUER)
    client.cookies.clear()
    login(client)
    client.post("/login/mfa", data={"csrf_token": _csrf(client, "/login/mfa"), "code": totp_code(secret_totp)})
    assert _register(client, device).status_code == 200
    client.cookies.clear()
    rid, _verifier, _ = _code_flow(client, cid, acr_values=PHR)
    login(client, rid=rid)
    page = client.get(f"/login/mfa?rid={rid}")
    assert page.status_code == 200 and 'name="code"' not in page.text and "confirm with a passkey" in page.text
    r = client.post("/login/mfa", data={"csrf_token": _csrf(client, f"/login/mfa?rid={rid}"), "rid": rid,
                                        "code": totp_code(secret_totp, 1)})
    assert r.status_code == 200 and "confirm with a passkey" in r.text
    assert _ceremony(client, device, "mfa", f"/login/mfa?rid={rid}", rid).status_code == 200


def test_account_page_registers_renames_and_removes_passkeys(client, ctx, make_user):
    user = make_user()
    other = make_user("bob")
    login(client)
    page = client.get("/account")
    assert 'id="passkeys"' in page.text and "No passkey yet" in page.text
    assert _register(client, Authenticator(ISSUER), "  Work   laptop ").status_code == 200
    with transaction(ctx.sessions) as db:
        row = db.scalar(select(Passkey).where(Passkey.user_id == user.id))
        bobs = Passkey(user_id=other.id, credential_id="bob", public_key=b"k", transports=[], name="Bob's")
        db.add(bobs)
        db.flush()
        row_id, bob_id = row.id, bobs.id
    assert row.name == "Work laptop"
    # the new passkey is a second factor: the account page now asks for it, and so does
    # registering another one
    assert client.get("/account").headers["location"] == "/login/mfa"
    token = _csrf(client, "/login/mfa")
    r = client.post("/account/passkeys/options", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/login/mfa"
    device = Authenticator(ISSUER)
    client.cookies.clear()
    # sign in with the passkey instead (a second device registered in the first's place)
    with transaction(ctx.sessions) as db:
        db.delete(db.get(Passkey, row_id))
    login(client)
    token = _csrf(client, "/account")
    assert client.post("/account/passkeys/options", data={"csrf_token": token}).status_code == 200
    registered = _register(client, device, "Phone")
    assert registered.status_code == 200, registered.text
    client.cookies.clear()
    assert _ceremony(client, device, "login", "/login").json() == {"location": "/account"}
    token = _csrf(client, "/account")
    with transaction(ctx.sessions) as db:
        mine = db.scalar(select(Passkey).where(Passkey.user_id == user.id))
    r = client.post("/account/passkeys/rename", data={"csrf_token": token, "passkey": mine.id,
                                                      "passkey_name": "Old phone"})
    assert r.headers["location"] == "/account?m=passkey_renamed#passkeys"
    assert "Old phone" in client.get("/account").text
    for pid in (bob_id, mine.id):
        r = client.post("/account/passkeys/remove", data={"csrf_token": token, "passkey": pid})
        assert r.headers["location"] == "/account?m=passkey_removed#passkeys"
    with transaction(ctx.sessions) as db:
        assert db.get(Passkey, bob_id) is not None and db.get(Passkey, mine.id) is None
    assert [e.user_id for e in _events(ctx, "passkey_removed")] == [user.id]


def test_endpoints_need_the_csrf_token(client, make_user):
    device = Authenticator(ISSUER)
    _user_with_passkey(client, make_user, device)
    _csrf(client, "/login")  # a session, but no token sent
    for path in ("/passkeys/login/options", "/passkeys/login", "/passkeys/mfa/options", "/passkeys/mfa",
                 "/account/passkeys/options", "/account/passkeys/register"):
        r = client.post(path, data={"csrf_token": "forged", "credential": "{}"})
        assert r.status_code == 400, path
        assert "not sent by this site" in r.text, path


def test_refusals_are_json_with_a_message_and_audited(client, ctx, make_user):
    device = Authenticator(ISSUER)
    _user_with_passkey(client, make_user, device)
    token = _csrf(client, "/login")
    client.post("/passkeys/login/options", data={"csrf_token": token})
    r = client.post("/passkeys/login", data={"csrf_token": token, "credential": "not json"})
    assert r.status_code == 400 and r.json() == {"error": "The passkey could not be verified. Try again."}
    assert r.headers["cache-control"] == "no-store"
    options = client.post("/passkeys/login/options", data={"csrf_token": token}).json()
    stranger = Authenticator(ISSUER)
    stranger.create({"rp": {"id": "localhost"}, "user": {"id": "eA"}, "challenge": "AA"})
    r = client.post("/passkeys/login", data={"csrf_token": token, "credential": stranger.get(options)})
    assert r.status_code == 400 and "not registered here" in r.json()["error"]
    assert [(e.detail["reason"], e.ip) for e in _events(ctx, "passkey_failed")] == [
        ("malformed", "testclient"), ("unknown_credential", "testclient")]


def test_discovery_advertises_phr_only_where_passkeys_work(client, ctx):
    doc = client.get("/.well-known/openid-configuration").json()
    assert PHR in doc["acr_values_supported"]
    assert "amr" in doc["claims_supported"]


@pytest.mark.parametrize("settings_overrides", [{"issuer": "http://127.0.0.1:8000"}])
def test_an_ip_address_issuer_has_no_passkeys(app, settings_overrides):
    with TestClient(app, base_url="http://127.0.0.1:8000", follow_redirects=False) as c:
        assert PHR not in c.get("/.well-known/openid-configuration").json()["acr_values_supported"]
        page = c.get("/login")
        assert "data-passkey" not in page.text and "passkeys.js" not in page.text
        token = form_value(page.text, "csrf_token")
        r = c.post("/passkeys/login/options", data={"csrf_token": token})
        assert r.status_code == 404 and json.loads(r.text)["error"]


def test_a_disabled_user_cannot_sign_in_with_a_passkey(client, ctx, make_user):
    from authserver.accounts import service as accounts

    device = Authenticator(ISSUER)
    user = _user_with_passkey(client, make_user, device)
    with transaction(ctx.sessions) as db:
        accounts.get_user(db, user.id).disabled = True
    r = _ceremony(client, device, "login", "/login")
    assert r.status_code == 400 and "location" not in r.json()
    assert client.get("/account").headers["location"] == "/login"
    assert _events(ctx, "login_failed")[-1].detail["reason"] == "disabled"


def test_a_session_with_a_code_is_asked_for_the_passkey_when_phr_is_requested(client, ctx, make_user,
                                                                               make_client):
    device = Authenticator(ISSUER)
    user = _user_with_passkey(client, make_user, device)
    secret_totp, _ = enrol(ctx, user.id)
    cid, secret = make_client(skip_consent=True)
    login(client)
    r = client.post("/login/mfa", data={"csrf_token": _csrf(client, "/login/mfa"), "code": totp_code(secret_totp)})
    assert r.headers["location"] == "/account"  # password + code: a complete session
    verifier, challenge = pkce()
    r = client.get("/authorize", params=auth_params(cid, challenge, acr_values=PHR))
    assert r.status_code == 303 and r.headers["location"].startswith("/login/mfa?rid=")
    rid = query(r.headers["location"])["rid"]
    done = _ceremony(client, device, "mfa", f"/login/mfa?rid={rid}", rid)
    claims = _claims(client, cid, secret, _finish(client, done.json()["location"]), verifier)
    assert claims["amr"] == ["pwd", "otp", "hwk"] and claims["acr"] == PHR


@pytest.mark.parametrize("settings_overrides", [{"issuer": ISSUER, "rate_limits": True,
                                                 "rate_limit_login": RateLimit(3, 60)}])
def test_the_endpoints_count_in_the_login_rate_limit(client, settings_overrides):
    token = _csrf(client, "/login")
    statuses = [client.post("/passkeys/login/options", data={"csrf_token": token},
                            headers={"accept": "application/json"}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    r = client.post("/passkeys/login", data={"csrf_token": token, "credential": "{}"},
                    headers={"accept": "application/json"})
    assert r.status_code == 429 and "retry-after" in r.headers and r.json()["error"]


def test_passkey_texts_follow_the_page_language(client, make_user):
    french = {"accept-language": "fr"}
    assert "Se connecter avec une clé d’accès" in client.get("/login", headers=french).text
    make_user()
    login(client)
    page = client.get("/account", headers=french).text
    assert "Clés d’accès" in page and "Ajouter une clé d’accès" in page
    assert 'data-msg-cancelled="La demande de clé d’accès a été annulée ou a expiré."' in page
    token = _csrf(client, "/login")
    r = client.post("/passkeys/login", data={"csrf_token": token, "credential": "{}"}, headers=french)
    assert r.status_code == 400 and r.json()["error"] == "La demande de clé d’accès a expiré. Réessayez."
