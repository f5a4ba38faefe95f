"""structlog set-up: JSON (or console) lines carrying the request id.

Never pass a token, password, code or secret to a logger; e-mail addresses go
through :func:`mask_email`. As a last line of defence :func:`_redact` blanks
values of keys that name a secret.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO, cast

import structlog

SECRET_KEYS = frozenset({
    "password", "client_secret", "access_token", "refresh_token", "id_token", "code",
    "code_verifier", "token", "secret", "totp", "otp", "authorization", "cookie",
})


def mask_email(value: str | None) -> str | None:
    """``alice@example.com`` -> ``a***@example.com``."""
    if not value:
        return value
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}" if domain else f"{value[:1]}***"


def _redact(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if key.lower() in SECRET_KEYS:
            event[key] = "[redacted]"
    return event


class _StdErr:
    """``sys.stderr`` as it is at each write, not at configuration: a host that swaps it
    (pytest's capture, run several times in one process by mutmut) never leaves the
    logger writing to a closed stream."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(log_format: str = "json", level: str = "info", stream: Any = None) -> None:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
        structlog.processors.format_exc_info,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream or cast(TextIO, _StdErr())),
        cache_logger_on_first_use=False,
    )
    # uvicorn's own access log would print query strings: ours logs the path only
    logging.getLogger("uvicorn.access").disabled = True
