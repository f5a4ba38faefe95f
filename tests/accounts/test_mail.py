"""Mail: the dev outbox, SMTP with STARTTLS and login, failures logged not raised."""

from __future__ import annotations

import email
import email.policy
import smtplib
import socket
import stat

import pytest

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
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        self.calls.append(("send", parsed["To"], parsed.get_content()))


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


def test_a_multilingual_letter_reads_back_as_written(tmp_path):
    """Text first, then HTML (RFC 2046 §5.1.4); a non-ASCII subject and bodies survive."""
    settings = Settings(data_dir=tmp_path)
    mail.send(settings, "juergen@example.de", "Neue Anmeldung – größer", "Grüße, code 12345678\n",
              html="<p>Grüße</p>\n")
    [path] = (tmp_path / "outbox").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "Neue Anmeldung – größer"
    assert message["To"] == "juergen@example.de" and message["From"] == settings.mail_from
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message.get_body(("plain",)).get_content() == "Grüße, code 12345678\n"
    assert message.get_body(("html",)).get_content() == "<p>Grüße</p>\n"


@pytest.mark.parametrize("field", ["to", "subject"])
@pytest.mark.parametrize("brk", ["\r\n", "\n", "\x0c", "\x0b", "\u2028"])
def test_a_header_with_a_line_break_is_refused(tmp_path, field, brk):
    """Header injection: a line break of any kind in a header value would start a header
    of its own (or break the header block)."""
    settings = Settings(data_dir=tmp_path)
    values = {"to": "bob@example.com", "subject": "Subject"}
    values[field] += brk + "Bcc: eve@example.com"
    with pytest.raises(ValueError):
        mail.send(settings, values["to"], values["subject"], "body\n")
    assert mail.deliver(settings, values["to"], values["subject"], "body\n") is False
    assert not (tmp_path / "outbox").exists()


def test_a_sender_name_beyond_ascii_encodes_the_name_only(tmp_path):
    settings = Settings(data_dir=tmp_path, mail_from="Bücherei Zürich <noreply@example.de>")
    mail.send(settings, "bob@example.com", "Subject", "body\n")
    [path] = (tmp_path / "outbox").glob("*.eml")
    raw = path.read_bytes()
    assert b"<noreply@example.de>" in raw  # the address readable to the receiving server
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["From"].addresses[0].addr_spec == "noreply@example.de"
    assert message["From"].addresses[0].display_name == "Bücherei Zürich"


class _Inbox:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


def test_an_address_beyond_ascii_goes_out_with_smtputf8(tmp_path):
    """RFC 6531: a real SMTP server that offers SMTPUTF8 gets the address as it is."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = _Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    try:
        settings = Settings(data_dir=tmp_path, smtp_url=Secret(f"smtp://127.0.0.1:{port}"))
        assert mail.deliver(settings, "jürgen@exämple.de", "Grüße", "Grüße\n", html="<p>Grüße</p>\n")
    finally:
        controller.stop()
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == ["jürgen@exämple.de"] and "SMTPUTF8" in envelope.mail_options
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["To"] == "jürgen@exämple.de" and message["Subject"] == "Grüße"
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Grüße\n"  # SMTP: CRLF
