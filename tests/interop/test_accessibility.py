"""Accessibility (WCAG 2.2 AA) and the small-screen layout, in Chromium with axe-core.

Every page a person sees — login (and its error), second factor, consent, the
error pages (400, 404, the 500 and the 503 of a database that is down),
logout, sign-up and its e-mail code, password reset, the account pages and the
admin console — is opened in one browser; axe-core (npm, ``axe/``; injected
into the page, so the context bypasses the CSP for the test's own script only)
must report no ``serious`` or ``critical`` violation, and at 320 CSS pixels wide
the page must not scroll sideways (WCAG 1.4.10 Reflow). Then the keyboard: the
skip link comes first and shows, the focus order follows the form, and the
focus ring is drawn with 3:1 contrast (WCAG 2.4.7, 2.4.11, 1.4.11).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyotp
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.app import create_app
from authserver.branding import contrast_ratio
from authserver.context import Context
from tests.account_flows import enrol, outbox_codes
from tests.conftest import PASSWORD, REQUIRE_SERVICES, make_settings
from tests.interop.conftest import Live, ServerThread, free_port
from tests.interop.test_browser import SHOTS, browser  # noqa: F401  (the Chromium fixture)

pytestmark = pytest.mark.interop

AXE_DIR = Path(__file__).parent / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
SEVERE = ("serious", "critical")
DESKTOP = {"width": 1100, "height": 800}
PHONE = {"width": 320, "height": 640}


@pytest.fixture(scope="module")
def axe_script() -> str:
    if not AXE_JS.is_file():
        npm = shutil.which("npm")
        if not npm:
            if REQUIRE_SERVICES:
                pytest.fail("npm is required for axe-core (AUTHSERVER_TEST_REQUIRE_SERVICES=1)")
            pytest.skip("npm not installed: the accessibility test needs axe-core from npm")
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=AXE_DIR, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    return AXE_JS.read_text()


@pytest.fixture
def live_overrides() -> dict[str, Any]:
    return {"support_email": "help@example.com"}


@pytest.fixture
def page(browser: Any, axe_script: str) -> Iterator[Any]:  # noqa: F811
    # axe is added to every document the context loads; bypass_csp: the pages' CSP
    # (no script-src) would otherwise refuse it
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    context.add_init_script(script=axe_script)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


class Audit:
    """Runs axe and the 320 px check on each page it is shown; collects every problem."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        self.seen: list[str] = []

    def check(self, name: str) -> None:
        page = self.page
        page.wait_for_load_state("load")
        self.seen.append(name)
        assert page.evaluate("document.documentElement.lang"), f"{name}: no lang attribute"
        result = page.evaluate("""async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }""")
        for v in result:
            if v["impact"] in SEVERE:
                self.problems.append(f"{name}: [{v['impact']}] {v['id']} {v['help']} at {v['nodes']}")
        page.set_viewport_size(PHONE)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 0:
            self.problems.append(f"{name}: scrolls {overflow}px sideways at 320px")
        if any(problem.startswith(f"{name}:") for problem in self.problems):
            page.screenshot(path=str(SHOTS / f"a11y-{name}-320.png"), full_page=True)
        page.set_viewport_size(DESKTOP)

    def goto(self, url: str, name: str, status: int | None = None) -> None:
        response = self.page.goto(url)
        if status is not None:
            assert response.status == status, f"{name}: {response.status}"
        self.check(name)


def _submit(page: Any, form: str) -> None:
    page.click(f"form[action='{form}'] button[type=submit]")


def _keyboard_order_skip_link_and_focus_ring(page: Any, url: str) -> None:
    page.goto(f"{url}/password/reset")
    order = []
    for _ in range(6):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.getAttribute('href') "
                                   "|| document.activeElement.textContent.trim()"))
        if len(order) == 1:  # the skip link comes first and is on screen once focused
            box = page.evaluate("(() => { const r = document.activeElement.getBoundingClientRect();"
                                " return [r.top, r.height]; })()")
            assert box[0] >= 0 and box[1] > 0
    assert order == ["#main", "/account", "/account", "email", "Send a code", "/login"]
    # the focus ring of the button: a solid outline of 3 px, 3:1 against the white card
    page.focus("form[action='/password/reset'] button[type=submit]")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    ring = page.evaluate("(() => { const s = getComputedStyle(document.activeElement);"
                         " return [s.outlineStyle, s.outlineWidth, s.outlineColor]; })()")
    assert ring[0] == "solid" and float(ring[1].removesuffix("px")) >= 2
    r, g, b = (int(part) for part in ring[2].removeprefix("rgb(").removesuffix(")").split(","))
    assert contrast_ratio((r, g, b), (255, 255, 255)) >= 3


def test_every_page_is_accessible_and_fits_a_phone(page: Any, live: Live) -> None:
    audit = Audit(page)
    url = live.url
    admin = live.make_user("root", roles=["admin"], name="Root Admin")
    secret, _ = enrol(live.ctx, admin.id)
    live.make_user("alice")
    cid, _ = live.make_client(client_name="Demo RP", redirect_uris=["http://127.0.0.1:9/cb"])
    authorize = f"{url}/authorize?" + urlencode({
        "response_type": "code", "client_id": cid, "redirect_uri": "http://127.0.0.1:9/cb", "scope": "openid email",
        "state": "s", "code_challenge": "x" * 43, "code_challenge_method": "S256"})

    _keyboard_order_skip_link_and_focus_ring(page, url)

    # anonymous pages
    audit.goto(f"{url}/signup", "signup")
    page.fill("#username", "carol")
    page.fill("#email", "carol@example.com")
    page.fill("#password", "short")
    _submit(page, "/signup")
    audit.check("signup-error")
    page.fill("#password", "violet-harbour-lantern-42")
    _submit(page, "/signup")
    page.wait_for_url(f"{url}/signup/verify*")
    audit.check("signup-code")
    page.fill("#code", "00000000")
    _submit(page, "/signup/verify")
    audit.check("signup-code-error")
    audit.goto(f"{url}/password/reset", "reset")
    page.fill("#email", "alice@example.com")
    _submit(page, "/password/reset")
    page.wait_for_url(f"{url}/password/reset/confirm*")
    audit.check("reset-confirm")
    assert outbox_codes(live.ctx.settings)  # the code was sent; a wrong one shows the error
    page.fill("#code", "00000000")
    page.fill("#new_password", PASSWORD)
    page.fill("#confirm_password", PASSWORD + "x")
    _submit(page, "/password/reset/confirm")
    audit.check("reset-confirm-error")
    audit.goto(f"{url}/nowhere", "not-found", 404)
    bad = authorize.replace("127.0.0.1%3A9%2Fcb", "127.0.0.1%3A9%2Fevil")
    audit.goto(bad, "error-bad-redirect", 400)
    assert "Reference:" in page.content() and "help@example.com" in page.content()

    # sign in for a client: login (and its error), second factor, consent
    page.goto(authorize)  # the login form, shown by /authorize itself
    assert page.is_visible("form[action='/login']")
    audit.check("login")
    page.fill("#username", "root")
    page.fill("#password", "wrong password")
    _submit(page, "/login")
    audit.check("login-error")
    assert page.get_attribute("#username", "aria-invalid") == "true"
    assert page.get_attribute("#username", "aria-describedby") == "login-error"
    page.fill("#username", "root")
    page.fill("#password", PASSWORD)
    _submit(page, "/login")
    page.wait_for_url(f"{url}/login/mfa*")
    audit.check("mfa")
    page.fill("#code", "000000")
    _submit(page, "/login/mfa")
    audit.check("mfa-error")
    page.fill("#code", pyotp.TOTP(secret).now())
    _submit(page, "/login/mfa")
    page.wait_for_url(f"{url}/consent?*")
    audit.check("consent")

    # the account pages and the admin console
    audit.goto(f"{url}/account", "account")
    audit.goto(f"{url}/account/mfa/backup-codes", "backup-codes")
    audit.goto(f"{url}/admin/users", "admin-users")
    audit.goto(f"{url}/admin/users/{admin.id}", "admin-user")
    audit.goto(f"{url}/admin/clients", "admin-clients")
    audit.goto(f"{url}/admin/clients/new", "admin-client-new")
    audit.goto(f"{url}/admin/clients/{cid}", "admin-client")
    audit.goto(f"{url}/admin/keys", "admin-keys")
    audit.goto(f"{url}/admin/audit", "admin-audit")

    # a user without a second factor: the enrolment page; then sign out
    page.context.clear_cookies()
    page.goto(f"{url}/login")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    _submit(page, "/login")
    page.wait_for_url(f"{url}/account")
    page.click("form[action='/account/mfa/enrol'] button[type=submit]")
    page.wait_for_url(f"{url}/account/mfa/enrol*")
    audit.check("mfa-enrol")
    audit.goto(f"{url}/logout", "logout")
    page.click("button[name=confirm][value=yes]")
    audit.check("logged-out")

    assert not audit.problems, "\n".join(audit.problems)
    assert len(audit.seen) == 26


@pytest.fixture
def broken(tmp_path: Path) -> Iterator[str]:
    """A second server whose database is unreachable (every query: 503), with a route that
    raises (a 500)."""

    async def boom(request: Request) -> Response:
        raise RuntimeError("secret-internal-detail")

    port = free_port()
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    settings = make_settings(issuer=f"http://127.0.0.1:{port}", keys_dir=keys, data_dir=tmp_path / "data",
                             database_url="postgresql+psycopg://postgres@127.0.0.1:1/none")
    ctx = Context(settings)
    app = create_app(settings, context=ctx)
    app.router.routes.append(Route("/boom", boom))
    server = ServerThread(app, port)
    server.start()
    try:
        yield settings.issuer
    finally:
        server.stop()
        ctx.close()


def test_server_errors_are_accessible_pages(page: Any, broken: str) -> None:
    audit = Audit(page)
    audit.goto(f"{broken}/boom", "server-error", 500)
    content = page.content()
    assert "Something went wrong" in content and "secret-internal-detail" not in content
    assert page.text_content("#request-id") and page.get_attribute("a.button", "href") == "/account"
    audit.goto(f"{broken}/authorize?client_id=x&response_type=code", "unavailable", 503)
    assert "trouble" in page.content() and page.text_content("#request-id")
    assert not audit.problems, "\n".join(audit.problems)
