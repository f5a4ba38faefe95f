"""Security events, append-only."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from authserver.db import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    event: Mapped[str] = mapped_column(sa.String(60), index=True)
    user_id: Mapped[str | None] = mapped_column(sa.String(36))
    client_id: Mapped[str | None] = mapped_column(sa.String(64))
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    detail: Mapped[dict[str, object]] = mapped_column(sa.JSON, default=dict)
