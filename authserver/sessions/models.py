"""Server-side browser sessions. The cookie holds a random id; only its hash is stored."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from authserver.db import Base, utcnow


class BrowserSession(Base):
    __tablename__ = "browser_sessions"

    # keyed hash of the cookie value
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    # public session id: the ID token ``sid`` (OIDC Front-Channel/Back-Channel Logout)
    sid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    csrf_secret: Mapped[str] = mapped_column(sa.String(64))
    auth_time: Mapped[int | None] = mapped_column(sa.BigInteger)
    amr: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    acr: Mapped[str | None] = mapped_column(sa.String(100))
    # Interaction state between pages (pending authorization request, MFA step).
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    user_agent: Mapped[str | None] = mapped_column(sa.String(300))
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
