"""Remembered consent, one row per user and client."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from authserver.db import Base, utcnow


class Consent(Base):
    __tablename__ = "consents"
    __table_args__ = (sa.UniqueConstraint("user_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(sa.ForeignKey("clients.client_id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
