"""Small named counters shared by every process through the database.

A change a process caches (revocations, signing keys) bumps its counter in the
same transaction; every process reads all counters with one cheap query at
most once a second and drops what changed. ``maintenance_at`` holds the Unix
time of the last periodic maintenance run.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from authserver.db import Base


class ClusterState(Base):
    __tablename__ = "cluster_state"

    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
