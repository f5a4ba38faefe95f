"""Signing keys, shared by every node through the database.

The private key (PKCS#8 PEM) is sealed with AES-256-GCM under a key derived
from ``SECRET_KEY`` (``security.crypto.SecretBox``; the ``kid`` is the
associated data, so a sealed key cannot be moved to another row).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from authserver.db import Base, utcnow


class StoredKey(Base):
    __tablename__ = "signing_keys"

    #: RFC 7638 thumbprint of the public key
    kid: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(sa.String(10), default="RS256", server_default="RS256")
    sealed_private_key: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    activates_at: Mapped[dt.datetime]
