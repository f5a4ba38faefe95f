"""The page language over HTTP: ui_locales carried through the sign-in request, the switcher's
cookie, Accept-Language; the switcher's way back stays on this server."""

from __future__ import annotations

import re

import pytest

from authserver.oauth.tokens import user_claims
from tests.flows import auth_params, form_value, login_rid, pkce


@pytest.fixture
def backend() -> str:
    """The choice of language reads the request and the session cookie, not the database's
    kind: SQLite only (the time of the suite). tests/accounts/test_letters.py covers both."""
    return "sqlite"


def lang(html: str) -> str:
    return re.search(r'<html lang="([a-z]+)">', html).group(1)


def switch(client, locale: str, next_: str):
    return client.post("/language", data={"lang": locale, "next": next_})


def test_accept_language_then_the_switcher_cookie(client):
    assert lang(client.get("/login").text) == "en"
    assert lang(client.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9"}).text) == "de"
    r = switch(client, "fr", "/login")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert re.search(r"lang=fr; HttpOnly; Max-Age=31536000; Path=/; SameSite=lax", r.headers["set-cookie"])
    page = client.get("/login", headers={"Accept-Language": "de"})
    assert lang(page.text) == "fr" and "Se connecter" in page.text
    # the switcher on every page, with this page to come back to
    assert 'action="/language"' in page.text and 'name="next" value="/login"' in page.text


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "evil",
                                    "/login\r\nSet-Cookie: x=1"])
def test_the_switcher_never_leaves_this_server(client, target):
    r = switch(client, "de", target)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_an_unknown_language_changes_nothing(client):
    r = switch(client, "xx", "/login")
    assert r.headers["location"] == "/login" and "set-cookie" not in r.headers


def test_ui_locales_of_the_sign_in_request_then_the_users_choice(client, make_client):
    client_id, _ = make_client()
    _verifier, challenge = pkce()
    client.cookies.set("lang", "fr")
    page = client.get("/authorize", params=auth_params(client_id, challenge, ui_locales="es de-CH"),
                      headers={"Accept-Language": "fr"})
    login = f"/login?rid={login_rid(page)}"  # the login form, shown by /authorize itself
    assert lang(page.text) == "de" and "Anmelden" in page.text  # ui_locales wins over cookie and header
    # its switcher comes back to this request's login page, not to /authorize (a new request)
    assert f'name="next" value="{login}"' in page.text
    assert lang(client.get(login, headers={"Accept-Language": "fr"}).text) == "de"
    # a failed sign-in (a POST) keeps the request's language, and the switcher keeps the request
    failed = client.post("/login", data={"csrf_token": form_value(page.text, "csrf_token"),
                                         "rid": form_value(page.text, "rid"), "username": "x", "password": "y"})
    assert lang(failed.text) == "de" and "Benutzername oder Passwort ist falsch." in failed.text
    assert f'name="next" value="{login}"' in failed.text
    # the user picks French during this sign-in: it wins over ui_locales for this request
    assert switch(client, "fr", login).headers["location"] == login
    assert lang(client.get(login).text) == "fr"
    # a new request from the application starts from its ui_locales again
    r = client.get("/authorize", params=auth_params(client_id, challenge, ui_locales="de"))
    assert lang(r.text) == "de" and login_rid(r) not in login


def test_ui_locales_on_the_authorization_endpoints_own_error_page(client):
    r = client.get("/authorize", params={"client_id": "nobody", "ui_locales": "fr"},
                   headers={"Accept": "text/html"})
    assert r.status_code == 400 and lang(r.text) == "fr"


def test_error_pages_speak_the_language(client):
    r = client.post("/login", data={"csrf_token": "forged", "username": "a", "password": "b"},
                    headers={"Accept-Language": "de"})
    assert r.status_code == 400 and lang(r.text) == "de"
    assert "Das Formular ist abgelaufen oder wurde nicht von dieser Website gesendet." in r.text
    r = client.get("/nowhere", headers={"Accept": "text/html", "Accept-Language": "fr"})
    assert r.status_code == 404 and "Il n’y a rien ici." in r.text


def test_discovery_names_the_languages(client):
    assert client.get("/.well-known/openid-configuration").json()["ui_locales_supported"] == ["en", "fr", "de"]


def test_locale_claim_with_profile(make_user):
    user = make_user()
    user.locale = "fr"
    assert user_claims(user, "openid profile")["locale"] == "fr"
    assert "locale" not in user_claims(user, "openid email")
    user.locale = None
    assert "locale" not in user_claims(user, "openid profile")
