"""Users: creation, lookup and password authentication with lockout.

Authentication answers the same way, after the same Argon2 work, whether the
account is unknown, disabled, locked or the password is wrong
(DESIGN.md "Security invariants"; NIST SP 800-63B §5.2.2).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, lazyload

from authserver.accounts.errors import AccountError
from authserver.accounts.models import TotpFactor, User, UserRole
from authserver.audit import service as audit
from authserver.logging import mask_email
from authserver.roles.errors import RoleError
from authserver.roles.service import check_roles

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
ROLE = re.compile(r"^[A-Za-z0-9:._-]{1,100}$")


def normalize_login(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().lower()


def mask_login(value: str) -> str:
    """What the logs may say about a login identifier."""
    return (mask_email(value) or "***") if "@" in value else f"{value[:2]}***"


def create_user(
    db: Session,
    hasher: Any,
    *,
    username: str,
    email: str,
    password: str,
    roles: list[str] | None = None,
    name: str | None = None,
    email_verified: bool = True,
) -> User:
    """Validate, apply the password policy, hash and store a user.

    Raises :class:`AccountError` (or ``WeakPasswordError``) with a message fit to show.
    """
    from authserver.security.passwords import validate_password

    username = normalize_login(username)
    email = normalize_login(email)
    if not USERNAME.match(username):
        raise AccountError("username must be 2-63 characters: letters, digits, '.', '_' or '-'")
    if not EMAIL.match(email) or len(email) > 320:
        raise AccountError("e-mail address is not valid")
    try:
        roles = check_roles(db, roles or [])
    except RoleError as exc:
        raise AccountError(str(exc)) from None
    password = validate_password(password, username=username, email=email)
    taken = db.scalar(select(User.id).where(or_(User.username == username, User.email == email)))
    if taken:
        raise AccountError("a user with this username or e-mail already exists")
    user = User(
        username=username,
        email=email,
        email_verified=email_verified,
        password_hash=hasher.hash(password),
        name=name,
        roles=[UserRole(role=r) for r in roles],
    )
    db.add(user)
    db.flush()
    audit.record(db, "user_created", user_id=user.id, username=mask_login(username))
    return user


def find_by_login(db: Session, login: str) -> User | None:
    login = normalize_login(login)
    if not login or len(login) > 320:
        return None
    # stored normalised (lowercase), so the unique indexes serve this lookup
    column = User.email if "@" in login else User.username
    return db.scalar(select(User).where(column == login))


def get_user(db: Session, user_id: str | None, *, with_roles: bool = True) -> User | None:
    """The user by id. ``with_roles=False`` (token hot paths) defers the roles
    query until ``role_names`` is read inside the same session."""
    if not user_id:
        return None
    return db.get(User, user_id, options=None if with_roles else [lazyload(User.roles)])


def list_users(db: Session) -> list[User]:
    return list(db.scalars(select(User).order_by(User.created_at, User.username)))


def has_mfa(db: Session, user_id: str) -> bool:
    factor = db.get(TotpFactor, user_id)
    return factor is not None and factor.confirmed_at is not None


def lockout_key(user: User | None, login: str) -> str:
    return f"user:{user.id}" if user is not None else f"login:{login}"


@dataclass(frozen=True)
class AuthResult:
    """``user`` is set only on success; ``locked_for`` > 0 when a lock is in force;
    ``mfa`` says the user has a confirmed second factor still to pass."""

    user: User | None
    locked_for: int = 0
    mfa: bool = False


def authenticate(db: Session, ctx: Any, login: str, password: str, ip: str, *,
                 channel: str = "login") -> AuthResult:
    """Check a password with lockout; same work and answer for every failure."""
    from authserver.security.passwords import normalize

    password = normalize(password)
    login = normalize_login(login)
    user = find_by_login(db, login) if login else None
    # one counter per account whichever identifier is typed; unknown names get their own
    key = lockout_key(user, login)
    locked_for = ctx.lockout.check(key, ip)
    if user is None or locked_for:
        ctx.passwords.verify_dummy(password)
        ok = False
    else:
        ok = ctx.passwords.verify(user.password_hash, password)
    if locked_for:
        audit.record(db, "login_failed", user_id=user.id if user else None, ip=ip,
                     reason="locked", login=mask_login(login), channel=channel)
        return AuthResult(None, locked_for)
    if not ok or user is None or user.disabled:
        lock = ctx.lockout.register_failure(key, ip)
        audit.record(db, "login_failed", user_id=user.id if user else None, ip=ip,
                     login=mask_login(login), channel=channel,
                     reason="disabled" if (ok and user is not None) else "bad_credentials")
        if lock:
            audit.record(db, "account_locked", user_id=user.id if user else None, ip=ip,
                         login=mask_login(login), seconds=lock)
        return AuthResult(None, lock)
    mfa = has_mfa(db, user.id)
    if not mfa:
        # with a second factor pending, a right password must not wipe the failures
        # that wrong TOTP codes added (or password + 4 guesses could repeat forever)
        ctx.lockout.register_success(key)
    if ctx.passwords.needs_rehash(user.password_hash):
        user.password_hash = ctx.passwords.hash(password)
    return AuthResult(user, mfa=mfa)
