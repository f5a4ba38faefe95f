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
    # The device this browser is for its user, set when the sign-in completes.
    device_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("devices.id", ondelete="SET NULL"), index=True
    )
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class Device(Base):
    """A device the user is signed in on: a browser (its sessions, one after the other
    as the user signs in again there) or an application that used the password grant,
    plus the refresh-token families issued to it (``refresh_tokens.device_id``).

    Active while not ended and while a browser session or a refresh token of it is
    still live (``sessions.devices.active``); ``MAX_DEVICES_PER_USER`` counts these.
    """

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    # Counted and evicted per user, under the user's row lock.
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Shown to the user: "Firefox on Linux", or the application's name.
    name: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The last sign-in on it; refreshes and page views are read from their own rows.
    last_used_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None]
    # "device_limit": signed out because the user signed in on another device.
    ended_reason: Mapped[str | None] = mapped_column(sa.String(40))
    # The new device whose sign-in ended this one.
    ended_by: Mapped[str | None] = mapped_column(sa.ForeignKey("devices.id", ondelete="SET NULL"))
