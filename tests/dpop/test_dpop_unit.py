"""The parts of ``oauth/dpop.py`` that need no server: URI normalisation, the replay table."""

from __future__ import annotations

import secrets
import socket
import time

import pytest
import redis
from structlog.testing import capture_logs

from authserver.errors import MissingToken
from authserver.oauth import dpop
from authserver.oauth.dpop import ReplayCache, normalize_uri
from authserver.oauth.errors import InvalidDPoPProofError
from authserver.security.throttle import connect_redis
from tests.conftest import make_settings
from tests.dpop.proofs import DPoPKey


@pytest.mark.parametrize(("uri", "normal"), [
    ("https://AS.Example.com/token", "https://as.example.com/token"),
    ("HTTPS://as.example.com:443/token?x=1#f", "https://as.example.com/token"),
    ("http://as.example.com:80", "http://as.example.com/"),
    ("http://as.example.com:8080/a/./b/../token", "http://as.example.com:8080/a/token"),
    ("https://as.example.com/%7etoken%2f", "https://as.example.com/~token%2F"),
    ("https://[::1]:8443/token", "https://[::1]:8443/token"),
    # RFC 3986 §5.2.4: a last segment "." or ".." leaves the path ending in "/"
    ("https://as.example.com/a/b/..", "https://as.example.com/a/"),
    ("https://as.example.com/a/b/.", "https://as.example.com/a/b/"),
    ("https://as.example.com/../../token", "https://as.example.com/token"),
])
def test_normalize_uri(uri: str, normal: str) -> None:
    assert normalize_uri(uri) == normal


@pytest.mark.parametrize("uri", ["ftp://as.example.com/token", "/token", "https://user@as.example.com/token",
                                 "https://as.example.com:99999/token", "token", "https:///token"])
def test_normalize_uri_refuses(uri: str) -> None:
    assert normalize_uri(uri) is None


def test_in_process_replay_table_expires_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    cache = ReplayCache(None, "p:", clock=lambda: now[0])
    assert cache.first_use("a", 10) is True
    assert cache.first_use("a", 10) is False
    now[0] += 11
    assert cache.first_use("a", 10) is True  # forgotten after its ttl
    now[0] += 10
    assert cache.first_use("z", 10) is True
    assert list(cache._seen) == ["z"]  # "a" expired at this very second and was dropped
    monkeypatch.setattr(dpop, "MAX_REMEMBERED", 3)
    for key in "bcd":
        assert cache.first_use(key, 10) is True
    assert len(cache._seen) == 3  # the oldest went to make room


def test_redis_replay_cache_is_shared_by_workers_and_expires(redis_url: str) -> None:
    """§11.1: with Redis every worker sees every other's proofs; each is kept for the ttl
    given (at least a second), under the configured prefix, and not in the process."""
    client = redis.Redis.from_url(redis_url)
    prefix = f"authserver-test:{secrets.token_hex(6)}:"
    try:
        one, two = ReplayCache(client, prefix), ReplayCache(client, prefix)
        assert one.first_use("k", 30) is True
        assert two.first_use("k", 30) is False
        assert one.first_use("short", 0) is True
        assert not one._seen and not two._seen
        assert client.ttl(f"{prefix}dpop:jti:k") in range(25, 31)
        assert client.ttl(f"{prefix}dpop:jti:short") == 1
        assert {k.decode() for k in client.scan_iter(match=prefix + "*")} == {
            f"{prefix}dpop:jti:k", f"{prefix}dpop:jti:short"}
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()


def test_replay_cache_falls_back_to_the_process_while_redis_is_down() -> None:
    """Redis unreachable: proofs are remembered here instead (one warning a minute)."""
    now = [1000.0]
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        client = connect_redis(f"redis://127.0.0.1:{closed.getsockname()[1]}/0", timeout=0.2)
        cache = ReplayCache(client, "p:", clock=lambda: now[0])
        with capture_logs() as logs:
            assert cache.first_use("a", 10) is True
            assert cache.first_use("a", 10) is False
            now[0] += 60
            assert cache.first_use("b", 100) is True
            assert len(logs) == 1  # 60 s after the warning: none yet
            now[0] += 1
            assert cache.first_use("b", 100) is False  # 61 s: warned again
        client.close()
    warning = {"event": "redis_unavailable_fallback", "what": "dpop_replay_cache", "error": "ConnectionError",
               "log_level": "warning"}
    assert logs == [warning, warning]


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


# -- the nonce window and the resource side, held by the mutation pass (docs/mutation.md) --------


def _dpop(now: list[float], **overrides: object) -> dpop.DPoP:
    return dpop.DPoP(make_settings(**{"dpop_require_nonce": True, **overrides}), None, clock=lambda: now[0])


def test_a_nonce_is_accepted_in_its_period_and_the_next_only() -> None:
    """§8: a nonce from the previous period passes; one from two periods back, or from a
    period that has not begun, does not."""
    now = [100 * dpop.NONCE_PERIOD + 1.0]
    checks = _dpop(now)
    current = checks.nonce()
    assert checks._nonce_ok(current)
    now[0] += dpop.NONCE_PERIOD
    assert checks._nonce_ok(current)  # the next period
    now[0] += dpop.NONCE_PERIOD
    assert not checks._nonce_ok(current)  # two periods later
    future = checks._nonce_for(int(now[0]) // dpop.NONCE_PERIOD + 1)
    assert not checks._nonce_ok(future)
    assert not checks._nonce_ok(None) and not checks._nonce_ok(123)


def test_presented_reads_bearer_and_dpop_schemes_only() -> None:
    """RFC 7235 §2.1 (scheme case-insensitive, one or more spaces), RFC 6750 §2.1, RFC 9449 §7.1."""
    assert dpop.presented("Bearer  abc", {}, "GET", "u") == dpop.Presented("bearer", "abc", {}, "GET", "u")
    assert dpop.presented("DPoP xyz", {}, "GET", "u").scheme == "dpop"
    for value in ("Basic abc", "Bearer ", "Bearer", "", None, "DPoPabc"):
        with pytest.raises(MissingToken):
            dpop.presented(value, {}, "GET", "u")


def test_check_presented_tells_the_client_which_scheme_a_token_needs() -> None:
    """§7.1, §7.2: a bound token as Bearer, an unbound one as DPoP, are refused as
    invalid_token with the scheme to use, before any proof is looked at."""
    checks = _dpop([1000.0])
    bound = {"cnf": {"jkt": "k" * 43}}
    with pytest.raises(dpop.ResourceTokenError) as refused:
        dpop.check_presented(checks, bound, dpop.Presented("bearer", "t", {}, "GET", "u"))
    assert refused.value.hint.startswith("This access token is bound to a DPoP key: send it with Authorization: DPoP")
    assert refused.value.headers["WWW-Authenticate"].startswith('DPoP algs="')
    with pytest.raises(dpop.ResourceTokenError) as refused:
        dpop.check_presented(checks, {}, dpop.Presented("dpop", "t", {}, "GET", "u"))
    assert refused.value.hint.startswith("This access token is not DPoP-bound: send it with Authorization: Bearer")
    with pytest.raises(dpop.ResourceDPoPError) as missing:
        dpop.check_presented(checks, bound, dpop.Presented("dpop", "t", {}, "GET", "u"))
    assert missing.value.hint == "A DPoP proof is required with Authorization: DPoP."
    dpop.check_presented(checks, {"cnf": "not an object"}, dpop.Presented("bearer", "t", {}, "GET", "u"))
    checks = _dpop([1000.0], dpop_require_nonce=False)
    checks.clock = time.time
    token, key = "the-access-token", DPoPKey()
    proof = key.proof("GET", "https://as.example.com/userinfo", token=token)
    request = dpop.Presented("dpop", token, {"DPoP": proof}, "GET", "https://as.example.com/userinfo")
    with pytest.raises(dpop.ResourceTokenError) as other_key:
        dpop.check_presented(checks, {"cnf": {"jkt": DPoPKey().jkt}}, request)
    assert other_key.value.hint == "Invalid DPoP key binding: the proof's key is not the token's."
    request = dpop.Presented("dpop", token, {"DPoP": key.proof("GET", request.uri, token=token)}, "GET", request.uri)
    dpop.check_presented(checks, {"cnf": {"jkt": key.jkt}}, request)


def test_iat_window_bounds_and_the_proof_returned() -> None:
    """§4.3 item 11, §11.1: ``iat`` from ``now - DPOP_PROOF_MAX_AGE`` to ``now + DPOP_CLOCK_SKEW``,
    both ends included; a passing proof gives its key's thumbprint and its jti."""
    now = [1_800_000_000.0]
    checks = _dpop(now, dpop_require_nonce=False)
    key, uri = DPoPKey(), "https://as.example.com/token"
    for iat in (now[0] - checks.max_age, now[0] + checks.skew):
        proof = key.proof("POST", uri, iat=iat, jti=f"jti-{iat}")
        assert checks.check({"DPoP": proof}, "POST", uri) == dpop.Proof(key.jkt, f"jti-{iat}")
    for iat, words in ((now[0] - checks.max_age - 1, "too old"), (now[0] + checks.skew + 1, "in the future")):
        with pytest.raises(InvalidDPoPProofError, match=words):
            checks.check({"DPoP": key.proof("POST", uri, iat=iat)}, "POST", uri)
    assert checks.check({"Authorization": "DPoP x"}, "POST", uri) is None  # no proof at all


def test_rsa_modulus_size_is_read_from_the_jwk() -> None:
    """RFC 7518 §6.3.1.1: ``n`` is base64url; anything else, or absurdly long, counts as 0 bits
    (and is refused as too small) rather than failing."""
    assert dpop._modulus_bits("_" * 2000) == 12000
    assert dpop._modulus_bits("_" * 350) == 262 * 8  # padded to a multiple of 4 before decoding
    assert dpop._modulus_bits("_" * 2002) == 0
    assert dpop._modulus_bits("_" * 5) == 0  # not base64 (a length of 4k + 1)
    assert dpop._modulus_bits(None) == 0 and dpop._modulus_bits(2 ** 4096) == 0
