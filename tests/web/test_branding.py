"""Branding (docs/branding.md) and the HTML error pages: the brand's name, logo, colours
and support link on every page; a theme folder overriding templates and static files;
error pages with a way back and the request id for browsers on every failure (the 413,
the 500 and the 503 included), JSON for API routes; the account page's device names and
relative times."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from authserver.app import create_app
from authserver.branding import contrast_ratio, device_label, parse_colour, relative_time
from authserver.context import Context
from tests.account_flows import login
from tests.conftest import ISSUER
from tests.flows import auth_params, follow, pkce

HTML = {"accept": "text/html,application/xhtml+xml"}


# -- pure helpers ----------------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("delta", "words"), [
    (dt.timedelta(seconds=5), "just now"),
    (dt.timedelta(seconds=59), "just now"),
    (dt.timedelta(minutes=1), "1 minute ago"),
    (dt.timedelta(minutes=59), "59 minutes ago"),
    (dt.timedelta(hours=3, minutes=20), "3 hours ago"),
    (dt.timedelta(days=1), "1 day ago"),
    (dt.timedelta(days=13), "1 week ago"),
    (dt.timedelta(days=45), "1 month ago"),
    (dt.timedelta(days=800), "2 years ago"),
    (-dt.timedelta(minutes=5), "in 5 minutes"),
])
def test_relative_time(delta, words):
    assert relative_time(NOW - delta, NOW) == words


def test_relative_time_takes_naive_datetimes_as_utc():
    assert relative_time(dt.datetime(2026, 11, 30, 9, 0), NOW) == "3 hours ago"
    assert relative_time(None, NOW) == ""


@pytest.mark.parametrize(("user_agent", "label"), [
    ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iOS"),
    (None, "An unknown browser"),
    ("<script>alert(1)</script>", "An unknown browser"),
])
def test_device_label(user_agent, label):
    assert device_label(user_agent) == label


def test_contrast_ratio_matches_wcag():
    assert round(contrast_ratio(parse_colour("#000"), parse_colour("#ffffff")), 1) == 21.0
    assert round(contrast_ratio(parse_colour("#767676"), parse_colour("#fff")), 2) == 4.54
    with pytest.raises(ValueError):
        parse_colour("red")


def test_brand_for_mail_has_an_absolute_logo(tmp_path):
    from authserver.branding import from_settings
    from tests.conftest import make_settings

    (tmp_path / "static").mkdir()
    brand = from_settings(make_settings(theme_dir=tmp_path, brand_logo="logo.png", brand_name="Acme",
                                        support_email="help@acme.example"))
    values = brand.for_mail("https://id.acme.example")
    assert values["brand_logo_url"] == "https://id.acme.example/static/logo.png"
    assert values["brand_name"] == "Acme" and values["support_href"] == "mailto:help@acme.example"


# -- the brand on the pages ------------------------------------------------------------------


def test_default_brand_and_no_issuer_footer(client):
    page = client.get("/login").text
    assert "<title>Sign in · authserver</title>" in page
    assert 'lang="en"' in page and 'href="#main"' in page and 'id="main"' in page
    assert "Signing in to" not in page and ISSUER not in page
    css_url = re.search(r'<link rel="stylesheet" href="(/brand.css\?v=[0-9a-f]+)">', page).group(1)
    css = client.get(css_url)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "--primary: #0b5cad;" in css.text and "--accent: #0e7490;" in css.text


@pytest.fixture
def theme(tmp_path: Path) -> Path:
    folder = tmp_path / "theme"
    (folder / "templates").mkdir(parents=True)
    (folder / "static").mkdir()
    (folder / "static" / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>')
    (folder / "static" / "style.css").write_text("body { color: #000 }\n")
    (folder / "templates" / "consent.html").write_text(
        '{% extends "layout.html" %}{% block content %}<h1 id="themed">Acme consent for {{ client_name }}</h1>'
        "{% endblock %}")
    return folder


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(getattr(request, "param", {}))


BRANDED = {"brand_name": "Acme ID", "brand_primary_color": "#5b21b6", "brand_accent_color": "#b45309",
           "support_url": "https://help.acme.example/login"}


@pytest.mark.parametrize("settings_overrides", [BRANDED], indirect=True)
def test_brand_settings_reach_every_page(client, make_user):
    make_user()
    pages = [client.get("/login").text, client.get("/signup").text, client.get("/password/reset").text,
             client.get("/nowhere", headers=HTML).text]
    login(client)
    pages.append(client.get("/account").text)
    for page in pages:
        assert re.search(r"<title>[^<]+ · Acme ID</title>", page)
        assert '<span>Acme ID</span>' in page
        assert '<a href="https://help.acme.example/login">Help and support</a>' in page
    css = client.get("/brand.css").text
    assert "--primary: #5b21b6;" in css and "--accent: #b45309;" in css


def test_theme_folder_overrides_templates_and_static_files(settings, theme):
    themed = dataclasses.replace(settings, theme_dir=theme, brand_logo="logo.svg", brand_name="Acme")
    context = Context(themed)
    with TestClient(create_app(themed, context=context), base_url=ISSUER, follow_redirects=False) as client:
        page = client.get("/login").text
        assert '<img src="/static/logo.svg" alt="" height="32"><span>Acme</span>' in page
        assert client.get("/static/logo.svg").headers["content-type"].startswith("image/svg")
        assert client.get("/static/style.css").text == "body { color: #000 }\n"  # the theme's, not ours
        # a template the theme does not override is still the built-in one
        assert 'id="username"' in page
    context.close()


def test_theme_template_is_used_for_its_page(settings, theme, make_user, make_client):
    themed = dataclasses.replace(settings, theme_dir=theme)
    context = Context(themed)
    try:
        with TestClient(create_app(themed, context=context), base_url=ISSUER, follow_redirects=False) as client:
            make_user()
            cid, _ = make_client(client_name="Demo RP")
            r = follow(client, client.get("/authorize", params=auth_params(cid, pkce()[1])), consent=None)
            assert '<h1 id="themed">Acme consent for Demo RP</h1>' in r.text
    finally:
        context.close()


def test_https_logo_is_allowed_by_the_csp(settings):
    branded = dataclasses.replace(settings, brand_logo="https://cdn.acme.example/logo.svg")
    context = Context(branded)
    try:
        with TestClient(create_app(branded, context=context), base_url=ISSUER) as client:
            r = client.get("/login")
        assert '<img src="https://cdn.acme.example/logo.svg"' in r.text
        assert "img-src 'self' data: https://cdn.acme.example;" in r.headers["content-security-policy"]
    finally:
        context.close()
    context = Context(settings)
    try:
        with TestClient(create_app(settings, context=context), base_url=ISSUER) as client:
            assert "img-src 'self' data:;" in client.get("/login").headers["content-security-policy"]
    finally:
        context.close()


def test_theme_logo_file_must_exist(tmp_path, theme):
    from authserver.settings import Settings, SettingsError

    env = {"AUTHSERVER_KEYS_DIR": str(tmp_path / "keys"), "AUTHSERVER_SECRET_KEY": "k" * 48,
           "AUTHSERVER_DATA_DIR": str(tmp_path / "data"), "AUTHSERVER_THEME_DIR": str(theme)}
    assert Settings.from_env({**env, "AUTHSERVER_BRAND_LOGO": "logo.svg"}).brand_logo == "logo.svg"
    with pytest.raises(SettingsError, match=r"AUTHSERVER_BRAND_LOGO 'missing\.png' is not a file"):
        Settings.from_env({**env, "AUTHSERVER_BRAND_LOGO": "missing.png"})
    with pytest.raises(SettingsError, match="AUTHSERVER_BRAND_LOGO must be a file name inside"):
        Settings.from_env({**env, "AUTHSERVER_BRAND_LOGO": "../../etc/passwd"})


# -- the account page ------------------------------------------------------------------------


def test_account_page_names_devices_and_says_when(client, make_user):
    make_user()
    client.headers["user-agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    login(client)
    page = client.get("/account").text
    assert '<strong class="device">Firefox on Linux</strong><span class="badge">This device</span>' in page
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" title="[^"]+ UTC">just now</time>', page)
    assert "Gecko/20100101" not in page  # the raw header is never shown
    assert 'aria-label="Sign out Firefox on Linux, this device"' in page


# -- error pages -----------------------------------------------------------------------------


def test_error_page_has_a_way_back_and_the_request_id(client):
    r = client.get("/nowhere", headers={**HTML, "x-request-id": "req-brand-0001"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in r.text
    assert '<a class="button" href="/account">' in r.text
    assert '<code id="request-id">req-brand-0001</code>' in r.text
    assert r.headers["x-request-id"] == "req-brand-0001"


@pytest.mark.parametrize("path", ["/token", "/userinfo", "/register/abc", "/.well-known/nothing",
                                  "/admin/api/users/x"])
def test_api_routes_answer_json_even_to_a_browser(client, path):
    r = client.get(path, headers=HTML)
    assert r.status_code >= 400 and r.headers["content-type"].startswith("application/json"), (path, r.text)


def test_too_large_form_is_an_html_page_for_a_browser_and_json_for_the_api(client):
    body = "x=" + "a" * (70 * 1024)
    form = {"content-type": "application/x-www-form-urlencoded"}
    r = client.post("/login", content=body, headers={**HTML, **form})
    assert r.status_code == 413 and r.headers["content-type"].startswith("text/html")
    assert "The request body is too large." in r.text and 'id="request-id"' in r.text
    r = client.post("/token", content=body, headers={**HTML, **form})
    assert r.status_code == 413 and r.json()["error"] == "invalid_request"


@pytest.fixture
def broken_app(settings):
    """The app with its database unreachable, and a route that raises."""

    async def boom(request: Request) -> Response:
        raise RuntimeError("secret-internal-detail")

    broken = dataclasses.replace(settings, database_url="postgresql+psycopg://postgres@127.0.0.1:1/none",
                                 redis_url=None)
    context = Context(broken)
    app = create_app(broken, context=context)
    app.router.routes.append(Route("/boom", boom))
    with TestClient(app, base_url=ISSUER, raise_server_exceptions=False) as client:
        yield client
    context.close()


def test_database_down_is_an_html_503_for_a_browser(broken_app):
    r = broken_app.get("/authorize?client_id=x&response_type=code", headers=HTML)
    assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
    assert r.headers["retry-after"] == "1" and r.headers["cache-control"] == "no-store"
    assert "temporarily_unavailable" in r.text and 'id="request-id"' in r.text
    api = broken_app.post("/token", data={"grant_type": "client_credentials"}, headers=HTML, auth=("x", "y"))
    assert api.status_code == 503 and api.json()["error"] == "temporarily_unavailable"


def test_server_error_is_an_html_500_for_a_browser(broken_app):
    r = broken_app.get("/boom", headers={**HTML, "x-request-id": "req-brand-0500"})
    assert r.status_code == 500 and r.headers["content-type"].startswith("text/html")
    assert "Something went wrong on our side" in r.text and '<code id="request-id">req-brand-0500</code>' in r.text
    assert "secret-internal-detail" not in r.text and "Traceback" not in r.text


def test_a_broken_theme_error_template_falls_back_to_the_plain_page(settings, tmp_path):
    theme = tmp_path / "broken-theme"
    (theme / "templates").mkdir(parents=True)
    (theme / "templates" / "error.html").write_text("{{ no_such_function() }}")
    themed = dataclasses.replace(settings, theme_dir=theme)
    context = Context(themed)
    try:
        with TestClient(create_app(themed, context=context), base_url=ISSUER) as client:
            r = client.get("/nowhere", headers=HTML)
        assert r.status_code == 404 and "Something went wrong" in r.text and 'lang="en"' in r.text
    finally:
        context.close()
