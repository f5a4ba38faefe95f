"""Passkeys: WebAuthn public-key credentials registered by users (W3C WebAuthn Level 2 §6.1)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from authserver.db import Base, utcnow


class Passkey(Base):
    """One credential: its id (base64url, as the browser reports it), its COSE public key
    and the last signature counter seen (§6.1.1, clone detection)."""

    __tablename__ = "passkeys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[str] = mapped_column(sa.String(1400), unique=True)
    public_key: Mapped[bytes] = mapped_column(sa.LargeBinary)
    sign_count: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    transports: Mapped[list[str]] = mapped_column(default=list)
    name: Mapped[str] = mapped_column(sa.String(64))
    aaguid: Mapped[str] = mapped_column(sa.String(36), default="", server_default="")
    #: the credential may be synced to other devices (the BE flag, WebAuthn Level 3 §6.1)
    backup_eligible: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
