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


def test_token_rate_limit(client, make_client):
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


def test_client_bucket_is_keyed_by_client_id_not_by_secret(ctx):
    """Guesses at one client's secret from many IPs share that client's bucket."""
    import base64
    from types import SimpleNamespace

    from starlette.datastructures import Headers

    from authserver.errors import TooManyRequests
    from authserver.web.guards import client_id_of, rate_limit

    def request(secret):
        basic = base64.b64encode(f"the-client:{secret}".encode()).decode()
        return SimpleNamespace(form={}, headers=Headers({"authorization": f"Basic {basic}"}))

    assert client_id_of(request("a")) == "the-client"
    assert client_id_of(SimpleNamespace(form={}, headers=Headers({"authorization": "Basic //8="}))) is None
    rate_limit(ctx, "token", "192.0.2.1", client_id_of(request("guess-1")))
    rate_limit(ctx, "token", "192.0.2.2", client_id_of(request("guess-2")))
    with pytest.raises(TooManyRequests):
        rate_limit(ctx, "token", "192.0.2.3", client_id_of(request("guess-3")))
