"""The parts of ``oauth/dpop.py`` that need no server: URI normalisation, the replay table."""

from __future__ import annotations

import pytest

from authserver.oauth import dpop
from authserver.oauth.dpop import ReplayCache, normalize_uri


@pytest.mark.parametrize(("uri", "normal"), [
    ("https://AS.Example.com/token", "https://as.example.com/token"),
    ("HTTPS://as.example.com:443/token?x=1#f", "https://as.example.com/token"),
    ("http://as.example.com:80", "http://as.example.com/"),
    ("http://as.example.com:8080/a/./b/../token", "http://as.example.com:8080/a/token"),
    ("https://as.example.com/%7etoken%2f", "https://as.example.com/~token%2F"),
    ("https://[::1]:8443/token", "https://[::1]:8443/token"),
])
def test_normalize_uri(uri: str, normal: str) -> None:
    assert normalize_uri(uri) == normal


@pytest.mark.parametrize("uri", ["ftp://as.example.com/token", "/token", "https://user@as.example.com/token",
                                 "https://as.example.com:99999/token", "token"])
def test_normalize_uri_refuses(uri: str) -> None:
    assert normalize_uri(uri) is None


def test_in_process_replay_table_expires_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    cache = ReplayCache(None, "p:", clock=lambda: now[0])
    assert cache.first_use("a", 10) is True
    assert cache.first_use("a", 10) is False
    now[0] += 11
    assert cache.first_use("a", 10) is True  # forgotten after its ttl
    monkeypatch.setattr(dpop, "MAX_REMEMBERED", 3)
    for key in "bcd":
        assert cache.first_use(key, 10) is True
    assert len(cache._seen) == 3  # the oldest went to make room


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"cors_origins": ("https://spa.example",)}


def test_browser_clients_may_send_dpop_and_read_the_nonce_and_challenge(client) -> None:  # type: ignore[no-untyped-def]
    """RFC 9449 §7.1, §8: a browser client needs ``DPoP`` allowed as a request header and
    ``DPoP-Nonce`` / ``WWW-Authenticate`` exposed to its code."""
    preflight = client.options("/token", headers={"origin": "https://spa.example",
                                                   "access-control-request-method": "POST",
                                                   "access-control-request-headers": "dpop"})
    assert "DPoP" in preflight.headers["access-control-allow-headers"]
    response = client.post("/token", data={"grant_type": "client_credentials"},
                           headers={"origin": "https://spa.example", "dpop": "not-a-jwt"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_dpop_proof"
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"dpop-nonce", "www-authenticate"} <= exposed
