"""Key pages rendered in every language: a translated page keeps no English text of the
English page but data (names, codes, addresses). An unmarked text in a template shows here."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from authserver import i18n
from tests.account_flows import csrf, enrol, login
from tests.flows import auth_params, form_value, pkce

TRANSLATED = [code for code in i18n.LOCALES if code != i18n.DEFAULT]


@pytest.fixture
def backend() -> str:
    """The words of a page do not depend on the database: SQLite only (the time of the suite)."""
    return "sqlite"

#: words that are the same in every language: data, names, the brand, the language names
SAME = {"alice", "alice@example.com", "Alice Example", "Test App", "authserver", "testclient", "Code", "E-mail",
        "Name", "admin", "Client", "Clients", "Options", "Secret", "Application", "Detail", "client_id",
        "Client Test App", "pwd", "pwd + otp", "IP", "Sessions", "Passkeys", *i18n.NAMES.values()}


class Texts(HTMLParser):
    """The words a person reads or hears: text nodes and the labels of attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "code", "svg"):
            self._skip += 1
        for name, value in attrs:
            if name in ("aria-label", "title", "placeholder", "alt") and value:
                self.found.append(value.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "code", "svg"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if text and not self._skip:
            self.found.append(text)


def texts(html: str) -> set[str]:
    parser = Texts()
    parser.feed(html)
    # punctuation, digits, addresses and times are not words to translate
    # audit details (key=value), ids, protocol words (client_secret_basic) and URLs are data
    return {t for t in parser.found if re.search(r"[A-Za-z]{2}", t) and not re.fullmatch(r"[\d.:/ ·,()-]+", t)
            and "=" not in t and not re.fullmatch(r"[0-9a-f-]{6,}", t) and not re.fullmatch(r"\S*(_|://)\S*", t)}


def pages(client, ctx, make_user, make_client):
    """``(name, fetch)`` of the key pages; each fetch can run again (the language is the
    client's ``Accept-Language``, which survives clearing its cookies)."""
    user = make_user(roles=["admin"])
    client_id, _ = make_client()
    _secret, codes = enrol(ctx, user.id)

    def signed_in():
        client.cookies.clear()
        login(client)
        page = client.get("/login/mfa")
        client.post("/login/mfa", data={"csrf_token": form_value(page.text, "csrf_token"), "rid": "",
                                        "code": codes.pop()})

    def consent():
        signed_in()
        _verifier, challenge = pkce()
        r = client.get("/authorize", params=auth_params(client_id, challenge))
        return client.get(r.headers["location"])

    def account():
        signed_in()
        client.post("/account/password", data={"csrf_token": csrf(client), "current_password": "wrong",
                                                "new_password": "x", "confirm_password": "x"})
        return client.get("/account?m=bad_password")

    def mfa():
        client.cookies.clear()
        login(client)
        page = client.get("/login/mfa")
        return client.post("/login/mfa", data={"csrf_token": form_value(page.text, "csrf_token"), "rid": "",
                                               "code": "not a code"})

    make_user(username="carol")

    def enrolment():
        client.cookies.clear()
        login(client, username="carol")
        client.post("/account/mfa/enrol", data={"csrf_token": csrf(client)})
        return client.get("/account/mfa/enrol?error=1")

    def signup_code():
        client.cookies.clear()
        page = client.get("/signup")
        client.post("/signup", data={"csrf_token": form_value(page.text, "csrf_token"), "username": "dora",
                                     "email": "dora@example.com", "password": "a long and unusual passphrase"})
        page = client.get("/signup/verify")
        return client.post("/signup/verify", data={"csrf_token": form_value(page.text, "csrf_token"),
                                                   "code": "00000000"})

    def admin_user():
        signed_in()
        return client.get(f"/admin/users/{user.id}")

    def admin_client():
        signed_in()
        return client.get(f"/admin/clients/{client_id}")

    def sign_out():
        client.cookies.clear()
        login(client, username="carol")
        return client.get("/logout")

    return [
        ("login with an error", lambda: client.post("/login", data={
            "csrf_token": form_value(client.get("/login").text, "csrf_token"), "username": "alice",
            "password": "wrong"})),
        ("sign-up with an error", lambda: client.post("/signup", data={
            "csrf_token": form_value(client.get("/signup").text, "csrf_token"), "username": "bob",
            "email": "bob@example.com", "password": "password"})),
        ("password reset", lambda: client.get("/password/reset")),
        ("consent", consent),
        ("account", account),
        ("second factor with an error", mfa),
        ("forged form", lambda: client.post("/login", data={"csrf_token": "x"})),
        ("not found", lambda: client.get("/nowhere", headers={"Accept": "text/html"})),
        ("setting up two-step verification", enrolment),
        ("sign-up code with an error", signup_code),
        ("password changed", lambda: client.get("/password/reset/done")),
        ("sign out?", sign_out),
        ("admin console: a user", admin_user),
        ("admin console: a client", admin_client),
    ]


@pytest.mark.parametrize("locale", TRANSLATED)
def test_key_pages_have_no_english_left(client, ctx, make_user, make_client, locale):
    for name, fetch in pages(client, ctx, make_user, make_client):
        client.headers["Accept-Language"] = "en"
        english = fetch()
        client.headers["Accept-Language"] = locale
        page = fetch()
        assert page.status_code == english.status_code, name
        assert f'<html lang="{locale}">' in page.text and '<html lang="en">' in english.text, name
        left = (texts(english.text) & texts(page.text)) - SAME
        assert not left, f"{name} in {locale}: English left {sorted(left)}"
