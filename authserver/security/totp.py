"""Time-based one-time passwords (RFC 6238) and single-use backup codes.

TOTP uses the authenticator-app defaults (SHA-1, 6 digits, 30 s steps) with a
160-bit secret (RFC 4226 §4 recommends 160 bits). Replay is prevented by the
caller storing the step returned by :func:`verify` and passing it back as
``last_used_step`` (RFC 6238 §5.2: "the verifier MUST NOT accept the second
attempt of the OTP after the successful validation has been issued").
"""

from __future__ import annotations

import hmac
import io
import re
import secrets
import time

import pyotp
import segno

DIGITS = 6
STEP_SECONDS = 30
VALID_WINDOW = 1
"""Steps accepted either side of now (RFC 6238 §5.2 network delay / clock drift)."""

BACKUP_CODE_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
"""Crockford's base32 alphabet: 32 symbols, no i, l, o or u, so 8 symbols carry 40 bits."""

_CODE = re.compile(rf"[0-9]{{{DIGITS}}}")
_WHITESPACE = re.compile(r"\s+")


def new_secret() -> str:
    """A random base32 TOTP secret of 160 bits (32 characters, no padding)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account_name: str, issuer_name: str) -> str:
    """The ``otpauth://totp/...`` URI authenticator apps read from the QR code."""
    return _totp(secret).provisioning_uri(name=account_name, issuer_name=issuer_name)


def qr_svg(uri: str, *, title: str = "QR code to scan with an authenticator app") -> str:
    """An inline ``<svg>`` QR code for ``uri``, made offline; safe to render with ``|safe``.

    The output contains no script and no external reference; ``title`` gives
    screen readers a name for the image.
    """
    qr = segno.make(uri, error="m", micro=False)
    buffer = io.BytesIO()
    qr.save(
        buffer, kind="svg", xmldecl=False, svgns=True, nl=False, scale=4, border=4,
        dark="#000", light="#fff", title=title, svgclass="qr-code", encoding="utf-8",
    )
    return buffer.getvalue().decode("utf-8")


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def verify(secret: str, code: str, last_used_step: int | None, *, at: float | None = None) -> int | None:
    """Check a TOTP ``code``; return its time step when accepted, else None.

    Accepts a 6-digit code (spaces ignored) for the current step or one step
    either side (RFC 6238 §5.2) whose step is greater than ``last_used_step``,
    so a code, or an older one, cannot be used twice. ``at`` (Unix time)
    defaults to now.
    """
    code = _WHITESPACE.sub("", code or "")
    if not _CODE.fullmatch(code):
        return None
    totp = _totp(secret)
    now_step = totp.timecode(time.time() if at is None else at)
    floor = -1 if last_used_step is None else last_used_step
    matched: int | None = None
    for step in range(now_step - VALID_WINDOW, now_step + VALID_WINDOW + 1):
        # Compare every candidate so timing does not reveal which step matched.
        if hmac.compare_digest(totp.generate_otp(step), code) and step > floor and matched is None:
            matched = step
    return matched


def generate_backup_codes(n: int = 10) -> list[str]:
    """``n`` distinct single-use codes like ``7k2m-x9qd`` (8 symbols, 40 bits each).

    Store only ``keyed_hash(normalize_backup_code(code))``.
    """
    codes: list[str] = []
    while len(codes) < n:
        raw = "".join(secrets.choice(BACKUP_CODE_ALPHABET) for _ in range(8))
        code = f"{raw[:4]}-{raw[4:]}"
        if code not in codes:
            codes.append(code)
    return codes


_LOOKALIKES = str.maketrans({"i": "1", "l": "1", "o": "0"})


def normalize_backup_code(s: str) -> str:
    """Lowercase, drop spaces and dashes, read ``i``/``l`` as ``1`` and ``o`` as ``0``.

    Typed variants of one code give the same string, so its hash is stable.
    """
    return re.sub(r"[\s\-]+", "", s).lower().translate(_LOOKALIKES)
