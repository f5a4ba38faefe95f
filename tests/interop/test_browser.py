"""A real browser (Playwright + Debian's Chromium) through login, MFA, consent and logout.

A tiny relying party served by the test (Starlette, another port) starts the
code flow with PKCE, exchanges the code at the token endpoint, validates the
ID token and greets the user; its "Sign out" link is the end_session URL.
Screenshots go to ``artifacts/screenshots/`` (git-ignored).

Never ``playwright install``: the browser is ``/usr/bin/chromium``
(``apt-get install -y chromium``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pyotp
import pytest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from authserver.db import transaction, utcnow
from tests.conftest import PASSWORD, REQUIRE_SERVICES
from tests.interop.conftest import Live, ServerThread, free_port

pytestmark = pytest.mark.interop

CHROMIUM = os.environ.get("AUTHSERVER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def _missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (required: AUTHSERVER_TEST_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} not found (apt-get install -y chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 900, "height": 700})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


# -- the relying party ---------------------------------------------------------------------


class RelyingParty:
    """Code flow + PKCE; keeps its pending requests server-side, keyed by ``state``."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, port: int) -> None:
        self.issuer, self.client_id, self.client_secret = issuer, client_id, client_secret
        self.base = f"http://127.0.0.1:{port}"
        self.pending: dict[str, dict[str, str]] = {}
        self.jwks = jwt.PyJWKClient(f"{issuer}/jwks.json")
        self.app = Starlette(routes=[Route("/start", self.start), Route("/cb", self.callback),
                                     Route("/bye", self.bye)])

    @property
    def redirect_uri(self) -> str:
        return f"{self.base}/cb"

    async def start(self, request: Request) -> Response:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        self.pending[state] = {"verifier": verifier, "nonce": nonce}
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                  "scope": "openid profile email", "state": state, "nonce": nonce,
                  "code_challenge": challenge, "code_challenge_method": "S256", **request.query_params}
        return RedirectResponse(f"{self.issuer}/authorize?{urlencode(params)}", status_code=302)

    async def callback(self, request: Request) -> Response:
        q = request.query_params
        pending = self.pending.pop(q.get("state", ""), None)
        if pending is None or q.get("iss") != self.issuer:
            return HTMLResponse("<h1>Bad callback</h1>", status_code=400)
        if "error" in q:
            return HTMLResponse(f'<h1>Error</h1><p id="error">{html.escape(q["error"])}</p>', status_code=400)
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.post(f"{self.issuer}/token", auth=(self.client_id, self.client_secret), data={
                "grant_type": "authorization_code", "code": q["code"], "redirect_uri": self.redirect_uri,
                "code_verifier": pending["verifier"]})
            if r.status_code != 200:
                return HTMLResponse(f"<h1>Token error</h1><pre>{html.escape(r.text)}</pre>", status_code=502)
            id_token = r.json()["id_token"]
            key = await run_in_threadpool(self.jwks.get_signing_key_from_jwt, id_token)
            claims = jwt.decode(id_token, key.key, algorithms=["RS256"], audience=self.client_id,
                                issuer=self.issuer)
            assert claims["nonce"] == pending["nonce"]
            info = (await http.get(f"{self.issuer}/userinfo",
                                   headers={"authorization": f"Bearer {r.json()['access_token']}"})).json()
            assert info["sub"] == claims["sub"]
        logout_state = secrets.token_urlsafe(8)
        logout = f"{self.issuer}/logout?" + urlencode({
            "id_token_hint": id_token, "post_logout_redirect_uri": f"{self.base}/bye", "state": logout_state})
        return HTMLResponse(
            "<!doctype html><title>Demo RP</title>"
            f'<h1 id="hello">Hello {html.escape(info.get("name", claims["sub"]))}</h1>'
            f'<p>amr: <span id="amr">{html.escape(" ".join(claims.get("amr", [])))}</span></p>'
            f'<p><a id="logout" href="{html.escape(logout)}" data-state="{logout_state}">Sign out</a></p>')

    async def bye(self, request: Request) -> Response:
        state = html.escape(request.query_params.get("state", ""))
        return HTMLResponse(f'<h1>Signed out</h1><p id="state">{state}</p>')


@pytest.fixture
def rp(live: Live) -> Iterator[RelyingParty]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cid, secret = live.make_client(client_name="Demo RP", redirect_uris=[f"{base}/cb"],
                                   post_logout_redirect_uris=[f"{base}/bye"])
    assert secret
    party = RelyingParty(live.url, cid, secret, port)
    server = ServerThread(party.app, port)
    server.start()
    yield party
    server.stop()


def sign_in(page: Any, live: Live, username: str, shot: str | None = None) -> None:
    page.wait_for_url(f"{live.url}/authorize?*")  # the login form, shown by /authorize itself
    if shot:
        page.screenshot(path=str(SHOTS / shot), full_page=True)
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")


def consent(page: Any, live: Live, shot: str | None = None) -> None:
    page.wait_for_url(f"{live.url}/consent?*")
    assert "Demo RP" in page.content()
    if shot:
        page.screenshot(path=str(SHOTS / shot), full_page=True)
    page.click("button[name=decision][value=allow]")


def logout_and_check(page: Any, live: Live, rp: RelyingParty) -> None:
    state = page.get_attribute("#logout", "data-state")
    page.click("#logout")
    page.wait_for_url(f"{rp.base}/bye?*")
    assert page.text_content("#state") == state
    # the OP session is gone: a silent request now answers login_required
    page.goto(f"{rp.base}/start?prompt=none")
    page.wait_for_url(f"{rp.base}/cb?*")
    assert page.text_content("#error") == "login_required"


# -- tests ---------------------------------------------------------------------------------


def test_login_consent_rp_logout(page: Any, live: Live, rp: RelyingParty) -> None:
    live.make_user("alice")
    page.goto(f"{rp.base}/start")
    sign_in(page, live, "alice", "login.png")
    consent(page, live, "consent.png")
    page.wait_for_url(f"{rp.base}/cb?*")
    assert page.text_content("#hello") == "Hello Alice Example"
    assert page.text_content("#amr") == "pwd"
    page.screenshot(path=str(SHOTS / "rp.png"), full_page=True)
    # signed in and consented: the next request goes straight back
    page.goto(f"{rp.base}/start")
    page.wait_for_url(f"{rp.base}/cb?*")
    assert page.text_content("#hello") == "Hello Alice Example"
    logout_and_check(page, live, rp)


def test_unregistered_redirect_uri_error_page(page: Any, live: Live, rp: RelyingParty) -> None:
    params = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": "http://127.0.0.1:9/evil",
              "scope": "openid", "state": "s", "code_challenge": "x" * 43, "code_challenge_method": "S256"}
    response = page.goto(f"{live.url}/authorize?{urlencode(params)}")
    assert response.status == 400 and page.url.startswith(live.url)
    assert "redirect" in page.content().lower()
    page.screenshot(path=str(SHOTS / "error.png"), full_page=True)


def test_login_with_totp(page: Any, live: Live, rp: RelyingParty) -> None:
    from authserver.accounts import mfa
    from authserver.accounts.models import TotpFactor

    user = live.make_user("bob", name="Bob Example")
    with transaction(live.ctx.sessions) as session:
        secret = mfa.start_enrolment(session, live.ctx.box, user.id)
        factor = session.get(TotpFactor, user.id)
        assert factor is not None
        factor.confirmed_at = utcnow()
    page.goto(f"{rp.base}/start")
    sign_in(page, live, "bob")
    page.wait_for_url(f"{live.url}/login/mfa?*")
    page.screenshot(path=str(SHOTS / "mfa.png"), full_page=True)
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("form[action='/login/mfa'] button[type=submit]")
    consent(page, live)
    page.wait_for_url(f"{rp.base}/cb?*")
    assert page.text_content("#hello") == "Hello Bob Example"
    assert set(page.text_content("#amr").split()) == {"pwd", "otp"}
    logout_and_check(page, live, rp)
