"""Rate limits on login, token, introspection and registration: 429 with Retry-After."""

from __future__ import annotations

import pytest

from authserver.settings import RateLimit
from tests.account_flows import login

TINY = RateLimit(2, 60)


@pytest.fixture
def settings_overrides():
    return {"rate_limits": True, "rate_limit_login": TINY, "rate_limit_token": TINY,
            "rate_limit_introspection": TINY, "rate_limit_registration": TINY}


def _assert_429(r, *, json_error=True):
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    if json_error:
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["error"] == "temporarily_unavailable"


def _cc(client, cid, secret):
    return client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))


def test_login_rate_limit(client, make_user):
    make_user()
    login(client, password="wrong password 1")
    login(client, password="wrong password 2")
    r = login(client)
    _assert_429(r)


def test_token_rate_limit_is_per_address(client, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], scope="api")
    for _ in range(2):
        assert _cc(client, cid, secret).status_code == 200
    r = _cc(client, cid, secret)
    _assert_429(r)
    assert r.headers["cache-control"] == "no-store"


def test_introspection_rate_limit(client, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], scope="api")
    for _ in range(2):
        assert client.post("/introspect", data={"token": "x"}, auth=(cid, secret)).status_code == 200
    _assert_429(client.post("/introspect", data={"token": "x"}, auth=(cid, secret)))


def test_registration_rate_limit(client):
    from tests.flows import form_value

    for _ in range(2):
        page = client.get("/password/reset")
        r = client.post("/password/reset", data={"csrf_token": form_value(page.text, "csrf_token"),
                                                 "email": "x@example.com"})
        assert r.status_code == 303
    page = client.get("/signup")
    r = client.post("/signup", data={"csrf_token": form_value(page.text, "csrf_token"), "username": "bob",
                                     "email": "bob@example.com", "password": "a long enough password"})
    _assert_429(r)


@pytest.mark.parametrize("settings_overrides", [{"rate_limits": False, "rate_limit_token": TINY}])
def test_rate_limits_off(client, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], scope="api")
    for _ in range(4):
        assert _cc(client, cid, secret).status_code == 200


# Failed client authentication (issue 10): counted by (client, address) and by address only.

FAILS = RateLimit(3, 300)
PROXY = {"rate_limits": True, "trusted_proxies": ("127.0.0.1/32",), "rate_limit_client_auth_failures": FAILS,
         "rate_limit_client_auth_failures_ip": RateLimit(5, 300)}


@pytest.fixture
def proxied(app):
    """A client behind a trusted proxy, so each request may come from the address it names."""
    from starlette.testclient import TestClient

    from tests.conftest import ISSUER

    with TestClient(app, base_url=ISSUER, follow_redirects=False, client=("127.0.0.1", 50000)) as c:
        yield c


def _from(ip):
    return {"x-forwarded-for": ip}


def _guess(proxied, path, cid, ip, n=1):
    data = {"grant_type": "client_credentials"} if path == "/token" else {"token": "x"}
    return [proxied.post(path, data=data, auth=(cid, f"guess-{i}"), headers=_from(ip)).status_code
            for i in range(n)]


@pytest.mark.parametrize("settings_overrides", [PROXY])
@pytest.mark.parametrize("path", ["/token", "/introspect"])
def test_strangers_cannot_lock_a_client_out(proxied, make_client, path):
    """Wrong secrets for a client from many addresses: the client with its right secret still gets through."""
    cid, secret = make_client(grant_types=["client_credentials"], scope="api")
    for n in range(20):
        assert _guess(proxied, path, cid, f"198.51.100.{n}", 4) == [401, 401, 401, 429]
    data = {"grant_type": "client_credentials"} if path == "/token" else {"token": "x"}
    r = proxied.post(path, data=data, auth=(cid, secret), headers=_from("192.0.2.10"))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("settings_overrides", [PROXY])
def test_failures_are_refused_per_pair_and_per_address(proxied, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], scope="api")
    other, other_secret = make_client(grant_types=["client_credentials"], scope="api")
    assert _guess(proxied, "/token", cid, "198.51.100.1", 3) == [401, 401, 401]
    # the pair is full: refused before the secret is checked, even the right one from there
    r = proxied.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret),
                     headers=_from("198.51.100.1"))
    _assert_429(r)
    # another client from that address still authenticates (its pair is empty) ...
    r = proxied.post("/token", data={"grant_type": "client_credentials"}, auth=(other, other_secret),
                     headers=_from("198.51.100.1"))
    assert r.status_code == 200
    # ... until the address has failed 5 times, whatever client_id it claims
    assert _guess(proxied, "/token", "made-up-1", "198.51.100.1", 2) == [401, 401]
    r = proxied.post("/token", data={"grant_type": "client_credentials"}, auth=(other, other_secret),
                     headers=_from("198.51.100.1"))
    _assert_429(r)
    # the same clients from elsewhere are untouched
    for c, s in ((cid, secret), (other, other_secret)):
        r = proxied.post("/token", data={"grant_type": "client_credentials"}, auth=(c, s),
                         headers=_from("203.0.113.7"))
        assert r.status_code == 200


@pytest.mark.parametrize("settings_overrides", [PROXY])
def test_successes_never_fill_a_bucket(proxied, make_client):
    cid, secret = make_client(grant_types=["client_credentials"], scope="api")
    for _ in range(8):
        r = proxied.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret),
                         headers=_from("198.51.100.2"))
        assert r.status_code == 200


@pytest.mark.parametrize("settings_overrides", [{**PROXY, "rate_limits": False}])
def test_failure_counting_off_with_rate_limits(proxied, make_client):
    cid, _secret = make_client(grant_types=["client_credentials"], scope="api")
    assert 429 not in _guess(proxied, "/token", cid, "198.51.100.3", 8)
