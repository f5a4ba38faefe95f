"""Users: creation, lookup and password authentication with lockout.

Authentication answers the same way, after the same Argon2 work, whether the
account is unknown, disabled, locked or the password is wrong
(no account enumeration: OWASP ASVS 2.2.1, NIST SP 800-63B §5.2.2;
docs/decisions.md "Lockout").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa
from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from authserver.accounts import mfa as factors
from authserver.accounts.errors import AccountError, UnknownSession, UnknownUser
from authserver.accounts.models import TotpFactor, User, UserRole
from authserver.audit import service as audit
from authserver.backchannel import service as backchannel
from authserver.db import Window, contains, utcnow, window
from authserver.i18n import LOCALES, N_
from authserver.logging import mask_email
from authserver.roles.errors import RoleError
from authserver.roles.service import check_roles
from authserver.security.passwords import PasswordHasher, validate_password
from authserver.security.throttle import Lockout
from authserver.sessions import devices
from authserver.sessions import service as sessions
from authserver.sessions.models import BrowserSession
from authserver.tokens.cache import TokenState
from authserver.tokens.service import invalidate_subject, revoke_user_code_tokens

if TYPE_CHECKING:
    from sqlalchemy.util.typing import TupleAny  # SQLAlchemy 2.1's name, for annotations only

    from authserver.context import Context

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class Unset:
    """The type of :data:`UNSET`: a field a ``PATCH`` leaves as it is (``None`` clears it)."""


UNSET: Final = Unset()


def normalize_login(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().lower()


def mask_login(value: str) -> str:
    """What the logs may say about a login identifier."""
    return (mask_email(value) or "***") if "@" in value else f"{value[:2]}***"


def create_user(
    db: Session,
    hasher: PasswordHasher,
    *,
    username: str,
    email: str,
    password: str,
    roles: list[str] | None = None,
    name: str | None = None,
    email_verified: bool = True,
    actor: str | None = None,
) -> User:
    """Validate, apply the password policy, hash and store a user; ``actor`` names the
    administrator in the ``user_created`` audit event.

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
    audit.record(db, "user_created", user_id=user.id, username=mask_login(username),
                 **({"actor": actor} if actor else {}))
    return user


def find_by_login(db: Session, login: str, *, with_roles: bool = True) -> User | None:
    """The user by username or e-mail; ``with_roles`` as in :func:`get_user`."""
    login = normalize_login(login)
    if not login or len(login) > 320:
        return None
    # stored normalised (lowercase), so the unique indexes serve this lookup
    by_email = "@" in login
    if not with_roles:
        return _user_and_mfa(db, USER_BY_EMAIL if by_email else USER_BY_USERNAME, login)
    return db.scalar(select(User).where((User.email if by_email else User.username) == login))


def _user_without_roles(where: sa.ColumnElement[bool], *also: sa.Label[bool]) -> sa.Select[*TupleAny]:
    """The user without roles, and :data:`factors.USER_HAS_MFA` (and ``also``) in the same
    statement."""
    return select(User, factors.USER_HAS_MFA).add_columns(*also).where(where).options(lazyload(User.roles))


#: built once (a statement built per call costs more than its round trip: docs/performance.md);
#: the login's two also read whether the user has a device yet (for the new-device letter)
USER_WITHOUT_ROLES = _user_without_roles(User.id == sa.bindparam("key"))
USER_BY_EMAIL = _user_without_roles(User.email == sa.bindparam("key"), devices.USER_HAS_DEVICE)
USER_BY_USERNAME = _user_without_roles(User.username == sa.bindparam("key"), devices.USER_HAS_DEVICE)


def _user_and_mfa(db: Session, statement: sa.Select[*TupleAny], key: str) -> User | None:
    """The user ``statement`` finds by ``key``; whether it has a second factor is kept for
    this request's :func:`factors.has_mfa`, and whether it has a device yet, when read,
    for :func:`devices.had_other_devices`."""
    row = db.execute(statement, {"key": key}).one_or_none()
    if row is None:
        return None
    user: User = row[0]
    has_mfa, *has_device = row[1:]
    factors.remember_mfa(db, user.id, has_mfa)
    if has_device:
        devices.remember_had_device(db, user.id, has_device[0])
    return user


def get_user(db: Session, user_id: str | None, *, with_roles: bool = True) -> User | None:
    """The user by id. ``with_roles=False`` (token hot paths) defers the roles
    query until ``role_names`` is read inside the same session."""
    if not user_id:
        return None
    if not with_roles:
        # a row this session holds already: Session.get, which answers from the identity
        # map (reloading an expired row); else the hot paths' statement, built once (with
        # options, Session.get made SQLAlchemy compute a cache key on every load:
        # docs/performance.md)
        if db.identity_map.get(db.identity_key(User, user_id)) is not None:
            return db.get(User, user_id, options=[lazyload(User.roles)])
        return _user_and_mfa(db, USER_WITHOUT_ROLES, user_id)
    user = db.get(User, user_id)
    if user is not None and "roles" in sa.inspect(user).unloaded:
        # loaded earlier in this session without them: load them now, while it is open
        # (a page may read them after the transaction, e.g. in its template)
        _ = user.roles
    return user


def list_users(db: Session) -> list[User]:
    return list(db.scalars(select(User).order_by(User.created_at, User.username)))


def require_user_id(db: Session, user_id: str) -> User:
    """The user by id (the OIDC ``sub``); raises :class:`UnknownUser` when there is none."""
    user = get_user(db, user_id) if len(user_id) <= 36 and "\x00" not in user_id else None
    if user is None:
        raise UnknownUser(f"no such user: {user_id}")
    return user


def update_user(db: Session, user: User, *, email: str | None = None, name: str | Unset | None = UNSET,
                email_verified: bool | None = None, actor: str) -> list[str]:
    """Change the e-mail address, the display name (``None`` clears it) or whether the
    address is verified; returns the names of the fields that changed (audited as
    ``user_updated``). An address set by an administrator counts as verified unless
    ``email_verified=False`` says otherwise. Raises :class:`AccountError`.
    """
    changed: dict[str, object] = {}
    if email is not None:
        email = normalize_login(email)
        if not EMAIL.match(email) or len(email) > 320:
            raise AccountError("e-mail address is not valid")
        if email != user.email:
            if db.scalar(select(User.id).where(User.email == email, User.id != user.id)):
                raise AccountError("another user has this e-mail address")
            changed["email"] = email
            changed["email_verified"] = True if email_verified is None else email_verified
    if email_verified is not None and email_verified != user.email_verified:
        changed["email_verified"] = email_verified
    if not isinstance(name, Unset):
        name = name.strip() if name is not None else None
        if name is not None and (len(name) > 200 or any(ord(c) < 32 for c in name)):
            raise AccountError("name must be one line of at most 200 characters")
        if (name or None) != user.name:
            changed["name"] = name or None
    for field_name, value in changed.items():
        setattr(user, field_name, value)
    if changed:
        db.flush()
        audit.record(db, "user_updated", user_id=user.id, actor=actor, fields=sorted(changed),
                     **({"email": mask_email(user.email)} if "email" in changed else {}))
    return sorted(changed)


def reset_mfa(db: Session, user: User, *, actor: str) -> bool:
    """Remove the user's second factors: TOTP, backup codes and passkeys (a lost phone or
    security key, after a support check); they log in with the password alone until they
    enrol again. False when there was nothing to remove."""
    from authserver.passkeys import service as passkeys

    keys = passkeys.for_user(db, user.id)
    if db.get(TotpFactor, user.id) is None and not keys:
        return False
    for key in keys:
        passkeys.remove(db, key, actor=actor)
    factors.disable(db, user.id)
    audit.record(db, "mfa_disabled", user_id=user.id, actor=actor, reason="reset_by_admin")
    return True


def end_session(db: Session, user: User, sid: str, *, actor: str) -> None:
    """Sign the user out of one browser session, named by its public ``sid``; raises
    :class:`UnknownSession` when the user has no such session."""
    row = db.scalar(select(BrowserSession).where(BrowserSession.user_id == user.id, BrowserSession.sid == sid))
    if row is None:
        raise UnknownSession(f"no such session: {sid}")
    sessions.end(db, row)
    db.flush()
    audit.record(db, "session_revoked", user_id=user.id, actor=actor, sid=sid)


def end_sessions(db: Session, user: User, *, actor: str) -> int:
    """Sign the user out of every browser session; returns how many ended."""
    count = sessions.end_all_for_user(db, user.id)
    audit.record(db, "session_revoked", user_id=user.id, actor=actor, sessions=count)
    return count


def search_users(db: Session, text: str = "", *, offset: int = 0, limit: int = 25) -> Window[User]:
    """Users whose username, e-mail or name contains ``text`` (any case), by username."""
    stmt = select(User).order_by(User.username)
    if text.strip():
        needle = text.strip()
        stmt = stmt.where(or_(contains(User.username, needle), contains(User.email, needle),
                              contains(sa.func.coalesce(User.name, ""), needle)))
    return window(db, stmt, offset=offset, limit=limit)


def require_user(db: Session, login: str) -> User:
    """The user by username or e-mail; raises :class:`AccountError` when there is none."""
    user = find_by_login(db, login)
    if user is None:
        raise AccountError(f"no such user: {login}")
    return user


@dataclass(frozen=True)
class EndedAccess:
    """What :func:`disable_user` or :func:`delete_user` took away."""

    sessions: int
    refresh_tokens: int


def _end_access(db: Session, revoked: TokenState, user_id: str) -> EndedAccess:
    """Log the user out everywhere and end every token they hold.

    Browser sessions are deleted (no page and no ``prompt=none`` request works
    any more); every access token already issued to the user becomes inactive
    (a cutoff, ``tokens.service.invalidate_subject``) and every refresh-token
    family is revoked; the ``jti``s of access tokens issued from a code without
    a refresh token are recorded too (RFC 7009 §2.1), and codes not yet exchanged
    are deleted (``tokens.service.revoke_user_code_tokens``).
    """
    backchannel.user_signed_out(db, user_id)  # before the rows it reads are revoked or deleted
    refresh_tokens = invalidate_subject(db, revoked, user_id)
    revoke_user_code_tokens(db, revoked, user_id)
    sessions = db.execute(delete(BrowserSession).where(BrowserSession.user_id == user_id))
    return EndedAccess(
        sessions=sessions.rowcount or 0,  # type: ignore[attr-defined]
        refresh_tokens=refresh_tokens,
    )


def disable_user(db: Session, revoked: TokenState, user: User, *, actor: str) -> EndedAccess | None:
    """Disable the account and end every session and token it holds.

    Returns what was ended, or None when the account was already disabled
    (nothing changes then). ``actor`` names who did it in the audit event.
    """
    if user.disabled:
        return None
    user.disabled = True
    ended = _end_access(db, revoked, user.id)
    audit.record(db, "user_disabled", user_id=user.id, actor=actor,
                 sessions=ended.sessions, refresh_tokens=ended.refresh_tokens)
    return ended


def enable_user(db: Session, user: User, *, actor: str) -> bool:
    """Let a disabled account log in again; False when it was not disabled.

    Sessions and tokens ended by :func:`disable_user` stay ended.
    """
    if not user.disabled:
        return False
    user.disabled = False
    audit.record(db, "user_enabled", user_id=user.id, actor=actor)
    return True


def delete_user(db: Session, revoked: TokenState, user: User, *, actor: str) -> EndedAccess:
    """Delete the account for good, first ending its sessions and tokens.

    Roles, factors, consents, codes and refresh tokens go with the row (foreign
    keys ``ON DELETE CASCADE``); the ``sub`` is never reused (OIDC Core §2).
    The audit trail keeps the user id.
    """
    ended = _end_access(db, revoked, user.id)
    user_id = user.id
    db.delete(user)
    db.flush()
    audit.record(db, "user_deleted", user_id=user_id, actor=actor, username=mask_login(user.username))
    return ended


def unlock_user(db: Session, lockout: Lockout, user: User, *, actor: str) -> None:
    """Clear the account's lockout counters (NIST SP 800-63B §5.2.2), e.g. after a
    support check; the per-address counters stay."""
    lockout.unlock(lockout_key(user, user.username))
    audit.record(db, "account_unlocked", user_id=user.id, actor=actor)


def remember_locale(user: User, locale: str) -> None:
    """Keep the language the user last used (their mails' language and the ``locale``
    claim, OIDC Core §5.1); written only when it changed."""
    if locale in LOCALES and user.locale != locale:
        user.locale = locale


def lockout_key(user: User | None, login: str) -> str:
    return f"user:{user.id}" if user is not None else f"login:{login}"


@dataclass(frozen=True)
class AuthResult:
    """``user`` is set only on success; ``locked_for`` > 0 when a lock is in force;
    ``mfa`` says the user has a confirmed second factor still to pass."""

    user: User | None
    locked_for: int = 0
    mfa: bool = False


def authenticate(db: Session, ctx: Context, login: str, password: str, ip: str, *,
                 channel: str = "login") -> AuthResult:
    """Check a password with lockout; same work and answer for every failure."""
    from authserver.security.passwords import normalize

    password = normalize(password)
    login = normalize_login(login)
    user = find_by_login(db, login, with_roles=False) if login else None
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
    mfa = factors.has_mfa(db, user.id)
    if not mfa:
        # with a second factor pending, a right password must not wipe the failures
        # that wrong TOTP codes added (or password + 4 guesses could repeat forever)
        ctx.lockout.register_success(key)
    if ctx.passwords.needs_rehash(user.password_hash):
        user.password_hash = ctx.passwords.hash(password)
    return AuthResult(user, mfa=mfa)


def set_password(db: Session, ctx: Context, user: User, password: str, *, ip: str | None = None,
                 keep_session: str | None = None, event: str = "password_changed",
                 unlock: bool = False, actor: str | None = None) -> None:
    """Give ``user`` a new password: the policy (NIST SP 800-63B §5.1.1.2), a new hash,
    every other browser session ended and the user's refresh-token families revoked
    with the access tokens they issued (RFC 6819 §5.2.2.4), then one audit ``event``.

    ``keep_session`` spares the session the change was made from; ``unlock`` clears the
    account lockout (a reset proves control of the mailbox); ``actor`` names an
    administrator who set it (the CLI's ``users set-password``). Raises ``WeakPasswordError``
    with the policy's own words and changes nothing then.
    """
    password = validate_password(password, username=user.username, email=user.email)
    user.password_hash = ctx.passwords.hash(password)
    user.password_changed_at = utcnow()
    ended = sessions.end_all_for_user(db, user.id, keep=keep_session)
    revoked = invalidate_subject(db, ctx.revoked, user.id)
    if unlock:
        ctx.lockout.unlock(lockout_key(user, ""))
    audit.record(db, event, user_id=user.id, ip=ip, sessions_ended=ended, refresh_tokens_revoked=revoked,
                 **({"actor": actor} if actor else {}))


@dataclass(frozen=True)
class SignupRequest:
    """A checked sign-up form: normalised identifiers and the password's hash (never
    the password). ``email_taken``: the address has an account, so no code is mailed
    but the page answers the same (no account enumeration: OWASP Authentication
    Cheat Sheet, "Authentication and Error Messages")."""

    username: str
    email: str
    password_hash: str
    email_taken: bool
    locale: str | None = None

    def pending(self) -> dict[str, str | None]:
        """What the e-mail code row keeps until the address is verified."""
        return {"username": self.username, "email": self.email, "password_hash": self.password_hash,
                "name": None, "locale": self.locale}


def start_signup(db: Session, ctx: Context, *, username: str, email: str, password: str,
                 locale: str | None = None) -> SignupRequest:
    """Check a sign-up form and hash its password. Raises :class:`AccountError` or
    ``WeakPasswordError`` with a sentence fit to show on the form."""
    username = normalize_login(username)
    email = normalize_login(email)
    if not USERNAME.match(username):
        raise AccountError(N_("Username must be 2-63 characters: letters, digits, '.', '_' or '-'."))
    if not EMAIL.match(email) or len(email) > 320:
        raise AccountError(N_("That e-mail address is not valid."))
    password = validate_password(password, username=username, email=email)
    if db.scalar(select(User.id).where(User.username == username)):
        raise AccountError(N_("That username is taken; choose another."))
    taken = db.scalar(select(User.id).where(User.email == email)) is not None
    return SignupRequest(username, email, ctx.passwords.hash(password), taken, locale)


def complete_signup(db: Session, pending: Mapping[str, Any], *, ip: str | None = None) -> User | None:
    """Create the verified user a sign-up's e-mail code was holding (see
    :meth:`SignupRequest.pending`); ``None`` when the username or address was
    registered meanwhile, the unique indexes deciding a race."""
    username, email = str(pending["username"]), str(pending["email"])
    if db.scalar(select(User.id).where(or_(User.username == username, User.email == email))):
        return None
    locale = pending.get("locale")
    user = User(username=username, email=email, email_verified=True,
                password_hash=str(pending["password_hash"]), name=pending.get("name"),
                locale=locale if locale in LOCALES else None)
    try:
        with db.begin_nested():
            db.add(user)
            db.flush()
    except IntegrityError:
        return None
    audit.record(db, "user_created", user_id=user.id, ip=ip, username=mask_login(username))
    audit.record(db, "signup_completed", user_id=user.id, ip=ip, email=mask_email(email))
    return user
