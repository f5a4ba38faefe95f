"""Refresh-token families, code replay handling, revoked access tokens and cutoffs.

JWT access tokens are self-contained; revoking one records its ``jti`` in
``revoked_tokens``, and a user's or client's "not valid before" instant in
``token_cutoffs``, in the caller's transaction: the change is durable when the
request answers. Introspection and userinfo read them through
``tokens.cache`` (Redis, or each process), which bounds when every node sees
them: at once with Redis, within 1 s without.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from authserver.accounts.models import User
from authserver.db import utcnow
from authserver.maintenance import state
from authserver.tokens.cache import TokenState
from authserver.tokens.models import AuthorizationCode, RefreshToken, RevokedToken, TokenCutoff

log = structlog.get_logger("authserver.tokens")

REFRESH_TOKENS: sa.Table = RefreshToken.__table__  # type: ignore[assignment]
USERS: sa.Table = User.__table__  # type: ignore[assignment]
# The refresh grant's two statements, built once with their values as parameters: the
# statement's cache key is then computed from a constant (docs/performance.md).
CLAIM_REFRESH_TOKEN = (
    update(REFRESH_TOKENS)
    .where(
        REFRESH_TOKENS.c.token_hash == sa.bindparam("hash"),
        REFRESH_TOKENS.c.client_id == sa.bindparam("client"),
        REFRESH_TOKENS.c.rotated_at.is_(None),
        REFRESH_TOKENS.c.revoked_at.is_(None),
        REFRESH_TOKENS.c.expires_at > sa.bindparam("now"),
        REFRESH_TOKENS.c.family_expires_at > sa.bindparam("now"),
        # the user exists and is not disabled (disabling revokes the families as well)
        sa.exists().where(USERS.c.id == REFRESH_TOKENS.c.user_id, USERS.c.disabled.is_(False)),
    )
    .values(rotated_at=sa.bindparam("now"))
    # what the grant reads of the claimed token, no more: every column returned costs a
    # column description and a value to convert, on every rotation
    .returning(*(REFRESH_TOKENS.c[name] for name in (
        "id", "rotated_at", "family_id", "family_expires_at", "client_id", "user_id", "scope",
        "auth_time", "amr", "acr", "sid", "device_id", "dpop_jkt")))
)
# inline: no implicit ``RETURNING id``, which nothing reads
INSERT_REFRESH_TOKEN = sa.insert(REFRESH_TOKENS).inline()
# The code grant's two statements, built once the same way.
CODES: sa.Table = AuthorizationCode.__table__  # type: ignore[assignment]
CLAIM_CODE = (
    update(CODES)
    .where(
        CODES.c.code_hash == sa.bindparam("hash"),
        CODES.c.client_id == sa.bindparam("client"),
        CODES.c.used_at.is_(None),
        CODES.c.expires_at > sa.bindparam("now"),
        sa.exists().where(USERS.c.id == CODES.c.user_id, USERS.c.disabled.is_(False)),
    )
    .values(used_at=sa.bindparam("now"))
    .returning(*CODES.c)
)
RECORD_CODE_ISSUE = (
    update(CODES)
    .where(CODES.c.id == sa.bindparam("code_id"))
    .values(family_id=sa.bindparam("family"), access_token_jti=sa.bindparam("jti"),
            access_token_expires_at=sa.bindparam("access_expires"))
)

CLOCK_SKEW = 60
"""A cutoff is kept this long after the last token it can affect has expired."""


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _insert(db: Session, model: type[RevokedToken] | type[TokenCutoff]) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_*`` (Postgres and SQLite alike)."""
    if db.get_bind().dialect.name == "postgresql":
        return pg_insert(model)
    return sqlite_insert(model)


def revoke_access_token(db: Session, cache: TokenState, jti: str, exp: int | float) -> None:
    """Record an access token as revoked until ``exp`` (RFC 7009 §2); no-op once expired."""
    exp = int(exp)
    if exp <= time.time():
        return
    insert = _insert(db, RevokedToken).values(
        jti=jti, expires_at=dt.datetime.fromtimestamp(exp, dt.UTC), revoked_at=utcnow())
    db.execute(insert.on_conflict_do_nothing(index_elements=["jti"]))
    state.bump(db, state.REVOCATIONS)
    cache.note_revoked(db, jti, exp)


def _cut_off(db: Session, cache: TokenState, kind: str, subject_id: str) -> int:
    # iat is whole seconds: everything issued up to the end of this second is caught
    # (the issuer lifts a later token's iat to the cutoff, see tokens.cache).
    not_before = int(time.time()) + 1
    expires_at = dt.datetime.fromtimestamp(not_before + cache.lifetime + CLOCK_SKEW, dt.UTC)
    table = TokenCutoff.__table__
    insert = _insert(db, TokenCutoff).values(subject_kind=kind, subject_id=subject_id,
                                       not_before=not_before, expires_at=expires_at)
    later = {  # a cutoff only ever moves forward
        name: sa.case((insert.excluded[name] > table.c[name], insert.excluded[name]), else_=table.c[name])
        for name in ("not_before", "expires_at")
    }
    db.execute(insert.on_conflict_do_update(index_elements=["subject_kind", "subject_id"], set_=later))
    row = db.execute(select(TokenCutoff.not_before, TokenCutoff.expires_at).where(
        TokenCutoff.subject_kind == kind, TokenCutoff.subject_id == subject_id)).one()
    state.bump(db, state.REVOCATIONS)
    cache.note_cutoff(db, (kind, subject_id), int(row.not_before), int(_aware(row.expires_at).timestamp()))
    return int(row.not_before)


def invalidate_subject(db: Session, cache: TokenState, user_id: str) -> int:
    """End everything already issued to a user: every access token issued until now
    becomes inactive (a cutoff) and every refresh-token family is revoked.

    For a disabled or deleted user, a password change or reset, "sign out
    everywhere". Returns how many refresh tokens were still usable.
    """
    _cut_off(db, cache, "user", user_id)
    return revoke_user_families(db, cache, user_id)


def invalidate_client(db: Session, cache: TokenState, client_id: str) -> None:
    """Every access token issued to a client until now becomes inactive (its secret
    was rotated, or it is being deleted). Its refresh tokens stay bound to the client
    and need its new secret; a deleted client's go with it."""
    _cut_off(db, cache, "client", client_id)


def revoke_family(db: Session, cache: TokenState, family_id: str) -> int:
    """Revoke every refresh token of a family and the live access tokens it issued.

    Returns how many refresh tokens were still usable.
    """
    now = utcnow()
    result = db.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    rows = list(db.execute(
        select(RefreshToken.access_token_jti, RefreshToken.access_token_expires_at).where(
            RefreshToken.family_id == family_id,
            RefreshToken.access_token_jti.is_not(None),
            RefreshToken.access_token_expires_at > now,
        )
    ))
    for jti, expires_at in rows:
        if jti and expires_at:
            revoke_access_token(db, cache, jti, _aware(expires_at).timestamp())
    return result.rowcount or 0  # type: ignore[attr-defined]


def revoke_user_families(db: Session, cache: TokenState, user_id: str,
                         client_id: str | None = None) -> int:
    """Revoke every live refresh-token family of a user (at one client, if given),
    e.g. on password change or reset, consent withdrawal or account disable."""
    query = select(RefreshToken.family_id).where(
        RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
    if client_id is not None:
        query = query.where(RefreshToken.client_id == client_id)
    families = list(db.scalars(query.distinct()))
    return sum(revoke_family(db, cache, family_id) for family_id in families)


def revoke_user_code_tokens(db: Session, cache: TokenState, user_id: str) -> int:
    """Revoke the live access tokens a user got from codes that issued no refresh
    token (those of a family go with :func:`revoke_family`), and delete the user's codes
    not yet exchanged (an account enabled again within their minute cannot redeem
    them); returns how many access tokens were revoked."""
    now = utcnow()
    db.execute(delete(AuthorizationCode).where(AuthorizationCode.user_id == user_id,
                                               AuthorizationCode.used_at.is_(None)))
    rows = db.execute(
        select(AuthorizationCode.access_token_jti, AuthorizationCode.access_token_expires_at).where(
            AuthorizationCode.user_id == user_id,
            AuthorizationCode.family_id.is_(None),
            AuthorizationCode.access_token_jti.is_not(None),
            AuthorizationCode.access_token_expires_at > now,
        )
    ).all()
    for jti, expires_at in rows:
        if jti and expires_at:
            revoke_access_token(db, cache, jti, _aware(expires_at).timestamp())
    return len(rows)


def revoke_code_issue(db: Session, cache: TokenState, code: AuthorizationCode) -> None:
    """A replayed code: revoke what it issued (RFC 6749 §4.1.2, RFC 9700 §4.5)."""
    if code.family_id:
        revoke_family(db, cache, code.family_id)
    if code.access_token_jti and code.access_token_expires_at:
        revoke_access_token(db, cache, code.access_token_jti, _aware(code.access_token_expires_at).timestamp())


def claim_code(db: Session, code_hash: str, client_id: str) -> sa.Row[Any] | None:
    """Atomically mark an unexpired, unused code of ``client_id`` whose user exists and is
    not disabled as used and return it, in one statement (``UPDATE … RETURNING``); None
    when it was not claimable (a disabled user's code stays unused: the exchange fails
    as for an unknown code). Of two concurrent claims one gets the row; the other waits
    for its commit and then finds nothing to claim.

    A Core statement returning a plain row (its columns by name), as
    :func:`claim_live_refresh_token`."""
    return db.execute(CLAIM_CODE, {"hash": code_hash, "client": client_id, "now": utcnow()}).one_or_none()


def record_code_issue(db: Session, code_id: int, *, family_id: str | None, jti: str,
                      access_expires: dt.datetime) -> None:
    """Remember on a claimed code what its exchange issued (the refresh-token family, if
    any, and the access token), so a replay of the code can revoke them
    (:func:`revoke_code_issue`)."""
    db.execute(RECORD_CODE_ISSUE, {"code_id": code_id, "family": family_id, "jti": jti,
                                   "access_expires": access_expires})


def claim_live_refresh_token(db: Session, token_hash: str, client_id: str) -> sa.Row[Any] | None:
    """Look up and claim a refresh token in one statement (``UPDATE … RETURNING``): the
    live, unexpired token of ``client_id`` with this hash, whose user exists and is not
    disabled, is marked rotated and returned; None when there is no such token (unknown,
    another client's, expired, revoked, already rotated, or its user disabled:
    :func:`find_refresh_token` tells a reuse from the rest). Of two concurrent claims
    one gets the row; the other waits for its commit and then finds nothing to claim.

    A Core statement returning a plain row (its columns by name, typed as in the model):
    the claimed token is read, never changed through the ORM, and the refresh grant is a
    hot path where the ORM's identity map and unit of work cost more than the statement
    (docs/performance.md)."""
    return db.execute(CLAIM_REFRESH_TOKEN, {"hash": token_hash, "client": client_id, "now": utcnow()}).one_or_none()


def store_refresh_token(db: Session, **values: Any) -> None:
    """Insert a new refresh token row now, as one Core ``INSERT`` (the columns of
    :class:`RefreshToken`; ``created_at`` and ``amr`` take the model's defaults)."""
    db.execute(INSERT_REFRESH_TOKEN, values)


def find_refresh_token(db: Session, token_hash: str) -> RefreshToken | None:
    return db.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash))


def release_refresh_token(db: Session, row: sa.Row[Any]) -> None:
    """Undo :func:`claim_live_refresh_token` in the same transaction, when the request
    it was claimed for fails afterwards (a wider scope, a DPoP proof missing): the token
    stays usable, as if it had not been presented. Only this claim is undone: not a
    later one (another ``rotated_at``), nor a token revoked meanwhile."""
    db.execute(
        update(REFRESH_TOKENS)
        .where(REFRESH_TOKENS.c.id == row.id, REFRESH_TOKENS.c.rotated_at == row.rotated_at,
               REFRESH_TOKENS.c.revoked_at.is_(None))
        .values(rotated_at=None)
    )
