"""Behaviours the OpenID conformance suite (Basic / Config / RP-initiated logout
profiles) and well-behaved RPs rely on, checked through the ASGI client on both
backends. The list is in ``tests/interop/README.md``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from starlette.testclient import TestClient

from authserver.app import create_app
from authserver.context import Context
from tests.conftest import ISSUER, PASSWORD, Clock
from tests.flows import REDIRECT_URI, auth_params, exchange, follow, form_value, get_code, login_rid, pkce, query

LOGOUT_URI = "https://rp.example.com/bye"


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.fixture
def rp(make_user: Any, make_client: Any) -> tuple[str, str]:
    make_user()
    cid, secret = make_client(post_logout_redirect_uris=[LOGOUT_URI])
    assert secret
    return cid, secret


def flow(client: TestClient, cid: str, secret: str, **extra: Any) -> dict[str, Any]:
    code, verifier, params = get_code(client, cid, **extra)
    r = exchange(client, cid, secret, code, verifier)
    assert r.status_code == 200, r.text
    return {**r.json(), "_params": params}


def authorize(client: TestClient, cid: str, **extra: Any) -> Any:
    _verifier, challenge = pkce()
    return client.get("/authorize", params=auth_params(cid, challenge, **extra))


def redirected_to_rp(response: Any) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text[:300]
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return query(location)


def assert_error_page(response: Any) -> None:
    assert response.status_code == 400, (response.status_code, response.headers.get("location"))
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


@pytest.fixture
def other_app(ctx: Context, tmp_path: Any) -> Iterator[Any]:
    """An app built with changed settings (own keys directory, same database)."""
    made: list[Context] = []

    def build(**changes: Any) -> TestClient:
        keys_dir = tmp_path / f"keys{len(made)}"
        keys_dir.mkdir(mode=0o700)
        settings = dataclasses.replace(ctx.settings, keys_dir=keys_dir, **changes)
        other = Context(settings)
        other.keys.ensure_key()
        made.append(other)
        return TestClient(create_app(settings, context=other), base_url=settings.issuer,
                          follow_redirects=False)

    yield build
    for other in made:
        other.close()


# -- keys and discovery --------------------------------------------------------------------


def test_jwks_kids_are_distinct(other_app: Any) -> None:
    client = other_app()
    ctx = client.app.state.context
    ctx.keys.rotate(delay=0)
    ctx.keys.rotate(delay=3600)  # pending: published already (rotate makes the store re-read at once)
    keys = client.get("/jwks.json").json()["keys"]
    kids = [k["kid"] for k in keys]
    assert len(kids) == 9 and len(set(kids)) == 9  # three of each algorithm
    kinds = {"RS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}
    assert all(k["kty"] == kinds[k["alg"]] and k["use"] == "sig" and "d" not in k for k in keys)


def rfc7638_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 §3: SHA-256 of the required RSA members in lexicographic order, no whitespace."""
    canonical = json.dumps({"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}, separators=(",", ":"),
                           sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def test_jwks_kids_after_a_rotation_are_the_keys_thumbprints(other_app: Any) -> None:
    client = other_app()
    before = [k for k in client.get("/jwks.json").json()["keys"] if k["alg"] == "RS256"]
    client.app.state.context.keys.rotate(delay=0)
    keys = [k for k in client.get("/jwks.json").json()["keys"] if k["alg"] == "RS256"]
    assert len(before) == 1 and len(keys) == 2
    assert before[0]["kid"] in {k["kid"] for k in keys}
    # distinct keys give distinct kids because each kid is its key's thumbprint
    assert [k["kid"] for k in keys] == [rfc7638_thumbprint(k) for k in keys]
    assert keys[0]["n"] != keys[1]["n"] and keys[0]["kid"] != keys[1]["kid"]


def _check_discovery(client: TestClient, base: str) -> dict[str, Any]:
    r = client.get("/.well-known/openid-configuration")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert client.get("/.well-known/oauth-authorization-server").json() == doc
    assert doc["issuer"] == base
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                 "revocation_endpoint", "introspection_endpoint", "end_session_endpoint"):
        assert doc[name].startswith(base + "/"), (name, doc[name])
    for name, value in doc.items():
        if name.endswith("_endpoint") or name.endswith("_uri") or name == "service_documentation":
            assert urlsplit(value).scheme == urlsplit(base).scheme, (name, value)
    assert {"openid", "profile", "email", "offline_access", "roles"} <= set(doc["scopes_supported"])
    assert {"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "email", "name",
            "preferred_username"} <= set(doc["claims_supported"])
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["response_types_supported"] == ["code"]
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    assert doc["subject_types_supported"]
    assert doc["request_parameter_supported"] is False and doc["request_uri_parameter_supported"] is False
    return doc


def test_discovery_complete_and_consistent(client: TestClient) -> None:
    doc = _check_discovery(client, ISSUER)
    # every advertised endpoint exists (paths relative to the issuer)
    for name in ("jwks_uri",):
        assert client.get(urlsplit(doc[name]).path).status_code == 200
    # an empty POST: the token endpoint misses grant_type, the others a client
    for name, status, error in (("token_endpoint", 400, "invalid_request"),
                                ("revocation_endpoint", 401, "invalid_client"),
                                ("introspection_endpoint", 401, "invalid_client")):
        r = client.post(urlsplit(doc[name]).path, data={})
        assert (r.status_code, r.json()["error"]) == (status, error), name
    assert client.get(urlsplit(doc["userinfo_endpoint"]).path).status_code == 401
    assert client.get(urlsplit(doc["end_session_endpoint"]).path).status_code == 200
    assert client.get(urlsplit(doc["authorization_endpoint"]).path).status_code == 400


def test_discovery_https_issuer(other_app: Any) -> None:
    client = other_app(issuer="https://op.example.com")
    doc = _check_discovery(client, "https://op.example.com")
    assert all(v.startswith("https://op.example.com/") for k, v in doc.items()
               if k.endswith("_endpoint") or k == "jwks_uri")


# -- authorization request -----------------------------------------------------------------


def test_missing_response_type_redirects_error_with_iss(client: TestClient, rp: tuple[str, str]) -> None:
    q = redirected_to_rp(authorize(client, rp[0], response_type=""))
    assert q["error"] == "invalid_request", q  # RFC 6749 §4.1.2.1: a missing parameter
    assert q["iss"] == ISSUER and q["state"] and "code" not in q


def test_unsupported_response_type_redirects_error(client: TestClient, rp: tuple[str, str]) -> None:
    q = redirected_to_rp(authorize(client, rp[0], response_type="token"))
    assert q["error"] == "unsupported_response_type" and q["iss"] == ISSUER


def test_unknown_parameters_ignored(client: TestClient, rp: tuple[str, str]) -> None:
    body = flow(client, *rp, foo="bar", x_custom="1", response_mode="query")
    assert claims_of(body["id_token"])["aud"] == rp[0]


def test_scopes_in_any_order(client: TestClient, rp: tuple[str, str]) -> None:
    body = flow(client, *rp, scope="email offline_access profile openid")
    assert set(body["scope"].split()) == {"openid", "profile", "email", "offline_access"}
    assert claims_of(body["access_token"])["scope"]
    r = client.get("/userinfo", headers={"authorization": f"Bearer {body['access_token']}"})
    assert r.json()["email"] == "alice@example.com" and r.json()["name"] == "Alice Example"


@pytest.mark.parametrize("extra", [
    {"display": "popup"}, {"display": "page"}, {"ui_locales": "fr-CA fr en"}, {"claims_locales": "de en"},
    {"acr_values": "urn:authserver:acr:pwd"}, {"acr_values": "urn:example:unknown"}, {"login_hint": "alice"},
    {"login_hint": "nobody@example.com"},
], ids=lambda e: "-".join(f"{k}={v}" for k, v in e.items()))
def test_optional_parameters_never_error(client: TestClient, rp: tuple[str, str],
                                         extra: dict[str, str]) -> None:
    body = flow(client, *rp, **extra)
    assert body["id_token"]


def test_login_hint_prefills_login_form(client: TestClient, rp: tuple[str, str]) -> None:
    r = authorize(client, rp[0], login_hint="alice@example.com")
    login_rid(r)  # the login form, shown by /authorize itself
    html = r.text
    field = re.search(r'<input id="username"[^>]*>', html)
    assert field and 'value="alice@example.com"' in field.group(0)


def test_prompt_login_reauthenticates(client: TestClient, rp: tuple[str, str], clock: Clock) -> None:
    first = claims_of(flow(client, *rp)["id_token"])
    clock.advance(5)
    login_rid(authorize(client, rp[0], prompt="login"))
    body = flow(client, *rp, prompt="login")
    assert claims_of(body["id_token"])["auth_time"] == first["auth_time"] + 5


def test_max_age(client: TestClient, rp: tuple[str, str], clock: Clock) -> None:
    first = claims_of(flow(client, *rp)["id_token"])
    clock.advance(5)
    # a fresh enough session: no login page, auth_time present and unchanged
    q = redirected_to_rp(authorize(client, rp[0], max_age="5"))
    assert "code" in q
    body = flow(client, *rp, max_age="3600")
    assert claims_of(body["id_token"])["auth_time"] == first["auth_time"]
    # one second older than max_age allows: log in again
    login_rid(authorize(client, rp[0], max_age="4"))
    body = flow(client, *rp, max_age="4")
    assert claims_of(body["id_token"])["auth_time"] == first["auth_time"] + 5


def test_prompt_none_with_session_and_id_token_hint(client: TestClient, rp: tuple[str, str]) -> None:
    body = flow(client, *rp)
    q = redirected_to_rp(authorize(client, rp[0], prompt="none"))
    assert "code" in q and q["iss"] == ISSUER
    q = redirected_to_rp(authorize(client, rp[0], prompt="none", id_token_hint=body["id_token"]))
    assert "code" in q and q["iss"] == ISSUER


def test_prompt_none_without_session(client: TestClient, rp: tuple[str, str]) -> None:
    q = redirected_to_rp(authorize(client, rp[0], prompt="none"))
    assert q["error"] == "login_required" and q["iss"] == ISSUER and q["state"]


def test_authorization_request_as_form_post(client: TestClient, rp: tuple[str, str]) -> None:
    verifier, challenge = pkce()
    params = auth_params(rp[0], challenge)
    r = follow(client, client.post("/authorize", data=params))
    q = query(r.headers["location"])
    assert q["state"] == params["state"] and q["iss"] == ISSUER
    token = exchange(client, *rp, q["code"], verifier)
    assert token.status_code == 200 and claims_of(token.json()["id_token"])["nonce"] == params["nonce"]


def test_claims_parameter(client: TestClient, rp: tuple[str, str]) -> None:
    """OIDC Core §5.5: the claims parameter places consented claims in the ID token;
    it never releases a claim beyond the granted scope (§5.5.1: an essential claim
    that is not released is not an error)."""
    claims = {"id_token": {"email": {"essential": True}}, "userinfo": {"name": None}}
    body = flow(client, *rp, scope="openid email profile", claims=json.dumps(claims))
    id_token = claims_of(body["id_token"])
    assert id_token["email"] == "alice@example.com" and "name" not in id_token
    info = client.get("/userinfo", headers={"authorization": f"Bearer {body['access_token']}"}).json()
    assert info["name"] == "Alice Example" and info["sub"] == id_token["sub"]
    narrow = flow(client, *rp, scope="openid", claims=json.dumps(claims))
    assert "email" not in claims_of(narrow["id_token"])


@pytest.mark.parametrize(("param", "error"), [("request", "request_not_supported"),
                                              ("request_uri", "request_uri_not_supported")])
def test_request_objects_rejected(client: TestClient, rp: tuple[str, str], param: str, error: str) -> None:
    value = "eyJhbGciOiJub25lIn0.e30." if param == "request" else "https://rp.example.com/req.jwt"
    q = redirected_to_rp(authorize(client, rp[0], **{param: value}))
    assert q["error"] == error and q["iss"] == ISSUER


@pytest.mark.parametrize("redirect_uri", [
    REDIRECT_URI + "?x=1", REDIRECT_URI + "/", "https://rp.example.com/cb2", "https://rp.example.com/other",
    REDIRECT_URI + "#frag", "http://rp.example.com/cb", "https://rp.example.com:8443/cb",
])
def test_redirect_uri_mismatch_shows_error_page(client: TestClient, rp: tuple[str, str],
                                                redirect_uri: str) -> None:
    assert_error_page(authorize(client, rp[0], redirect_uri=redirect_uri))
    # even with the user logged in
    flow(client, *rp)
    assert_error_page(authorize(client, rp[0], redirect_uri=redirect_uri, prompt="none"))


# -- logout --------------------------------------------------------------------------------


def test_logout_redirects_with_state(client: TestClient, rp: tuple[str, str]) -> None:
    body = flow(client, *rp)
    r = client.get("/logout", params={"id_token_hint": body["id_token"],
                                      "post_logout_redirect_uri": LOGOUT_URI, "state": "s1"})
    assert r.status_code == 303 and r.headers["location"] == LOGOUT_URI + "?state=s1"
    q = redirected_to_rp(authorize(client, rp[0], prompt="none"))
    assert q["error"] == "login_required" and q["iss"] == ISSUER


@pytest.mark.parametrize("case", ["bad-hint", "missing-hint", "unregistered-uri", "other-client-uri"])
def test_doubtful_logout_never_redirects(client: TestClient, rp: tuple[str, str], make_client: Any,
                                         case: str) -> None:
    body = flow(client, *rp)
    hint = body["id_token"]
    params: dict[str, str] = {"id_token_hint": hint, "post_logout_redirect_uri": LOGOUT_URI, "state": "s"}
    if case == "bad-hint":
        header, payload, _sig = hint.split(".")
        params["id_token_hint"] = f"{header}.{payload}.{'A' * 342}"
    elif case == "missing-hint":
        del params["id_token_hint"]
    elif case == "unregistered-uri":
        params["post_logout_redirect_uri"] = "https://evil.example.com/bye"
    else:
        make_client(client_name="Other", post_logout_redirect_uris=["https://other.example.com/bye"])
        params["post_logout_redirect_uri"] = "https://other.example.com/bye"
    for method in ("GET", "POST"):
        r = (client.get("/logout", params=params) if method == "GET" else client.post("/logout", data=params))
        assert r.status_code == 400, (case, method, r.status_code, r.headers.get("location"))
        assert "location" not in r.headers
        assert r.headers["content-type"].startswith("text/html")
    # and the session survives a refused logout
    assert "code" in redirected_to_rp(authorize(client, rp[0], prompt="none"))


def test_logout_with_confirmation(client: TestClient, rp: tuple[str, str]) -> None:
    flow(client, *rp)
    r = client.get("/logout")
    assert r.status_code == 200 and 'name="confirm"' in r.text
    r = client.post("/logout", data={"csrf_token": form_value(r.text, "csrf_token"), "confirm": "yes"})
    assert r.status_code == 200 and "location" not in r.headers
    q = redirected_to_rp(authorize(client, rp[0], prompt="none"))
    assert q["error"] == "login_required"


# -- token endpoint ------------------------------------------------------------------------


def test_password_grant_only_for_allowed_clients(client: TestClient, make_user: Any,
                                                  make_client: Any) -> None:
    make_user()
    data = {"grant_type": "password", "username": "alice", "password": PASSWORD, "scope": "openid"}
    cid, secret = make_client()
    r = client.post("/token", data=data, auth=(cid, secret))
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"
    cid, secret = make_client(grant_types=["password"])
    r = client.post("/token", data=data, auth=(cid, secret))
    assert r.status_code == 200 and r.json()["access_token"], r.text
    assert r.headers["cache-control"] == "no-store"
