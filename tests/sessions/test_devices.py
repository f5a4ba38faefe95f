"""The device limit (``MAX_DEVICES_PER_USER``): the least recently used device is signed
out (browser session ended, refresh families revoked with their access tokens, audit row,
account-page notice); off means unlimited; concurrent sign-ins never exceed the limit."""

from __future__ import annotations

import datetime as dt
import sys
import threading
import traceback
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from starlette.testclient import TestClient

from authserver.audit.models import AuditEvent
from authserver.db import create_engine, session_factory, transaction, utcnow
from authserver.sessions import devices
from authserver.sessions.models import BrowserSession, Device
from authserver.tokens.models import RefreshToken
from tests.account_flows import enrol, login, totp_code
from tests.conftest import ISSUER, PASSWORD
from tests.flows import exchange, form_value, get_code, introspect, refresh, tokens

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Safari/537.36")
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1")
CHROME_ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Mobile Safari/537.36")
EDGE_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0")


@pytest.mark.parametrize("user_agent, name", [
    (FIREFOX_LINUX, "Firefox on Linux"),
    (CHROME_WINDOWS, "Chrome on Windows"),
    (SAFARI_IPHONE, "Safari on iOS"),
    (CHROME_ANDROID, "Chrome on Android"),
    (EDGE_MAC, "Edge on macOS"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 CriOS/131.0 Mobile",
     "Chrome on iOS"),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 Chrome/131.0.0.0 Safari/537.36",
     "Chrome on ChromeOS"),
    ("curl/8.5.0", "an unknown browser"),
    ("Mozilla/5.0 (Windows NT 10.0) <script>alert(1)</script>", "a browser on Windows"),
    ("", "an unknown browser"),
    (None, "an unknown browser"),
])
def test_device_name(user_agent, name):
    assert devices.device_name(user_agent) == name


def test_a_browser_without_a_system_and_a_system_without_a_browser_are_named():
    assert devices.device_name("Mozilla/5.0 Firefox/133.0") == "Firefox browser"
    assert devices.device_name("Opera/9.80 OPR/106.0") == "Opera browser"
    assert devices.device_name("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)") == "a browser on iPadOS"


@pytest.mark.parametrize("user_agent", [
    FIREFOX_LINUX, CHROME_WINDOWS, SAFARI_IPHONE, EDGE_MAC, "Mozilla/5.0 SamsungBrowser/25.0",
    "Mozilla/5.0 (Windows NT 10.0)", "Mozilla/5.0 (X11; CrOS x86_64) Chromium/120.0", "curl/8.5.0",
])
def test_a_stored_name_is_read_back_as_the_same_translatable_text(user_agent):
    """Stored in English, shown in the reader's language: the stored name must come back as
    the same message with the same parameters, not as a plain string."""
    from authserver.i18n import Text

    name = devices.device_name(user_agent)
    again = devices.stored_name(str(name))
    assert isinstance(again, Text)
    assert (again.msgid, dict(again.params)) == (name.msgid, dict(name.params))


@pytest.mark.parametrize("stored", [
    "My Mail App",  # an application's name stays as the client registered it
    "Netscape on Linux", "Firefox on BeOS", "Lynx browser", "a browser on Plan 9", "browser",
    "Firefox on Linux on Windows",
])
def test_a_stored_name_that_no_table_made_stays_a_plain_string(stored):
    assert devices.stored_name(stored) == stored
    assert type(devices.stored_name(stored)) is str


@pytest.mark.parametrize("stored", [None, ""])
def test_a_missing_stored_name_is_an_unknown_browser(stored):
    assert str(devices.stored_name(stored)) == "an unknown browser"


def _browser(app: Any, user_agent: str) -> TestClient:
    browser = TestClient(app, base_url=ISSUER, follow_redirects=False)
    browser.headers["user-agent"] = user_agent
    return browser


def _age(ctx: Any, name: str, seconds: int) -> None:
    """Move everything of the device called ``name`` ``seconds`` into the past."""
    delta = dt.timedelta(seconds=seconds)
    with transaction(ctx.sessions) as db:
        device = db.scalars(select(Device).where(Device.name == name, Device.ended_at.is_(None))).one()
        device.last_used_at -= delta
        device.created_at -= delta
        for session in db.scalars(select(BrowserSession).where(BrowserSession.device_id == device.id)):
            session.last_seen_at -= delta
        for row in db.scalars(select(RefreshToken).where(RefreshToken.device_id == device.id)):
            row.created_at -= delta


def _signed_out_events(ctx: Any) -> list[AuditEvent]:
    with transaction(ctx.sessions) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == "device_signed_out")))


def _live_devices(ctx: Any, user_id: str) -> list[str]:
    with transaction(ctx.sessions) as db:
        return sorted(a.device.name for a in devices.active(db, user_id))


@pytest.mark.parametrize("settings_overrides", [{"max_devices_per_user": 2}])
def test_limit_signs_out_the_least_recently_used_device(app, ctx, make_user, make_client):
    user = make_user()
    cid, secret = make_client()
    with (_browser(app, FIREFOX_LINUX) as firefox, _browser(app, CHROME_WINDOWS) as chrome,
          _browser(app, SAFARI_IPHONE) as safari):
        at_firefox = tokens(firefox, cid, secret)
        at_chrome = tokens(chrome, cid, secret)
        # Firefox signed in first but was used last: Chrome is the least recently used.
        _age(ctx, "Firefox on Linux", 7200)
        _age(ctx, "Chrome on Windows", 3600)
        used = refresh(firefox, cid, secret, at_firefox["refresh_token"])
        assert used.status_code == 200
        at_firefox = used.json()
        assert _live_devices(ctx, user.id) == ["Chrome on Windows", "Firefox on Linux"]

        tokens(safari, cid, secret)  # a third device

        assert _live_devices(ctx, user.id) == ["Firefox on Linux", "Safari on iOS"]
        # Chrome: refresh token refused, access token inactive, browser signed out
        assert refresh(chrome, cid, secret, at_chrome["refresh_token"]).json()["error"] == "invalid_grant"
        assert introspect(chrome, cid, secret, at_chrome["access_token"]) == {"active": False}
        assert chrome.get("/account").headers["location"] == "/login"
        # Firefox keeps everything
        assert introspect(firefox, cid, secret, at_firefox["access_token"])["active"] is True
        assert refresh(firefox, cid, secret, at_firefox["refresh_token"]).status_code == 200
        assert firefox.get("/account").status_code == 200

        [event] = _signed_out_events(ctx)
        assert event.user_id == user.id
        assert event.detail["reason"] == "device_limit"
        assert event.detail["device"] == "Chrome on Windows" and event.detail["by_device"] == "Safari on iOS"
        assert event.detail["refresh_tokens_revoked"] == 1 and event.detail["sessions_ended"] == 1

        page = safari.get("/account").text
        assert ("Signed out of Chrome on Windows because you signed in on a new device (Safari on iOS)"
                in page)
        assert "at most 2 devices" in page


def test_no_limit_by_default(app, ctx, make_user, make_client):
    assert ctx.settings.max_devices_per_user == 0
    user = make_user()
    cid, secret = make_client()
    browsers = [_browser(app, ua) for ua in (FIREFOX_LINUX, CHROME_WINDOWS, SAFARI_IPHONE, CHROME_ANDROID)]
    issued = [tokens(b, cid, secret) for b in browsers]
    for browser, token in zip(browsers, issued, strict=True):
        assert refresh(browser, cid, secret, token["refresh_token"]).status_code == 200
        assert browser.get("/account").status_code == 200
        browser.close()
    assert len(_live_devices(ctx, user.id)) == 4
    assert _signed_out_events(ctx) == []


@pytest.mark.parametrize("settings_overrides", [{"max_devices_per_user": 1}])
def test_signing_in_again_in_the_same_browser_keeps_its_device(app, ctx, make_user, make_client):
    user = make_user()
    cid, secret = make_client()
    with _browser(app, FIREFOX_LINUX) as firefox:
        first = tokens(firefox, cid, secret)
        assert login(firefox).headers["location"] == "/account"  # signs in again: a new session, same device
        second = tokens(firefox, cid, secret, prompt="login")
        assert refresh(firefox, cid, secret, first["refresh_token"]).status_code == 200
        assert refresh(firefox, cid, secret, second["refresh_token"]).status_code == 200
    assert _live_devices(ctx, user.id) == ["Firefox on Linux"]
    assert _signed_out_events(ctx) == []


@pytest.mark.parametrize("settings_overrides", [{"max_devices_per_user": 1}])
def test_a_code_issued_to_a_signed_out_device_is_refused(app, ctx, make_user, make_client):
    make_user()
    cid, secret = make_client()
    with _browser(app, FIREFOX_LINUX) as firefox, _browser(app, CHROME_WINDOWS) as chrome:
        code, verifier, _params = get_code(firefox, cid)
        assert login(chrome).status_code == 303  # Firefox is signed out before it exchanges its code
        response = exchange(firefox, cid, secret, code, verifier)
        assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("settings_overrides", [{"max_devices_per_user": 1}])
def test_a_password_grant_sign_in_is_a_device(app, ctx, client, make_user, make_client):
    user = make_user()
    cid, secret = make_client(grant_types=["authorization_code", "refresh_token", "password"],
                              client_name="Example App")
    with _browser(app, FIREFOX_LINUX) as firefox:
        browser_tokens = tokens(firefox, cid, secret)
        response = client.post("/token", data={"grant_type": "password", "username": "alice",
                                               "password": PASSWORD, "scope": "openid"}, auth=(cid, secret))
        assert response.status_code == 200 and "refresh_token" in response.json()
        assert _live_devices(ctx, user.id) == ["Example App"]
        assert refresh(firefox, cid, secret, browser_tokens["refresh_token"]).json()["error"] == "invalid_grant"
        assert introspect(firefox, cid, secret, browser_tokens["access_token"]) == {"active": False}
        # the application's family is bound to its device: a sign-in in the browser ends it in turn
        tokens(firefox, cid, secret)
        app_refresh = refresh(client, cid, secret, response.json()["refresh_token"])
        assert app_refresh.json()["error"] == "invalid_grant"
    assert [e.detail["device"] for e in _signed_out_events(ctx)] == ["Firefox on Linux", "Example App"]


@pytest.mark.parametrize("settings_overrides", [{"max_devices_per_user": 1}])
def test_a_password_without_the_second_factor_signs_nobody_out(app, ctx, make_user):
    user = make_user()
    secret, _codes = enrol(ctx, user.id)
    with _browser(app, FIREFOX_LINUX) as firefox, _browser(app, CHROME_WINDOWS) as chrome:
        for browser in (firefox, chrome):
            assert login(browser).headers["location"] == "/account"
            page = browser.get("/login/mfa")
            if browser is chrome:
                assert _live_devices(ctx, user.id) == ["Firefox on Linux"]  # the password alone: no device
            code = totp_code(secret) if browser is firefox else totp_code(secret, 1)
            r = browser.post("/login/mfa", data={"csrf_token": form_value(page.text, "csrf_token"),
                                                 "rid": "", "code": code})
            assert r.status_code == 303 and r.headers["location"] == "/account", r.text[:300]
        assert _live_devices(ctx, user.id) == ["Chrome on Windows"]
        assert firefox.get("/account").headers["location"] == "/login"


@pytest.mark.parametrize("settings_overrides", [{"max_devices_per_user": 2}])
def test_concurrent_sign_ins_never_exceed_the_limit(app, ctx, make_user):
    """Eight browsers sign in at the same instant from eight threads, each with its own
    event loop and database connection: never more than two devices survive."""
    user = make_user()
    browsers = [_browser(app, ua) for ua in (FIREFOX_LINUX, CHROME_WINDOWS, SAFARI_IPHONE, CHROME_ANDROID,
                                              EDGE_MAC) * 2][:8]
    for b in browsers:
        b.__enter__()
    forms = [form_value(b.get("/login").text, "csrf_token") for b in browsers]
    barrier = threading.Barrier(len(browsers), timeout=30)
    statuses: list[int] = []

    def sign_in(browser: TestClient, csrf_token: str) -> None:
        barrier.wait()
        r = browser.post("/login", data={"csrf_token": csrf_token, "rid": "", "username": "alice",
                                         "password": PASSWORD})
        statuses.append(r.status_code)

    threads = [threading.Thread(target=sign_in, args=pair) for pair in zip(browsers, forms, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert statuses == [303] * len(browsers)
        with transaction(ctx.sessions) as db:
            open_devices = db.scalar(select(func.count()).select_from(Device).where(
                Device.user_id == user.id, Device.ended_at.is_(None)))
            signed_in = db.scalar(select(func.count()).select_from(BrowserSession).where(
                BrowserSession.user_id == user.id))
        assert open_devices == 2 and signed_in == 2
        assert len(_live_devices(ctx, user.id)) == 2
        assert len(_signed_out_events(ctx)) == len(browsers) - 2
        assert sum(b.get("/account").status_code == 200 for b in browsers) == 2
    finally:
        for b in browsers:
            b.__exit__(None, None, None)


def test_cleanup_forgets_devices_with_nothing_live(app, ctx, make_user, make_client):
    from authserver.maintenance.service import run_cleanup

    user = make_user()
    cid, secret = make_client()
    with _browser(app, FIREFOX_LINUX) as firefox, _browser(app, CHROME_WINDOWS) as chrome:
        tokens(firefox, cid, secret)  # a refresh family keeps it
        login(chrome)  # only a browser session
    month = 31 * 86400
    _age(ctx, "Firefox on Linux", month)
    _age(ctx, "Chrome on Windows", month)
    with transaction(ctx.sessions) as db:
        db.execute(BrowserSession.__table__.delete())  # both browsers' sessions expired
        db.add(Device(id="ended", user_id=user.id, name="Old phone", ended_reason="device_limit",
                      ended_at=utcnow() - dt.timedelta(seconds=month)))
    assert run_cleanup(ctx)["devices"] == 2
    with transaction(ctx.sessions) as db:
        assert db.scalars(select(Device.name)).all() == ["Firefox on Linux"]


@pytest.mark.parametrize("settings_overrides", [{"max_devices_per_user": 1}])
def test_access_tokens_of_codes_without_a_refresh_token_are_revoked_too(app, ctx, make_user, make_client):
    make_user()
    cid, secret = make_client(grant_types=["authorization_code"])
    with _browser(app, FIREFOX_LINUX) as firefox, _browser(app, CHROME_WINDOWS) as chrome:
        issued = tokens(firefox, cid, secret)
        assert "refresh_token" not in issued
        assert introspect(firefox, cid, secret, issued["access_token"])["active"] is True
        login(chrome)
        assert introspect(firefox, cid, secret, issued["access_token"]) == {"active": False}


def _sign_out_while(ctx: Any, device_id: str, holding: Any) -> None:
    """Sign the device out from another thread while ``holding`` (an open transaction on
    Postgres) has not committed; wait until the sign-out is blocked by it, then commit."""

    def sign_out(db: Any) -> None:
        row = db.get(Device, device_id)
        assert row is not None
        devices.end(db, ctx, row, reason=devices.DEVICE_LIMIT)

    _blocked_by(ctx, holding, sign_out)


def _blocked_by(ctx: Any, holding: Any, work: Any) -> None:
    """Run ``work(db)`` in a transaction of another thread while ``holding`` (an open
    transaction on Postgres) has not committed; wait until ``work`` is blocked by it,
    then commit ``holding``, and fail unless ``work`` waited and then succeeded.

    ``work`` and the watcher get connections of their own (not the app's pool of
    ``DB_POOL_SIZE``), so what they wait for is the lock, never a free pool slot."""
    pid = holding.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
    errors: list[BaseException] = []
    own = create_engine(ctx.engine.url.render_as_string(hide_password=False), pool_size=2)

    def run() -> None:
        try:
            with transaction(session_factory(own)) as db:
                work(db)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    blocked = sa.text("SELECT count(*) FROM pg_stat_activity "
                      "WHERE wait_event_type = 'Lock' AND :pid = ANY(pg_blocking_pids(pid))")
    waited = False
    where = ""
    try:
        # autocommit: pg_stat_activity is a snapshot taken at a transaction's first read,
        # so in one transaction every poll would see what the first one saw
        with own.connect().execution_options(isolation_level="AUTOCOMMIT") as watch:
            for _ in range(400):
                waited = bool(watch.execute(blocked, {"pid": pid}).scalar())
                if waited or not thread.is_alive():
                    break
                threading.Event().wait(0.05)
        if not waited and thread.ident is not None and thread.ident in sys._current_frames():
            where = "".join(traceback.format_stack(sys._current_frames()[thread.ident]))
    finally:
        holding.commit()
        holding.close()
        thread.join(30)
        own.dispose()
    assert not errors, errors
    assert waited, f"the work did not wait for the other transaction; it was at:\n{where}"


def _new_token(old: RefreshToken, token_hash: str, family_id: str) -> RefreshToken:
    return RefreshToken(token_hash=token_hash, family_id=family_id, client_id=old.client_id,
                        user_id=old.user_id, scope=old.scope, device_id=old.device_id,
                        expires_at=old.expires_at, family_expires_at=old.family_expires_at)


def _unrevoked(ctx: Any) -> list[str]:
    with transaction(ctx.sessions) as db:
        return list(db.scalars(select(RefreshToken.token_hash).where(RefreshToken.revoked_at.is_(None))))


@pytest.mark.parametrize("in_flight", ["rotation", "code exchange"])
def test_what_is_in_flight_does_not_outlive_the_sign_out(backend, app, ctx, make_user, make_client, in_flight):
    """A refresh that rotated the device's token, or a code exchange that started a family
    on it, has not committed when the device is signed out: the sign-out waits for it
    and then revokes what it wrote."""
    if backend == "sqlite":
        pytest.skip("SQLite runs one writing transaction at a time: the two cannot interleave")
    make_user()
    cid, secret = make_client()
    with _browser(app, FIREFOX_LINUX) as firefox:
        tokens(firefox, cid, secret)
    with transaction(ctx.sessions) as db:
        old = db.scalars(select(RefreshToken)).one()
    assert old.device_id is not None
    holding = ctx.sessions()
    holding.begin()
    if in_flight == "rotation":
        from authserver.tokens import service as token_service

        assert token_service.claim_live_refresh_token(holding, old.token_hash, old.client_id) is not None
        holding.add(_new_token(old, "rotated", old.family_id))
    else:  # what the authorization-code grant does before it issues (grants.AuthorizationCodeGrant)
        assert devices.is_live(holding, old.device_id)
        holding.add(_new_token(old, "exchanged", "a-new-family"))
    holding.flush()
    _sign_out_while(ctx, old.device_id, holding)
    assert _unrevoked(ctx) == []


def test_active_devices_are_those_with_something_live_least_recently_used_first(ctx, make_user, make_client):
    """``devices.active``: a device counts while one of its browser sessions or refresh
    tokens is live; its last use is the latest of its sign-in, its sessions' last request
    and its live tokens' issue; ties go to the older device."""
    user = make_user()
    cid, _ = make_client()
    now = utcnow()
    ago = lambda minutes: now - dt.timedelta(minutes=minutes)  # noqa: E731
    with transaction(ctx.sessions) as db:
        for name, created in (("web", 50), ("expired web", 40), ("app", 30), ("two tokens", 20), ("ended", 10)):
            db.add(Device(id=f"dev-{name}", user_id=user.id, name=name, created_at=ago(created),
                          last_used_at=ago(created),
                          ended_at=now if name == "ended" else None))
        db.flush()

        def browser(n: int, device: str, seen: int, expires: int) -> BrowserSession:
            return BrowserSession(id=f"bs-{n}", sid=f"sid-{n}", user_id=user.id, csrf_secret="x", device_id=device,
                                  last_seen_at=ago(seen), expires_at=now + dt.timedelta(minutes=expires))

        db.add_all([browser(1, "dev-web", 5, 60), browser(2, "dev-web", 7, 60),
                    browser(3, "dev-expired web", 1, -1), browser(4, "dev-ended", 1, 60)])

        def token(n: int, device: str, created: int, **kw: Any) -> RefreshToken:
            return RefreshToken(token_hash=f"h{n}", family_id=f"f{n}", client_id=cid, user_id=user.id, scope="openid",
                                device_id=device, created_at=ago(created),
                                expires_at=kw.pop("expires_at", now + dt.timedelta(days=1)),
                                family_expires_at=now + dt.timedelta(days=1), **kw)

        db.add_all([token(1, "dev-app", 3), token(2, "dev-two tokens", 8), token(3, "dev-two tokens", 9),
                    token(4, "dev-two tokens", 1, rotated_at=now),  # rotated: not live, not a use
                    token(5, "dev-two tokens", 2, revoked_at=now),
                    token(6, "dev-two tokens", 2, expires_at=ago(1))])
    with transaction(ctx.sessions) as db:
        found = [(a.device.name, round((now - a.last_used_at).total_seconds() / 60))
                 for a in devices.active(db, user.id)]
    # "expired web" has only an expired session; "ended" was signed out
    assert found == [("two tokens", 8), ("web", 5), ("app", 3)]


def test_a_sign_in_on_a_device_being_signed_out_meanwhile_gets_a_new_device(backend, ctx, make_user):
    """The browser's device is being ended by the limit (another sign-in, not committed)
    when this browser signs in again: the sign-in waits for that and then makes a new
    device, never keeping an ended one (``devices.sign_in`` reads the row locked)."""
    if backend == "sqlite":
        pytest.skip("SQLite runs one writing transaction at a time: the two cannot interleave")
    user = make_user()
    with transaction(ctx.sessions) as db:
        db.add(Device(id="dev-old", user_id=user.id, name="Firefox on Linux"))
    holding = ctx.sessions()
    holding.begin()
    devices.end(holding, ctx, holding.get(Device, "dev-old"), reason=devices.DEVICE_LIMIT)
    holding.flush()
    kept: list[str] = []
    _blocked_by(ctx, holding, lambda db: kept.append(
        devices.sign_in(db, ctx, user.id, "dev-old", user_agent=FIREFOX_LINUX).id))
    assert kept and kept[0] != "dev-old"
    with transaction(ctx.sessions) as db:
        assert db.get(Device, "dev-old").ended_at is not None
        assert db.get(Device, kept[0]).ended_at is None
