"""Device authorizations (RFC 8628): one row per device authorization request.

The device code and the user code are stored only as keyed hashes. The row is the
whole state of the grant, so any node answers the device's polls and the user's
browser alike: ``pending`` until the user approves or denies on the verification
page, then ``approved`` (with who and how they signed in) or ``denied``, and
``used`` once the device got its tokens.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from authserver.db import Base, utcnow

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
USED = "used"


class DeviceAuthorization(Base):
    __tablename__ = "device_authorizations"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    # Polled by device_code_hash (unique index); entered by user_code_hash (unique index).
    device_code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    client_id: Mapped[str] = mapped_column(sa.ForeignKey("clients.client_id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(10), default=PENDING)
    # Seconds the device must wait between polls; grows by 5 on each slow_down (§3.5).
    poll_interval: Mapped[int] = mapped_column(default=5)
    last_polled_at: Mapped[float | None] = mapped_column(sa.Float)
    # Who approved, and how they had signed in (the ID token's auth_time, amr, acr, sid).
    user_id: Mapped[str | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[int | None] = mapped_column(sa.BigInteger)
    amr: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    acr: Mapped[str | None] = mapped_column(sa.String(100))
    sid: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    decided_at: Mapped[dt.datetime | None]
    used_at: Mapped[dt.datetime | None]
