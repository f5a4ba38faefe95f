"""The outbox of back-channel logout (OIDC Back-Channel Logout 1.0): one row per logout
token to deliver, written in the transaction that ends the session or the user, and
delivered by the maintenance worker off the request path."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from authserver.db import Base, utcnow

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


class LogoutDelivery(Base):
    __tablename__ = "logout_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The relying party; its backchannel_logout_uri is read at delivery time.
    client_id: Mapped[str] = mapped_column(sa.ForeignKey("clients.client_id", ondelete="CASCADE"), index=True)
    # What the logout token names (§2.4: sub and/or sid); no foreign key: a deleted
    # user's relying parties are still told.
    sub: Mapped[str | None] = mapped_column(sa.String(64))
    sid: Mapped[str | None] = mapped_column(sa.String(64))
    # The same jti on every attempt: one logout event, however often it is tried.
    jti: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(10), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    # Due rows are claimed by moving this forward (a lease); claimed FOR UPDATE SKIP LOCKED.
    next_attempt_at: Mapped[dt.datetime] = mapped_column(index=True, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[dt.datetime | None]
