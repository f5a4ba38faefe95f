"""Remembered consent per user and client (asked again only for new scopes)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authserver.audit import service as audit
from authserver.consents.models import Consent
from authserver.db import Window, window
from authserver.tokens.cache import TokenState
from authserver.tokens.service import revoke_user_families


def granted_scopes(db: Session, user_id: str, client_id: str) -> set[str]:
    row = db.scalar(select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id))
    return set(row.scope.split()) if row else set()


def grant(db: Session, user_id: str, client_id: str, scopes: list[str], ip: str | None = None) -> None:
    """Remember ``scopes`` (merged with earlier ones). Safe when two requests grant at
    once: the row is locked, and a concurrent first insert is retried as a merge."""
    query = select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id).with_for_update()
    row = db.scalar(query)
    if row is None:
        try:
            with db.begin_nested():
                db.add(Consent(user_id=user_id, client_id=client_id, scope=" ".join(scopes)))
        except IntegrityError:
            row = db.scalar(query)
    if row is not None:
        row.scope = " ".join(dict.fromkeys([*row.scope.split(), *scopes]))
    audit.record(db, "consent_granted", user_id=user_id, client_id=client_id, ip=ip, scope=" ".join(scopes))


def revoke(db: Session, user_id: str, client_id: str, ip: str | None = None) -> bool:
    row = db.scalar(select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id))
    if row is None:
        return False
    db.delete(row)
    audit.record(db, "consent_revoked", user_id=user_id, client_id=client_id, ip=ip)
    return True


def for_user(db: Session, user_id: str) -> list[Consent]:
    return list(db.scalars(select(Consent).where(Consent.user_id == user_id).order_by(Consent.created_at)))


def get(db: Session, consent_id: int) -> Consent | None:
    return db.get(Consent, consent_id)


def search(db: Session, *, user_id: str | None = None, client_id: str | None = None, offset: int = 0,
           limit: int = 50) -> Window[Consent]:
    """Remembered consents oldest first, for one user and/or one client."""
    query = select(Consent).order_by(Consent.created_at, Consent.id)
    if user_id is not None:
        query = query.where(Consent.user_id == user_id)
    if client_id is not None:
        query = query.where(Consent.client_id == client_id)
    return window(db, query, offset=offset, limit=limit)


def withdraw(db: Session, revoked: TokenState, consent: Consent, *, actor: str) -> int:
    """Forget the consent and revoke the user's refresh-token families at that client
    with the access tokens they issued (RFC 7009 §2.1), as the account page does;
    the next authorization asks again. Returns how many refresh tokens were revoked."""
    user_id, client_id = consent.user_id, consent.client_id
    db.delete(consent)
    count = revoke_user_families(db, revoked, user_id, client_id)
    audit.record(db, "consent_revoked", user_id=user_id, client_id=client_id, actor=actor,
                 refresh_tokens=count)
    return count
