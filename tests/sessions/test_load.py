"""``sessions.service.load``: a stored session comes with its user and whether the user has
a second factor, in one statement, so a signed-in page asks the database once for all
three; an expired, unknown or forged cookie finds nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from authserver.accounts import mfa as factors
from authserver.accounts import service as accounts
from authserver.db import KEEP_LOADED, transaction, utcnow
from authserver.sessions import service as sessions
from authserver.sessions.models import BrowserSession
from tests.account_flows import enrol


def _signed_in(ctx: Any, user_id: str) -> str:
    with transaction(ctx.sessions) as db:
        _, cookie = sessions.log_in(db, ctx.box, ctx.settings, None, user_id=user_id, amr=["pwd"], acr=None,
                                    auth_time=0, ip=None, user_agent=None, device_id=None)
    return cookie


def _counting(engine: Any) -> list[str]:
    seen: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.startswith(("BEGIN", "COMMIT")):
            seen.append(statement)

    return seen


def test_the_session_its_user_and_the_mfa_answer_in_one_statement(ctx: Any, make_user: Any) -> None:
    plain, totp_user = make_user("plain"), make_user("totp")
    enrol(ctx, totp_user.id)
    seen = _counting(ctx.engine)
    for user, expected in ((plain, False), (totp_user, True)):
        cookie = _signed_in(ctx, user.id)
        with transaction(ctx.sessions) as db:
            db.info[KEEP_LOADED] = []  # as a request's session (oauth/bridge.py)
            before = len(seen)
            session = sessions.load(db, ctx.box, cookie)
            assert session is not None and session.user_id == user.id
            loaded = accounts.get_user(db, user.id, with_roles=False)
            assert loaded is not None and loaded.username == user.username
            assert factors.has_mfa(db, user.id) is expected
            assert len(seen[before:]) == 1, seen[before:]


def test_an_expired_unknown_or_forged_cookie_finds_nothing(ctx: Any, make_user: Any) -> None:
    user = make_user()
    cookie = _signed_in(ctx, user.id)
    with transaction(ctx.sessions) as db:
        assert sessions.load(db, ctx.box, cookie + "x") is None
        assert sessions.load(db, ctx.box, "A" * 43) is None
        assert sessions.load(db, ctx.box, cookie) is not None
    with transaction(ctx.sessions) as db:
        row = db.get(BrowserSession, ctx.box.keyed_hash(cookie))
        row.expires_at = utcnow() - dt.timedelta(seconds=1)
    with transaction(ctx.sessions) as db:
        assert sessions.load(db, ctx.box, cookie) is None
