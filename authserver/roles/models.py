"""Roles, the permissions they carry, and the clients that hold them.

Users hold roles through ``user_roles`` (:class:`authserver.accounts.models.UserRole`),
whose ``role`` column references :class:`Role` by name.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from authserver.db import Base, utcnow


class Role(Base):
    """A named set of ``resource:action`` permissions (docs/roles.md)."""

    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    description: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    # seeded by the migration: editable, never deleted
    built_in: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    grants: Mapped[list[RolePermission]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="RolePermission.permission")

    @property
    def permissions(self) -> list[str]:
        return sorted(g.permission for g in self.grants)


class RolePermission(Base):
    __tablename__ = "role_permissions"

    role: Mapped[str] = mapped_column(
        sa.ForeignKey("roles.name", ondelete="CASCADE", onupdate="CASCADE"), primary_key=True)
    permission: Mapped[str] = mapped_column(sa.String(200), primary_key=True)


class ClientRole(Base):
    """A role held by a client itself (machine access: ``client_credentials``)."""

    __tablename__ = "client_roles"

    client_id: Mapped[str] = mapped_column(
        sa.ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(
        sa.ForeignKey("roles.name", ondelete="CASCADE", onupdate="CASCADE"), primary_key=True, index=True)
