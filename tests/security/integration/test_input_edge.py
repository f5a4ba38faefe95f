"""Hostile identifiers and parameters are refused at the edge with a 400 (issue 10):
NUL and other control characters, over-long values, bad encodings and deep JSON
never reach storage, a mail header or a log line as a trace."""

from __future__ import annotations

import base64
import io
import json

import pytest

from authserver.logging import configure_logging
from authserver.security.input import CAPS, MAX_JSON_DEPTH, first_headers
from tests.account_flows import outbox_codes
from tests.flows import form_value

FORM = {"content-type": "application/x-www-form-urlencoded"}
NUL = "ali\x00ce"


@pytest.fixture
def log_buffer(settings):
    buffer = io.StringIO()
    configure_logging("json", "debug", stream=buffer)
    yield buffer
    configure_logging(settings.log_format, settings.log_level)


def _assert_invalid_request(r, *, html=False):
    assert r.status_code == 400, (r.status_code, r.text[:300])
    if html:
        assert r.headers["content-type"].startswith("text/html")
        assert "invalid_request" in r.text
    else:
        assert r.json()["error"] == "invalid_request"
        assert r.json()["error_description"]


def _assert_clean_log(buffer):
    logs = buffer.getvalue()
    assert "Traceback" not in logs and "unhandled_error" not in logs
    assert "[parameters:" not in logs and "SELECT" not in logs and "\\u0000" not in logs
    assert "input_refused" in logs


def _page_post(client, page, path, fields):
    """Post a page form with its CSRF token (the edge answers before the token is looked at)."""
    csrf = form_value(client.get(page).text, "csrf_token")
    return client.post(path, data={"csrf_token": csrf, **fields}, headers={"accept": "text/html"})


# the list: one request per item, each refused before any handler runs

def test_nul_client_id_at_authorize(client, log_buffer):
    r = client.get("/authorize", params={"client_id": NUL, "response_type": "code"},
                   headers={"accept": "text/html"})
    _assert_invalid_request(r, html=True)
    r = client.get("/authorize", params={"client_id": NUL, "response_type": "code"})
    _assert_invalid_request(r)
    _assert_clean_log(log_buffer)


def test_nul_client_id_at_token_form(client, log_buffer):
    r = client.post("/token", data={"grant_type": "client_credentials", "client_id": NUL, "client_secret": "x"})
    _assert_invalid_request(r)
    _assert_clean_log(log_buffer)


def test_nul_client_id_at_token_basic(client, log_buffer):
    for user in ("ali\x00ce", "ali%00ce"):  # raw, and form-urlencoded per RFC 6749 §2.3.1
        basic = base64.b64encode(f"{user}:secret".encode()).decode()
        r = client.post("/token", data={"grant_type": "client_credentials"},
                        headers={"authorization": f"Basic {basic}"})
        _assert_invalid_request(r)
    _assert_clean_log(log_buffer)


def test_first_headers_reads_the_first_value_of_each_name():
    scope = {"headers": [(b"origin", b"https://a.example"), (b"content-type", b"text/plain"),
                         (b"origin", b"https://b.example"), (b"x-other", b"1")]}
    assert first_headers(scope, frozenset({b"origin", b"content-type", b"authorization"})) == {
        b"origin": "https://a.example", b"content-type": "text/plain"}


def test_the_first_of_two_authorization_headers_is_the_one_checked(client, make_client):
    client_id, secret = make_client(grant_types=["client_credentials"], scope="read")
    good = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    assert client.post("/token", data={"grant_type": "client_credentials"},
                       headers={"authorization": f"Basic {good}"}).status_code == 200
    hostile = base64.b64encode(b"ali\x00ce:secret").decode()
    r = client.post("/token", data={"grant_type": "client_credentials"},
                    headers=[("authorization", f"Basic {hostile}"), ("authorization", f"Basic {good}")])
    _assert_invalid_request(r)


def test_basic_credentials_not_utf8(client):
    basic = base64.b64encode(b"\xff\xfe:secret").decode()
    r = client.post("/token", data={"grant_type": "client_credentials"}, headers={"authorization": f"Basic {basic}"})
    _assert_invalid_request(r)


def test_nul_client_id_at_introspect(client, log_buffer):
    r = client.post("/introspect", data={"token": "x", "client_id": NUL, "client_secret": "x"})
    _assert_invalid_request(r)
    _assert_clean_log(log_buffer)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_nul_client_id_at_register_path(client, log_buffer, method):
    r = client.request(method, "/register/ali%00ce", headers={"authorization": "Bearer x"})
    _assert_invalid_request(r)
    _assert_clean_log(log_buffer)


def test_nul_username_at_login(client, log_buffer):
    r = _page_post(client, "/login", "/login", {"username": NUL, "password": "whatever"})
    _assert_invalid_request(r, html=True)
    _assert_clean_log(log_buffer)


def test_nul_username_in_password_grant(client, make_client, log_buffer):
    cid, secret = make_client(grant_types=["password"])
    r = client.post("/token", auth=(cid, secret),
                    data={"grant_type": "password", "username": NUL, "password": "whatever"})
    _assert_invalid_request(r)
    _assert_clean_log(log_buffer)


@pytest.mark.parametrize("email", ["bob\x00@example.com", "bob@example.com\r\nBcc: all@example.com"])
def test_bad_email_at_signup_never_mailed(client, settings, log_buffer, email):
    r = _page_post(client, "/signup", "/signup", {"username": "bob", "email": email,
                                                  "password": "signup passphrase for bob"})
    _assert_invalid_request(r, html=True)
    assert outbox_codes(settings) == []
    _assert_clean_log(log_buffer)


@pytest.mark.parametrize("email", ["alice\x00@example.com", "alice@example.com\nBcc: x@example.com"])
def test_bad_email_at_password_reset_never_mailed(client, settings, make_user, log_buffer, email):
    make_user()
    r = _page_post(client, "/password/reset", "/password/reset", {"email": email})
    _assert_invalid_request(r, html=True)
    assert outbox_codes(settings) == []
    _assert_clean_log(log_buffer)


@pytest.mark.parametrize(("path", "field"), [("/account/sessions/revoke", "sid"),
                                             ("/account/consents/revoke", "client_id")])
def test_nul_in_account_actions(client, make_user, log_buffer, path, field):
    from tests.account_flows import login

    make_user()
    login(client)
    r = _page_post(client, "/account", path, {field: NUL})
    _assert_invalid_request(r, html=True)
    _assert_clean_log(log_buffer)


# the rules themselves

def test_over_long_state_is_refused(client):
    r = client.get("/authorize", params={"client_id": "x", "state": "s" * (CAPS["state"].max_chars + 1)})
    _assert_invalid_request(r)
    assert "'state'" in r.json()["error_description"]


def test_generous_caps_pass(client, make_client):
    """Values at the caps reach the endpoint (here: an unknown-client answer, not the edge's)."""
    r = client.get("/authorize", params={"client_id": "unknown", "response_type": "code",
                                         "state": "s" * CAPS["state"].max_chars,
                                         "nonce": "n" * CAPS["nonce"].max_chars,
                                         "login_hint": "alice@example.com"})
    assert r.status_code == 400
    assert "too long" not in r.text and "control" not in r.text


@pytest.mark.parametrize("query", [b"client_id=%ff%fe", b"state=%C3%28", b"client_id=a%00b",
                                   b"client_id=a%1bb", b"state=%E2%80%AEevil", b"client_id=%0d%0a"])
def test_bad_encodings_and_controls_in_query(client, query):
    r = client.get("/authorize?" + query.decode())
    _assert_invalid_request(r)


def test_bidi_override_in_username_is_refused(client):
    r = client.post("/token", data={"grant_type": "password", "username": "adm\u202enimi", "password": "x"})
    _assert_invalid_request(r)


def test_bad_utf8_form_body(client):
    r = client.post("/token", content=b"grant_type=client_credentials&client_id=%ff", headers=FORM)
    _assert_invalid_request(r)
    r = client.post("/token", content=b"grant_type=\xff\xfe", headers=FORM)
    _assert_invalid_request(r)


def test_password_may_hold_tab_but_not_nul(client, make_client):
    cid, secret = make_client(grant_types=["password"])
    r = client.post("/token", auth=(cid, secret),
                    data={"grant_type": "password", "username": "nobody", "password": "tab\there"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = client.post("/token", auth=(cid, secret),
                    data={"grant_type": "password", "username": "nobody", "password": "nul\x00here"})
    _assert_invalid_request(r)


def test_the_right_client_still_works(client, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], scope="openid")
    r = client.post("/token", auth=(cid, secret), data={"grant_type": "client_credentials"})
    assert r.status_code == 200, r.text


# JSON (RFC 7591 registration)

@pytest.mark.parametrize("with_token", [False, True])
def test_deeply_nested_json_at_register(client, log_buffer, with_token):
    body = b"[" * 100_000 + b"]" * 100_000
    headers = {"content-type": "application/json"}
    if with_token:
        headers["authorization"] = "Bearer not-a-token"
    r = client.post("/register", content=body[:60_000], headers=headers)
    _assert_invalid_request(r)
    assert "nests too deeply" in r.json()["error_description"]
    # the same without a JSON content type: /register parses its body as JSON anyway
    r = client.post("/register", content=b'{"a":' * 5000 + b"1" + b"}" * 5000, headers={"content-type": "text/plain"})
    _assert_invalid_request(r)
    _assert_clean_log(log_buffer)


def test_json_at_the_depth_cap_is_parsed(client):
    body = json.dumps({"client_name": "x", "jwks": _nest(MAX_JSON_DEPTH - 1)})
    r = client.post("/register", content=body, headers={"content-type": "application/json"})
    assert r.status_code in (400, 401)
    assert "nests too deeply" not in r.text


def test_brackets_inside_json_strings_do_not_count(client):
    body = json.dumps({"client_name": "[" * 100, "redirect_uris": ["https://rp.example.com/cb"]})
    r = client.post("/register", content=body, headers={"content-type": "application/json"})
    assert "nests too deeply" not in r.text


@pytest.mark.parametrize("body", [b'{"client_name": "a\\u0000b"}', b'{"client_name": "\\ud800"}',
                                  b'{"client_name": "\xff"}'])
def test_controls_surrogates_and_bad_utf8_in_json(client, body):
    r = client.post("/register", content=body, headers={"content-type": "application/json",
                                                       "authorization": "Bearer x"})
    _assert_invalid_request(r)


def _nest(depth: int) -> object:
    node: object = {}
    for _ in range(depth - 1):
        node = {"k": node}
    return node
