"""``bridge.call``: one transaction per request, committed when the work returns (even
an error response), rolled back when it raises; work that touched no table commits
nothing, but what it asked to run on commit still runs."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa

from authserver.audit.models import AuditEvent
from authserver.audit.service import record
from authserver.db import on_commit
from authserver.oauth import bridge


def events(ctx, marker: str) -> int:
    with ctx.sessions() as db:
        return int(db.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                             .where(AuditEvent.user_id == marker)) or 0)


def test_what_the_work_writes_is_committed(ctx):
    marker = str(uuid.uuid4())
    asyncio.run(bridge.call(ctx, lambda: record(bridge.current_db.get(), "key_rotated", user_id=marker)))
    assert events(ctx, marker) == 1


def test_work_that_raises_commits_nothing(ctx):
    marker = str(uuid.uuid4())

    def work() -> None:
        record(bridge.current_db.get(), "key_rotated", user_id=marker)
        bridge.current_db.get().flush()
        raise RuntimeError("after the write")

    with pytest.raises(RuntimeError):
        asyncio.run(bridge.call(ctx, work))
    assert events(ctx, marker) == 0


def test_work_that_touched_no_table_still_runs_its_on_commit_callbacks(ctx):
    ran: list[str] = []

    def work() -> str:
        session = bridge.current_db.get()
        on_commit(session, lambda: ran.append("committed"))
        assert not session.in_transaction()
        return "done"

    assert asyncio.run(bridge.call(ctx, work)) == "done"
    assert ran == ["committed"]
