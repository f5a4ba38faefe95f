"""Mail: the dev outbox, SMTP with STARTTLS and login, failures logged not raised."""

from __future__ import annotations

import smtplib
import stat

from authserver.accounts import mail
from authserver.settings import Secret, Settings


class FakeSMTP:
    instances: list[FakeSMTP] = []

    def __init__(self, host, port, timeout=None, **kw):
        self.host, self.port, self.calls = host, port, []
        FakeSMTP.instances.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def ehlo(self):
        self.calls.append("ehlo")

    def has_extn(self, name):
        return name == "starttls"

    def starttls(self, context=None):
        self.calls.append("starttls")

    def login(self, user, password):
        self.calls.append(("login", user, password))

    def send_message(self, message):
        self.calls.append(("send", message["To"], message.get_content()))


def test_outbox_file_is_private(tmp_path):
    settings = Settings(data_dir=tmp_path)
    mail.send(settings, "bob@example.com", "Subject", "Your code is 12345678\n")
    [path] = (tmp_path / "outbox").glob("*.eml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "12345678" in path.read_text()


def test_smtp_with_starttls_and_login(monkeypatch, tmp_path):
    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    FakeSMTP.instances.clear()
    settings = Settings(data_dir=tmp_path, smtp_url=Secret("smtp://user%40x:p%3Ass@mail.example.com:2525"))
    mail.send(settings, "bob@example.com", "Subject", "body\n")
    [server] = FakeSMTP.instances
    assert (server.host, server.port) == ("mail.example.com", 2525)
    assert server.calls[:3] == ["ehlo", "starttls", "ehlo"]
    assert ("login", "user@x", "p:ss") in server.calls
    assert server.calls[-1] == ("send", "bob@example.com", "body\n")
    assert not (tmp_path / "outbox").exists()


def test_deliver_logs_failure(monkeypatch, tmp_path):
    def refuse(*a, **kw):
        raise ConnectionRefusedError

    monkeypatch.setattr(smtplib, "SMTP", refuse)
    settings = Settings(data_dir=tmp_path, smtp_url=Secret("smtp://mail.example.com"))
    assert mail.deliver(settings, "bob@example.com", "Subject", "code 12345678") is False
