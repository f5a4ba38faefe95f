"""Passkeys in a real Chromium with the DevTools virtual authenticator (CDP ``WebAuthn``):
register from the account page, confirm it as the second factor, sign in without a
password through a relying party (``amr`` and ``acr`` of the ID token), remove it; and
the login page without JavaScript.

WebAuthn needs a secure context and a domain as RP ID: the issuer is
``http://localhost:<port>`` (a potentially trustworthy origin), the server listening on
127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from authserver.audit.models import AuditEvent
from authserver.db import transaction
from authserver.passkeys.models import Passkey
from tests.conftest import PASSWORD
from tests.interop.conftest import Live, ServerThread, free_port, serve_live
from tests.interop.test_browser import SHOTS, RelyingParty, browser  # noqa: F401 (the module's browser)

pytestmark = pytest.mark.interop

PHR = "urn:authserver:acr:phr"


@pytest.fixture
def live_localhost(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Live]:
    with serve_live(tmp_path, database_url=postgres_url, redis_url=redis_url, host="localhost") as server:
        yield server


@pytest.fixture
def rp(live_localhost: Live) -> Iterator[RelyingParty]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cid, secret = live_localhost.make_client(client_name="Demo RP", redirect_uris=[f"{base}/cb"],
                                             post_logout_redirect_uris=[f"{base}/bye"], skip_consent=True)
    assert secret
    party = RelyingParty(live_localhost.url, cid, secret, port)
    server = ServerThread(party.app, port)
    server.start()
    yield party
    server.stop()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(viewport={"width": 900, "height": 700})
    context.set_default_timeout(15_000)
    yield context
    context.close()


def _authenticator(page: Any) -> tuple[Any, str]:
    """A platform authenticator with resident keys and user verification (a PIN it checks)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp, added["authenticatorId"]


def _events(live: Live, name: str) -> list[AuditEvent]:
    with transaction(live.ctx.sessions) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == name)))


def test_register_use_as_second_factor_sign_in_without_password_and_remove(
        context: Any, live_localhost: Live, rp: RelyingParty) -> None:
    live = live_localhost
    user = live.make_user("alice")
    page = context.new_page()
    cdp, authenticator = _authenticator(page)
    # password sign-in, then add a passkey from the account page
    page.goto(f"{live.url}/login")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live.url}/account")
    page.fill("#new-passkey-name", "Virtual key")
    page.click("[data-passkey=register] [data-passkey-start]")
    # a passkey is a second factor from now on: the account page asks for it first
    page.wait_for_url(f"{live.url}/login/mfa*")
    page.screenshot(path=str(SHOTS / "passkey-mfa.png"), full_page=True)
    assert page.locator("#code").count() == 0
    page.click("[data-passkey=mfa] [data-passkey-start]")
    page.wait_for_url(f"{live.url}/account?m=passkey_added*")
    assert page.input_value("#passkeys input[name=passkey_name]") == "Virtual key"
    page.screenshot(path=str(SHOTS / "passkeys-account.png"), full_page=True)
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(credentials) == 1 and credentials[0]["isResidentCredential"]
    assert [e.detail["method"] for e in _events(live, "mfa_succeeded")] == ["passkey"]

    # a new browser session: sign in to the relying party with the passkey alone, asking
    # for phishing-resistant authentication. Chromium offers the passkey through autofill
    # (conditional mediation), which the virtual authenticator accepts at once.
    context.clear_cookies()
    page.goto(f"{rp.base}/start?acr_values={PHR}")
    page.wait_for_url(f"{rp.base}/cb?*")
    assert page.text_content("#hello") == "Hello Alice Example"
    assert page.text_content("#amr") == "hwk user mfa"
    assert [e.detail["channel"] for e in _events(live, "login_succeeded")][-1] == "passkey"
    # a browser without conditional mediation: the "Sign in with a passkey" button
    context.clear_cookies()
    page.add_init_script("PublicKeyCredential.isConditionalMediationAvailable = undefined;")
    page.goto(f"{rp.base}/start")
    page.wait_for_url(f"{live.url}/authorize?*")  # the login form, shown by /authorize itself
    page.screenshot(path=str(SHOTS / "passkey-login.png"), full_page=True)
    page.click("[data-passkey=login] [data-passkey-start]")
    page.wait_for_url(f"{rp.base}/cb?*")
    assert page.text_content("#amr") == "hwk user mfa"
    assert len([e for e in _events(live, "login_succeeded") if e.detail["channel"] == "passkey"]) == 2

    # remove it from the account page
    page.goto(f"{live.url}/account")
    page.click("#passkeys form[action='/account/passkeys/remove'] button")
    page.wait_for_url(f"{live.url}/account?m=passkey_removed#passkeys")
    assert "No passkey yet" in page.content()
    with transaction(live.ctx.sessions) as db:
        assert db.scalars(select(Passkey).where(Passkey.user_id == user.id)).all() == []


def test_without_javascript_the_passkey_button_stays_hidden_and_passwords_work(
        browser: Any, live_localhost: Live) -> None:  # noqa: F811
    live = live_localhost
    live.make_user("bob", name="Bob Example")
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live.url}/login")
        assert not page.is_visible("[data-passkey=login]")
        page.fill("#username", "bob")
        page.fill("#password", PASSWORD)
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_url(f"{live.url}/account")
        assert not page.is_visible("[data-passkey=register]")
    finally:
        context.close()
