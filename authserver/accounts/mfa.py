"""Second factors: TOTP enrolment and verification, single-use backup codes.

The TOTP seed is sealed with :class:`SecretBox` (associated data: the user id,
so a sealed seed cannot be moved to another account); backup codes are stored
as keyed hashes only. Acceptance is an atomic conditional ``UPDATE`` so two
concurrent requests cannot both spend the same TOTP step or backup code
(RFC 6238 §5.2).
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter, Label

from authserver.accounts.models import BackupCode, TotpFactor, User
from authserver.db import utcnow
from authserver.passkeys.models import Passkey
from authserver.security import totp
from authserver.security.crypto import SecretBox

BACKUP_CODES = 10


def _aad(user_id: str) -> bytes:
    return f"totp:{user_id}".encode()


def confirmed_factor(db: Session, user_id: str) -> TotpFactor | None:
    factor = db.get(TotpFactor, user_id)
    return factor if factor is not None and factor.confirmed_at is not None else None


#: whether a user has a second factor (a confirmed TOTP factor or a passkey), as a column
#: of a query of users (correlated with its ``User``): loading the user answers it too,
#: and :func:`remember_mfa` keeps the answer. The one definition of a second factor.
USER_HAS_MFA: Label[bool] = or_(
    exists().where(TotpFactor.user_id == User.id, TotpFactor.confirmed_at.is_not(None)),
    exists().where(Passkey.user_id == User.id)).label("has_mfa")
_USER_ID: BindParameter[str] = bindparam("user_id")
#: the same question alone, built once (a statement built per call costs more than its
#: round trip: docs/performance.md); no row, so ``None``, for an unknown user
HAS_MFA = select(USER_HAS_MFA).where(User.id == _USER_ID)
#: ``Session.info`` key of :func:`has_mfa`'s answers, per user, for this session's request
_HAS_MFA = "has_mfa"


def has_mfa(db: Session, user_id: str) -> bool:
    """The user has a second factor: a confirmed TOTP factor or a passkey.

    Asked once per request (the session is one request's, ``oauth/bridge.py``): the
    login and consent POSTs ask it on the page and again in the authorization pipeline.
    Whatever adds or removes a factor calls :func:`forget_mfa`, so a request that
    changed them reads them anew."""
    known: dict[str, bool] = db.info.setdefault(_HAS_MFA, {})
    if user_id not in known:
        known[user_id] = bool(db.scalar(HAS_MFA, {"user_id": user_id}))
    return known[user_id]


def remember_mfa(db: Session, user_id: str, answer: bool) -> None:
    """Keep ``answer``, read with the user's row by :data:`USER_HAS_MFA`, as this request's
    :func:`has_mfa` of ``user_id`` (one statement less on every page that loads the user
    and then asks: the login POST, the consent page and its POST)."""
    db.info.setdefault(_HAS_MFA, {})[user_id] = bool(answer)


def forget_mfa(db: Session, user_id: str) -> None:
    """A factor of the user's was added, confirmed or removed in this session: the next
    :func:`has_mfa` asks the database again (its statement names ORM columns, so the
    session flushes the change first)."""
    db.info.get(_HAS_MFA, {}).pop(user_id, None)


def start_enrolment(db: Session, box: SecretBox, user_id: str) -> str:
    """Create (or replace) an unconfirmed TOTP factor; return its base32 secret.

    Raises ``ValueError`` when a confirmed factor already exists.
    """
    factor = db.get(TotpFactor, user_id)
    if factor is not None and factor.confirmed_at is not None:
        raise ValueError("a confirmed factor exists")
    secret = totp.new_secret()
    sealed = box.encrypt(secret.encode(), _aad(user_id))
    if factor is None:
        db.add(TotpFactor(user_id=user_id, secret_encrypted=sealed, last_used_step=0))
    else:
        factor.secret_encrypted = sealed
        factor.last_used_step = 0
    db.flush()
    return secret


def pending_secret(db: Session, box: SecretBox, user_id: str) -> str | None:
    """The secret of an unconfirmed factor, to show again while enrolling."""
    factor = db.get(TotpFactor, user_id)
    if factor is None or factor.confirmed_at is not None:
        return None
    return box.decrypt(factor.secret_encrypted, _aad(user_id)).decode()


def confirm_enrolment(db: Session, box: SecretBox, user_id: str, code: str) -> list[str] | None:
    """Activate the pending factor with a first valid code; return fresh backup codes
    (shown once, stored hashed) or None when the code is wrong."""
    factor = db.get(TotpFactor, user_id)
    if factor is None or factor.confirmed_at is not None:
        return None
    secret = box.decrypt(factor.secret_encrypted, _aad(user_id)).decode()
    step = totp.verify(secret, code, None)
    if step is None:
        return None
    factor.confirmed_at = utcnow()
    factor.last_used_step = step
    forget_mfa(db, user_id)
    return new_backup_codes(db, box, user_id)


def new_backup_codes(db: Session, box: SecretBox, user_id: str) -> list[str]:
    """Replace the user's backup codes; the plaintext is returned once and never stored."""
    db.execute(delete(BackupCode).where(BackupCode.user_id == user_id))
    codes = totp.generate_backup_codes(BACKUP_CODES)
    db.add_all(BackupCode(user_id=user_id, code_hash=box.keyed_hash(totp.normalize_backup_code(c)))
               for c in codes)
    db.flush()
    return codes


def unused_backup_codes(db: Session, user_id: str) -> int:
    return db.scalar(select(func.count()).select_from(BackupCode).where(
        BackupCode.user_id == user_id, BackupCode.used_at.is_(None))) or 0


def verify(db: Session, box: SecretBox, user_id: str, code: str) -> str | None:
    """Spend a TOTP code or a backup code; return ``"totp"``, ``"backup"`` or None.

    A TOTP code is accepted only for a step above ``last_used_step`` and a
    backup code only while ``used_at`` is empty, each claimed by one
    conditional UPDATE.
    """
    code = (code or "").strip()
    if not code or len(code) > 64:
        return None
    factor = confirmed_factor(db, user_id)
    if factor is None:
        return None
    digits = code.replace(" ", "")
    if digits.isdigit() and len(digits) == totp.DIGITS:
        secret = box.decrypt(factor.secret_encrypted, _aad(user_id)).decode()
        step = totp.verify(secret, digits, factor.last_used_step or None)
        if step is None:
            return None
        claimed = db.execute(
            update(TotpFactor)
            .where(TotpFactor.user_id == user_id, TotpFactor.last_used_step < step)
            .values(last_used_step=step)
            .execution_options(synchronize_session=False)
        )
        db.expire(factor)
        return "totp" if claimed.rowcount == 1 else None  # type: ignore[attr-defined]
    code_hash = box.keyed_hash(totp.normalize_backup_code(code))
    claimed = db.execute(
        update(BackupCode)
        .where(BackupCode.user_id == user_id, BackupCode.code_hash == code_hash, BackupCode.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return "backup" if claimed.rowcount == 1 else None  # type: ignore[attr-defined]


def disable(db: Session, user_id: str) -> None:
    db.execute(delete(BackupCode).where(BackupCode.user_id == user_id))
    db.execute(delete(TotpFactor).where(TotpFactor.user_id == user_id))
    forget_mfa(db, user_id)
