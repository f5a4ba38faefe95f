"""The admin console in a real browser (Playwright + Debian's Chromium), no JavaScript needed.

An administrator with TOTP opens ``/admin``, is sent through our login and
second factor and comes back; registers a client, adds a redirect URI, rotates
the secret (the old one stops working at the token endpoint), disables a user
and finds that in the audit log. Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest

from authserver.db import transaction
from tests.account_flows import enrol
from tests.conftest import PASSWORD
from tests.interop.conftest import Live
from tests.interop.test_browser import SHOTS, browser  # noqa: F401  (the Chromium fixture)

pytestmark = pytest.mark.interop


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:  # noqa: F811
    """A page with JavaScript switched off: the console must work without it."""
    context = browser.new_context(viewport={"width": 1200, "height": 800}, java_script_enabled=False)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"admin-{name}.png"), full_page=True)


def _token_status(live: Live, client_id: str, secret: str) -> int:
    with live.http() as http:
        return http.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)).status_code


def test_admin_console_in_chromium(page: Any, live: Live) -> None:
    admin = live.make_user("root", roles=["admin"], name="Root Admin")
    secret, _ = enrol(live.ctx, admin.id)
    bob = live.make_user("bob", name="Bob Example")

    # anonymous -> login -> second factor -> back in the console
    page.goto(f"{live.url}/admin")
    page.wait_for_url(f"{live.url}/login")
    page.fill("#username", "root")
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live.url}/login/mfa")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("form[action='/login/mfa'] button[type=submit]")
    page.wait_for_url(f"{live.url}/admin/users")
    assert "bob@example.com" in page.content()
    _shot(page, "users")

    # register a client: its secret is shown once
    page.click("nav a[href='/admin/clients']")
    page.click("#new-client")
    page.fill("#client_name", "Billing")
    page.fill("#redirect_uris", "https://billing.example/cb")
    page.check("#grant_type_client_credentials")
    page.fill("#scope", "openid billing:read")
    _shot(page, "client-new")
    page.click("#client-form button[type=submit]")
    page.wait_for_url(f"{live.url}/admin/clients/secret")
    client_id = page.text_content("#client_id") or ""
    first_secret = page.text_content("#client_secret") or ""
    assert len(first_secret) > 30
    _shot(page, "client-secret")
    assert _token_status(live, client_id, first_secret) == 200

    # add a redirect URI in place: same client_id
    page.click("#to-client")
    page.wait_for_url(f"{live.url}/admin/clients/{client_id}")
    page.fill("#redirect_uris", "https://billing.example/cb\nhttps://billing.example/cb2")
    page.click("#client-form button[type=submit]")
    page.wait_for_url(f"{live.url}/admin/clients/{client_id}?m=saved")
    assert page.input_value("#redirect_uris").split() == ["https://billing.example/cb",
                                                           "https://billing.example/cb2"]
    _shot(page, "client-edited")

    # rotate the secret: the new one is shown once, the old one stops working
    page.click("#rotate-secret")
    page.wait_for_url(f"{live.url}/admin/clients/secret")
    second_secret = page.text_content("#client_secret") or ""
    assert second_secret and second_secret != first_secret
    assert _token_status(live, client_id, first_secret) == 401
    assert _token_status(live, client_id, second_secret) == 200
    page.goto(f"{live.url}/admin/clients/secret")
    page.wait_for_url(f"{live.url}/admin/clients")  # shown once

    # disable a user, then find it in the audit log
    page.click("nav a[href='/admin/users']")
    page.fill("#q", "bob")
    page.click("form.filters button[type=submit]")
    page.click(f"a[href='/admin/users/{bob.id}']")
    page.click("#disable")
    page.wait_for_url(f"{live.url}/admin/users/{bob.id}?m=disabled")
    assert page.text_content("#state") == "disabled"
    _shot(page, "user-disabled")
    page.click("nav a[href='/admin/audit']")
    page.select_option("#event", "user_disabled")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/audit\?.*event=user_disabled.*"))
    rows = page.locator("table.events tr").all_text_contents()
    assert len(rows) == 2 and "user_disabled" in rows[1] and f"actor={admin.id}" in rows[1]
    _shot(page, "audit")

    with transaction(live.ctx.sessions) as db:
        from authserver.accounts.models import User

        assert db.get(User, bob.id).disabled
