"""Users, their roles, and their MFA factors."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from authserver.db import Base, utcnow


def new_user_id() -> str:
    return str(uuid.uuid4())


class User(Base):
    """A person who can log in. ``id`` is the OIDC ``sub``: random, never reused."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_user_id)
    username: Mapped[str] = mapped_column(sa.String(150), unique=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    email_verified: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    name: Mapped[str | None] = mapped_column(sa.String(200))
    #: the language the user last used (a code of ``authserver.i18n.LOCALES``); none until then
    locale: Mapped[str | None] = mapped_column(sa.String(16))
    disabled: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    roles: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def role_names(self) -> list[str]:
        return sorted(r.role for r in self.roles)


class UserRole(Base):
    """A role (``roles.name``, see :mod:`authserver.roles`) held by a user."""

    __tablename__ = "user_roles"

    user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(
        sa.ForeignKey("roles.name", ondelete="CASCADE", onupdate="CASCADE"), primary_key=True, index=True
    )
    user: Mapped[User] = relationship(back_populates="roles")


class TotpFactor(Base):
    """A TOTP secret, sealed with :class:`SecretBox`; active once ``confirmed_at`` is set."""

    __tablename__ = "totp_factors"

    user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret_encrypted: Mapped[str] = mapped_column(sa.String(255))
    confirmed_at: Mapped[dt.datetime | None]
    # Highest accepted time step: a code is never accepted twice (RFC 6238 §5.2).
    last_used_step: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BackupCode(Base):
    __tablename__ = "backup_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    used_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EmailCode(Base):
    """A one-time code mailed for sign-up verification or password reset."""

    __tablename__ = "email_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(sa.String(20))  # "signup" | "reset"
    email: Mapped[str] = mapped_column(sa.String(320), index=True)
    user_id: Mapped[str | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    # Sign-up keeps the pending account here until the code is confirmed.
    pending: Mapped[dict[str, object] | None] = mapped_column(sa.JSON)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
