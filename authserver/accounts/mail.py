"""Outgoing mail: the transport (what the letters say is in :mod:`authserver.accounts.letters`).

With ``AUTHSERVER_SMTP_URL`` set (``smtp://[user:pass@]host[:port]`` with
STARTTLS when the server offers it, or ``smtps://...`` for implicit TLS) mail
goes through :mod:`smtplib`. Without it (development) every message is written
as an ``.eml`` file, mode 0600, to ``AUTHSERVER_DATA_DIR/outbox``. The
message body is never logged; the recipient only masked. Pages send mail
after the response (:func:`deliver` as a background task), so the answer
time does not show whether a message went out.
"""

from __future__ import annotations

import os
import secrets
import smtplib
import ssl
import time
from email.charset import QP, Charset
from email.errors import MessageError
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from pathlib import Path
from urllib.parse import unquote, urlsplit

import structlog

from authserver.logging import mask_email
from authserver.settings import Settings

log = structlog.get_logger("authserver.mail")
SMTP_TIMEOUT = 10
#: UTF-8 bodies as quoted-printable: ASCII text stays readable in the ``.eml`` file
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP


def outbox(settings: Settings) -> Path:
    return Path(settings.data_dir) / "outbox"


def send(settings: Settings, to: str, subject: str, body: str, *, html: str | None = None) -> None:
    """Send (or, without SMTP, store) one message: plain text, or with ``html`` a
    ``multipart/alternative`` of text and HTML (RFC 2046 §5.1.4: the text first, so a
    reader without HTML shows it). Raises ``OSError``/``smtplib.SMTPException``, and
    ``ValueError`` for a header value with a line break (header injection)."""
    message = build(settings.mail_from, to, subject, body, html=html)
    if settings.smtp_url is not None and settings.smtp_url.get():
        _smtp(settings.smtp_url.get(), message)
        transport = "smtp"
    else:
        _file(outbox(settings), message)
        transport = "outbox"
    log.info("mail_sent", to=mask_email(to), subject=subject, transport=transport)


def build(sender: str, to: str, subject: str, body: str, *, html: str | None = None) -> Message:
    """The message. Between ASCII addresses it is built with :mod:`email.mime` (the
    ``compat32`` API): a third of the CPU of ``EmailMessage`` and its header registry for
    an equivalent message (docs/performance.md), a non-ASCII subject an RFC 2047 encoded
    word. A non-ASCII address or sender name takes ``EmailMessage``, which encodes only
    the name and lets ``smtplib`` use SMTPUTF8 (RFC 6531) for the address.

    Raises ``ValueError`` when a header value holds a line break of any kind
    (``str.splitlines``'s, as ``EmailMessage`` refuses): no value can add a header."""
    if any(value.splitlines() not in ([], [value]) for value in (sender, to, subject)):
        raise ValueError("a mail header value holds a line break")
    if not (sender.isascii() and to.isascii()):
        return _international(sender, to, subject, body, html)
    message = _text(body, "plain")
    if html is not None:
        message, text = MIMEMultipart("alternative"), message
        message.attach(text)
        message.attach(_text(html, "html"))
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")  # type: ignore[assignment]
    return message


def _international(sender: str, to: str, subject: str, body: str, html: str | None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def _text(content: str, subtype: str) -> Message:
    part = MIMENonMultipart("text", subtype)
    part.set_payload(content, _UTF8)
    return part


def deliver(settings: Settings, to: str, subject: str, body: str, *, html: str | None = None) -> bool:
    """:func:`send`, logging a failure instead of raising (runs after the response)."""
    try:
        send(settings, to, subject, body, html=html)
        return True
    except (OSError, smtplib.SMTPException, ValueError, MessageError) as exc:
        log.error("mail_failed", to=mask_email(to), subject=subject, error=type(exc).__name__)
        return False


def _smtp(url: str, message: Message) -> None:
    parts = urlsplit(url)
    context = ssl.create_default_context()
    host = parts.hostname or "localhost"
    server: smtplib.SMTP
    if parts.scheme == "smtps":
        server = smtplib.SMTP_SSL(host, parts.port or 465, timeout=SMTP_TIMEOUT, context=context)
    elif parts.scheme == "smtp":
        server = smtplib.SMTP(host, parts.port or 587, timeout=SMTP_TIMEOUT)
    else:
        raise ValueError("AUTHSERVER_SMTP_URL must start with smtp:// or smtps://")
    with server:
        if parts.scheme == "smtp":
            server.ehlo()
            if server.has_extn("starttls"):
                server.starttls(context=context)
                server.ehlo()
        if parts.username:
            server.login(unquote(parts.username), unquote(parts.password or ""))
        server.send_message(message)


def _file(directory: Path, message: Message) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"{time.time_ns()}-{secrets.token_hex(4)}.eml"
    fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(message.as_bytes())
