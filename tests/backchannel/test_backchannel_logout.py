"""Back-channel logout (OIDC Back-Channel Logout 1.0) end to end: a relying party served
by the test on a port of its own verifies each logout token with the live server's JWKS
and checks every claim of §2.4 (as §2.6 tells an RP to). The live server runs its
maintenance worker, which delivers the outbox; SQLite and Postgres + Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import sqlalchemy as sa

from authserver.accounts import service as accounts
from authserver.audit.models import AuditEvent
from authserver.backchannel.models import LogoutDelivery
from authserver.db import transaction
from tests.account_flows import csrf
from tests.conftest import _wipe
from tests.device_flow.test_device_cli import start_live
from tests.flows import exchange, get_code, unverified
from tests.interop.conftest import Live, free_port

# the server reaches sites on this machine: no proxy of the environment in between
pytestmark = pytest.mark.usefixtures("no_ambient_proxy")

EVENT = "http://schemas.openid.net/event/backchannel-logout"


class RelyingParty:
    """Receives logout tokens at ``/bc/<name>``; ``fail[name]`` answers 500 that many times
    (``-1``: always). Every token is verified as §2.6 says; the claims are kept."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.jwks = jwt.PyJWKClient(f"{issuer}/jwks.json")
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.attempts: dict[str, int] = {}
        self.fail: dict[str, int] = {}
        self.problems: list[str] = []
        self.client_ids: dict[str, str] = {}
        self.lock = threading.Lock()
        rp = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                length = int(self.headers.get("content-length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                status = rp.receive(name, self.headers.get("content-type", ""), form)
                self.send_response(status)
                self.send_header("Cache-Control", "no-store")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def uri(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/bc/{name}"

    def receive(self, name: str, content_type: str, form: dict[str, list[str]]) -> int:
        with self.lock:
            self.attempts[name] = self.attempts.get(name, 0) + 1
            left = self.fail.get(name, 0)
            if left:
                self.fail[name] = left - 1 if left > 0 else left
                return 500
        try:
            assert content_type.startswith("application/x-www-form-urlencoded")
            [token] = form["logout_token"]
            header = jwt.get_unverified_header(token)
            assert header["typ"] == "logout+jwt" and header["alg"] == "RS256"
            key = self.jwks.get_signing_key_from_jwt(token).key
            claims = jwt.decode(token, key, algorithms=["RS256"], issuer=self.issuer, audience=self.client_ids[name],
                                options={"require": ["iss", "aud", "iat", "exp", "jti"]})
            assert claims["events"] == {EVENT: {}}
            assert "nonce" not in claims
            assert claims.get("sub") or claims.get("sid")
            assert 0 < claims["exp"] - claims["iat"] <= 300
        except Exception as exc:  # an RP answers 400 to a bad token (§2.8)
            self.problems.append(f"{name}: {exc!r}")
            return 400
        with self.lock:
            self.received.setdefault(name, []).append(claims)
        return 200

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def live(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[Live]:
    live, server = start_live(request, backend, tmp_path, maintenance_interval=60, backchannel_logout_retry_delay=1,
                              backchannel_logout_max_attempts=2, backchannel_logout_timeout=2)
    try:
        yield live
    finally:
        server.stop()
        _wipe(live.ctx)
        live.ctx.close()


@pytest.fixture
def rp(live: Live) -> Iterator[RelyingParty]:
    party = RelyingParty(live.url)
    yield party
    party.close()


def register(live: Live, rp: RelyingParty, name: str, **kw: Any) -> str:
    if name:
        kw["backchannel_logout_uri"] = rp.uri(name)
    cid, _ = live.make_client(client_name=name or "no uri", token_endpoint_auth_method="none",
                              redirect_uris=["https://rp.example.com/cb"], **kw)
    rp.client_ids[name] = cid
    return cid


def sign_in(browser: Any, cid: str) -> dict[str, Any]:
    code, verifier, _params = get_code(browser, cid)
    r = exchange(browser, cid, None, code, verifier)
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_for(predicate: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def deliveries(live: Live) -> list[LogoutDelivery]:
    with transaction(live.ctx.sessions) as db:
        return list(db.scalars(sa.select(LogoutDelivery).order_by(LogoutDelivery.id)))


def test_rp_initiated_logout_tells_the_clients_of_that_session(live, rp):
    with live.http() as http:
        meta = http.get("/.well-known/openid-configuration").json()
    assert meta["backchannel_logout_supported"] is True and meta["backchannel_logout_session_supported"] is True
    user = live.make_user()
    used = register(live, rp, "used", backchannel_logout_session_required=True)
    register(live, rp, "unused")  # registered a URI, but this session got it nothing
    plain = register(live, rp, "")  # no URI: nothing to tell
    with live.http() as browser:
        tokens = sign_in(browser, used)
        sign_in(browser, plain)
        sid = unverified(tokens["id_token"])["sid"]
        r = browser.get("/logout", params={"id_token_hint": tokens["id_token"]})
        assert r.status_code == 200 and "signed out" in r.text
    wait_for(lambda: "used" in rp.received)
    [claims] = rp.received["used"]
    assert claims["sub"] == user.id and claims["sid"] == sid and claims["aud"] == used
    [row] = deliveries(live)  # nothing was queued for the others
    assert set(rp.received) == {"used"} and not rp.problems
    assert row.status == "delivered" and row.attempts == 1 and row.jti == claims["jti"]


def test_account_page_session_revocation_and_disabling_the_user(live, rp):
    user = live.make_user()
    app = register(live, rp, "app")
    strict = register(live, rp, "strict", backchannel_logout_session_required=True)
    with live.http() as other, live.http() as browser:
        sid_other = unverified(sign_in(other, app)["id_token"])["sid"]
        sign_in(browser, strict)
        # from the account page of the second browser, sign the first one out
        r = browser.post("/account/sessions/revoke", data={"csrf_token": csrf(browser), "sid": sid_other})
        assert r.status_code == 303
    wait_for(lambda: "app" in rp.received)
    assert [c["sid"] for c in rp.received["app"]] == [sid_other]
    assert {r.client_id for r in deliveries(live)} == {app}  # not the other session's client

    with transaction(live.ctx.sessions) as db:  # `authserver users disable` calls this
        accounts.disable_user(db, live.ctx.revoked, accounts.get_user(db, user.id), actor="cli")
    wait_for(lambda: len(rp.received.get("app", [])) == 2 and "strict" in rp.received)
    wait_for(lambda: all(r.status == "delivered" for r in deliveries(live)))
    assert len(deliveries(live)) == 3
    assert rp.received["app"][1]["sub"] == user.id and "sid" not in rp.received["app"][1]
    # session required: one token per session the user had with it, each with its sid
    assert [bool(c["sid"]) and c["sub"] == user.id for c in rp.received["strict"]] == [True]
    assert not rp.problems


def test_retry_after_a_failure_then_give_up(live, rp):
    user = live.make_user()
    flaky = register(live, rp, "flaky")
    down = register(live, rp, "down")
    rp.fail = {"flaky": 1, "down": -1}
    with live.http() as browser:
        sign_in(browser, flaky)
        tokens = sign_in(browser, down)
        browser.get("/logout", params={"id_token_hint": tokens["id_token"]})
    wait_for(lambda: "flaky" in rp.received and rp.attempts.get("down") == 2)
    assert rp.attempts["flaky"] == 2
    wait_for(lambda: {r.client_id: r.status for r in deliveries(live)} == {flaky: "delivered", down: "failed"})
    rows = {r.client_id: r for r in deliveries(live)}
    assert rows[down].attempts == 2 and rows[down].last_error == "HTTP 500"
    with transaction(live.ctx.sessions) as db:
        [event] = db.scalars(sa.select(AuditEvent).where(AuditEvent.event == "backchannel_logout_failed")).all()
    assert event.client_id == down and event.user_id == user.id and event.detail["attempts"] == 2
    assert rp.attempts["down"] == 2  # given up (status failed): never claimed again
