"""Admin-managed IP/CIDR deny list."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from authserver.db import Base, utcnow


class IpDenyEntry(Base):
    __tablename__ = "ip_deny_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    cidr: Mapped[str] = mapped_column(sa.String(50), unique=True)
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
