"""One-time codes mailed for sign-up verification and password reset.

An 8-digit code (26.6 bits) is stored only as a keyed hash, lives 15 minutes
and allows 5 guesses, so a guesser's chance per mailed code is 5 in 10**8.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from authserver.accounts.models import EmailCode
from authserver.db import utcnow
from authserver.security.crypto import SecretBox

CODE_DIGITS = 8
CODE_TTL = 15 * 60
MAX_ATTEMPTS = 5


def _hash(box: SecretBox, purpose: str, code: str) -> str:
    return box.keyed_hash(f"email-code:{purpose}:{code}")


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def issue(db: Session, box: SecretBox, purpose: str, email: str, *, user_id: str | None = None,
          pending: dict[str, Any] | None = None, deliverable: bool = True) -> tuple[EmailCode, str]:
    """Store a new code; return the row and the plaintext to mail.

    ``deliverable=False`` stores a row whose code nobody knows, so an unknown
    address follows the same path as a known one.
    """
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    stored = code if deliverable else secrets.token_hex(16)
    row = EmailCode(purpose=purpose, email=email, user_id=user_id, code_hash=_hash(box, purpose, stored),
                    pending=pending, attempts=0, expires_at=utcnow() + dt.timedelta(seconds=CODE_TTL))
    db.add(row)
    db.flush()
    return row, code


def check(db: Session, box: SecretBox, row_id: object, purpose: str, code: str) -> tuple[str, EmailCode | None]:
    """Spend one attempt: ``("ok", row)`` (now used), ``("wrong", row)`` or ``("expired", None)``."""
    if not isinstance(row_id, int):
        return "expired", None
    row = db.get(EmailCode, row_id, with_for_update=True)
    if (row is None or row.purpose != purpose or row.used_at is not None
            or _aware(row.expires_at) <= utcnow() or row.attempts >= MAX_ATTEMPTS):
        return "expired", None
    row.attempts += 1
    code = "".join((code or "").split())
    valid = code.isdigit() and len(code) == CODE_DIGITS
    if not (valid and secrets.compare_digest(_hash(box, purpose, code), row.code_hash)):
        return ("expired", None) if row.attempts >= MAX_ATTEMPTS else ("wrong", row)
    claimed = db.execute(update(EmailCode).where(EmailCode.id == row.id, EmailCode.used_at.is_(None))
                         .values(used_at=utcnow()).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return "expired", None
    return "ok", row
