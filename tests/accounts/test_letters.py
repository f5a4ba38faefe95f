"""Mails through a real SMTP server (aiosmtpd, started here on a free port): each letter is
triggered over HTTP and arrives as multipart/alternative, text and HTML, in the brand and in
its reader's language."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from starlette.testclient import TestClient

from authserver.accounts.models import User
from authserver.db import transaction
from authserver.settings import Secret
from tests.account_flows import csrf, login
from tests.conftest import ISSUER, PASSWORD
from tests.flows import form_value


class Inbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def take(self) -> list[EmailMessage]:
        with self.lock:
            taken, self.messages = self.messages, []
        return taken


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def settings_overrides(inbox: tuple[Inbox, int]) -> dict[str, Any]:
    return {"smtp_url": Secret(f"smtp://127.0.0.1:{inbox[1]}"), "mail_from": "Example ID <id@example.com>",
            "brand_name": "Example ID", "brand_primary_color": "#6b21a8", "support_url": "https://help.example.com/"}


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and the HTML part of a multipart/alternative letter."""
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def one(inbox: Inbox, to: str) -> tuple[str, str, str]:
    """The only letter received, to ``to``: its subject, text and HTML."""
    [message] = inbox.take()
    assert message["To"] == to and message["From"] == "Example ID <id@example.com>"
    text, html = parts(message)
    assert html.lstrip().startswith("<!doctype html>") and "<html lang=" in html
    # in the brand: its name in both parts, its colour and support link in the HTML
    assert text.startswith("Example ID\r\n") and "https://help.example.com/" in text
    assert "#6b21a8" in html and ">Example ID</td>" in html and 'href="https://help.example.com/"' in html
    return str(message["Subject"]), text, html


def set_locale(ctx: Any, user_id: str, locale: str | None) -> None:
    with transaction(ctx.sessions) as db:
        db.get(User, user_id).locale = locale


def test_signup_code_in_the_language_of_the_page(client, inbox):
    box, _port = inbox
    client.headers["Accept-Language"] = "fr-CH, fr;q=0.9, en;q=0.5"
    page = client.get("/signup")
    assert '<html lang="fr">' in page.text
    r = client.post("/signup", data={"csrf_token": form_value(page.text, "csrf_token"), "rid": "",
                                     "username": "zoe", "email": "zoe@example.com",
                                     "password": "a long and unusual passphrase"})
    assert r.status_code == 303
    subject, text, html = one(box, "zoe@example.com")
    code = re.search(r"\b(\d{8})\b", text).group(1)
    assert subject == "Votre code de vérification"
    assert "Votre code de vérification est" in text and "Il expire dans 15 minutes." in text
    assert code in html and "Votre code de vérification est" in html
    assert "Your verification code" not in text + html
    # the account keeps the language of its sign-up
    page = client.get("/signup/verify")
    r = client.post("/signup/verify", data={"csrf_token": form_value(page.text, "csrf_token"), "rid": "",
                                            "code": code})
    assert r.headers["location"] == "/account"
    with transaction(client.app.state.context.sessions) as db:
        assert db.query(User).filter_by(username="zoe").one().locale == "fr"
    assert box.take() == []  # the first device of a new account is no news


def test_reset_code_in_the_owners_language_not_the_askers(client, ctx, inbox, make_user):
    box, _port = inbox
    user = make_user()
    set_locale(ctx, user.id, "de")
    client.headers["Accept-Language"] = "en"
    page = client.get("/password/reset")
    client.post("/password/reset", data={"csrf_token": form_value(page.text, "csrf_token"),
                                         "email": "alice@example.com"})
    subject, text, html = one(box, "alice@example.com")
    assert subject == "Passwort zurücksetzen"
    assert re.search(r"Ihr Code zum Zurücksetzen des Passworts lautet:\s+\d{8}", text)
    assert "Ihr Passwort bleibt unverändert" in html and "<title>Passwort zurücksetzen</title>" in html


def test_new_device_notice(client, ctx, app, inbox, make_user):
    box, _port = inbox
    make_user(username="a.b", email="ab@example.com")
    client.headers.update({"Accept-Language": "de", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"})
    assert login(client, username="a.b").status_code == 303
    assert box.take() == []  # the account's first device
    login(client, username="a.b")  # the same browser again: not a new device
    assert box.take() == []
    statements: list[str] = []
    sa.event.listen(ctx.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with TestClient(app, base_url=ISSUER, follow_redirects=False) as other:
        other.headers.update({"Accept-Language": "fr",
                              "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"})
        assert login(other, username="a.b").status_code == 303
    # the login's lookup answered "another device?" (devices.USER_HAS_DEVICE): no query of its own
    assert statements and not [s for s in statements if s.lstrip().startswith("SELECT devices.id")]
    subject, text, html = one(box, "ab@example.com")
    # in the owner's language (German, from their earlier sign-ins), not the new browser's
    assert subject == "Neue Anmeldung bei Ihrem Konto"
    assert "Gerät: Safari unter iOS" in text and "IP-Adresse: testclient" in text
    assert "Bei Ihrem Konto a.b hat sich" in text and "Bei Ihrem Konto a.b hat sich" in html
    assert f'href="{ISSUER}/account"' in html and f"{ISSUER}/account" in text


def test_new_device_notice_after_the_second_factor(client, ctx, app, inbox, make_user):
    """The sign-in completes on the MFA page, which asks itself whether the account has
    another device (the login's lookup answered that only for the login POST)."""
    from tests.account_flows import enrol, totp_code

    box, _port = inbox
    user = make_user(username="c.d", email="cd@example.com")
    secret, _codes = enrol(ctx, user.id)
    box.take()  # the letter of the enrolment

    def sign_in(browser: Any, step: int) -> None:
        assert login(browser, username="c.d").headers["location"] == "/account"
        assert browser.get("/account").headers["location"] == "/login/mfa"
        page = browser.get("/login/mfa")
        r = browser.post("/login/mfa", data={"csrf_token": form_value(page.text, "csrf_token"), "rid": "",
                                             "code": totp_code(secret, step)})
        assert r.headers["location"] == "/account"

    sign_in(client, 0)
    assert box.take() == []  # the account's first device
    with TestClient(app, base_url=ISSUER, follow_redirects=False) as other:
        sign_in(other, 1)
    subject, _text, _html = one(box, "cd@example.com")
    assert subject == "New sign-in to your account"


def test_mfa_turned_on_and_off(client, ctx, inbox, make_user):
    box, _port = inbox
    user = make_user()
    set_locale(ctx, user.id, "fr")
    client.headers["Accept-Language"] = "fr"
    login(client)
    client.post("/account/mfa/enrol", data={"csrf_token": csrf(client)})
    page = client.get("/account/mfa/enrol")
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
    r = client.post("/account/mfa/confirm", data={"csrf_token": csrf(client), "code": pyotp.TOTP(secret).now()})
    assert r.headers["location"] == "/account/mfa/backup-codes"
    subject, text, html = one(box, "alice@example.com")
    assert subject == "La validation en deux étapes est activée"
    assert "activée pour votre compte alice." in text and "activée pour votre compte alice." in html
    codes = re.findall(r"<code>([0-9a-z]{4}-[0-9a-z]{4})</code>", client.get("/account/mfa/backup-codes").text)
    r = client.post("/account/mfa/disable", data={"csrf_token": csrf(client), "code": codes[0]})
    assert r.headers["location"].startswith("/account?m=mfa_disabled")
    subject, text, _html = one(box, "alice@example.com")
    assert subject == "La validation en deux étapes est désactivée"
    assert "réactivez la validation en deux étapes" in text


def test_mfa_reset_by_an_administrator(client, ctx, inbox, make_user, make_client):
    """Through the admin API: the owner hears of it in their language, once; nothing to reset, no mail."""
    from authserver.clients.service import get_client
    from authserver.oauth.vocabulary import ADMIN_SCOPE
    from authserver.roles.service import set_client_roles
    from tests.account_flows import enrol

    box, _port = inbox
    user = make_user()
    set_locale(ctx, user.id, "de")
    enrol(ctx, user.id)
    cid, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope=ADMIN_SCOPE)
    with transaction(ctx.sessions) as db:
        set_client_roles(db, get_client(db, cid), ["admin"], actor="test")
    token = client.post("/token", data={"grant_type": "client_credentials", "scope": ADMIN_SCOPE},
                        auth=(cid, secret)).json()["access_token"]
    admin = {"Authorization": f"Bearer {token}"}
    r = client.delete(f"/admin/api/users/{user.id}/mfa", headers={**admin, "Accept-Language": "fr"})
    assert r.status_code == 200 and r.json()["mfa"] is False
    subject, text, _html = one(box, "alice@example.com")
    assert subject == "Die Bestätigung in zwei Schritten ist ausgeschaltet"
    assert "Ein Administrator hat die Bestätigung in zwei Schritten für Ihr Konto alice ausgeschaltet." in text
    assert client.delete(f"/admin/api/users/{user.id}/mfa", headers=admin).status_code == 200
    assert box.take() == []


def test_a_wrong_code_sends_nothing(client, ctx, inbox, make_user):
    box, _port = inbox
    make_user()
    login(client)
    client.post("/account/mfa/disable", data={"csrf_token": csrf(client), "code": "123456"})
    client.post("/account/password", data={"csrf_token": csrf(client), "current_password": PASSWORD + "x",
                                            "new_password": "another long passphrase",
                                            "confirm_password": "another long passphrase"})
    assert box.take() == []


def test_letters_escape_what_they_quote(settings):
    """Values in a letter are text: escaped in the HTML part, as they are in the text part."""
    from authserver.accounts import letters
    from authserver.i18n import Text

    letter = letters.compose(settings, "x@example.com", "de", "Reset your password",
                             [Text("Device: %(device)s", device="<b>evil</b> & co")], code="<i>1</i>")
    assert "Gerät: <b>evil</b> & co" in letter.text and "<i>1</i>" in letter.text
    assert "Gerät: &lt;b&gt;evil&lt;/b&gt; &amp; co" in letter.html and "&lt;i&gt;1&lt;/i&gt;" in letter.html
    assert "<b>evil" not in letter.html and "<i>1" not in letter.html
