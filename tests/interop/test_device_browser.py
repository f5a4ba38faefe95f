"""Chromium (Playwright) through the device verification page: the code link, login,
the consent page naming the device's code, and the end page; the device then gets its
tokens. The browser and page are ``test_browser.py``'s (Debian's Chromium, never ``playwright install``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.interop.conftest import Live
from tests.interop.test_browser import SHOTS, browser, page  # noqa: F401 (the module's fixtures)

pytestmark = pytest.mark.interop
GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def test_device_code_entry_login_and_consent(page: Any, live: Live) -> None:  # noqa: F811
    live.make_user()
    cid, _ = live.make_client(client_name="Living Room TV", token_endpoint_auth_method="none", redirect_uris=[],
                              grant_types=[GRANT], scope="openid profile")
    grant = httpx.post(f"{live.url}/device_authorization", data={"client_id": cid, "scope": "openid"}).json()

    page.goto(grant["verification_uri_complete"])
    assert page.input_value("#user_code") == grant["user_code"]  # filled in, but the user still submits
    page.screenshot(path=str(SHOTS / "device.png"), full_page=True)
    page.click("form[action='/device'] button[type=submit]")
    page.wait_for_url(f"{live.url}/login?*")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live.url}/consent?*")
    assert page.text_content("#device-code strong") == grant["user_code"]
    assert "Living Room TV" in page.content()
    page.screenshot(path=str(SHOTS / "device_consent.png"), full_page=True)
    page.click("button[name=decision][value=allow]")
    page.wait_for_url(f"{live.url}/device/continue?*")
    assert page.text_content("h1") == "Device connected"

    r = httpx.post(f"{live.url}/token", data={"grant_type": GRANT, "device_code": grant["device_code"],
                                              "client_id": cid})
    assert r.status_code == 200 and r.json()["id_token"]
