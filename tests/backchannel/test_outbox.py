"""The outbox of back-channel logout without a network: what is queued for whom, in the
logout's own transaction; claims that two workers cannot share; the backoff; and a
logout token is never taken for an ID token hint."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from authserver.backchannel import service as backchannel
from authserver.backchannel.models import LogoutDelivery
from authserver.db import transaction, utcnow
from authserver.oauth.bridge import current_db
from authserver.sessions import service as sessions
from authserver.sessions.models import BrowserSession
from tests.flows import exchange, get_code, unverified

# the server reaches sites on this machine: no proxy of the environment in between
pytestmark = pytest.mark.usefixtures("no_ambient_proxy")


def rows(ctx) -> list[LogoutDelivery]:
    with transaction(ctx.sessions) as db:
        return list(db.scalars(sa.select(LogoutDelivery).order_by(LogoutDelivery.id)))


def queue(ctx, client_id, n=1):
    with transaction(ctx.sessions) as db:
        for _ in range(n):
            backchannel._queue(db, client_id, "someone", None)


@pytest.fixture
def rp_client(make_client):
    return make_client(backchannel_logout_uri="https://rp.example.com/bc")[0]


def test_a_rolled_back_logout_queues_nothing_and_wakes_no_one(ctx, rp_client):
    woken: list[int] = []

    def wake() -> None:
        woken.append(1)

    backchannel.add_waker(wake)
    try:
        with pytest.raises(RuntimeError), transaction(ctx.sessions) as db:
            backchannel._queue(db, rp_client, "someone", "sid")
            raise RuntimeError("the logout failed")
        assert rows(ctx) == [] and woken == []
        queue(ctx, rp_client)
        assert len(rows(ctx)) == 1 and woken  # woken once committed
    finally:
        backchannel.remove_waker(wake)


def test_session_and_user_logouts_queue_for_the_right_clients(client, ctx, make_user, make_client):
    user = make_user()
    apps = [make_client(backchannel_logout_uri="https://rp.example.com/bc"),
            make_client(backchannel_logout_uri="https://strict.example.com/bc",
                        backchannel_logout_session_required=True),
            make_client()]
    for cid, secret in apps:
        code, verifier, _ = get_code(client, cid)
        assert exchange(client, cid, secret, code, verifier).status_code == 200
    (rp_client, _), (strict, _), _silent = apps
    with transaction(ctx.sessions) as db:
        [session] = db.scalars(sa.select(BrowserSession)).all()
        sid = session.sid
        sessions.end(db, session)
    queued = {(r.client_id, r.sub, r.sid) for r in rows(ctx)}
    assert queued == {(rp_client, user.id, sid), (strict, user.id, sid)}
    with transaction(ctx.sessions) as db:
        assert backchannel.user_signed_out(db, user.id) == 2
    queued = {(r.client_id, r.sub, r.sid) for r in rows(ctx)[2:]}
    assert queued == {(rp_client, user.id, None), (strict, user.id, sid)}


def test_claims_are_not_shared_and_come_back_after_the_lease(ctx, rp_client, backend):
    queue(ctx, rp_client, 3)
    now = utcnow()
    if backend == "postgres":
        # two workers at the same moment: SKIP LOCKED gives them disjoint rows
        first_in = threading.Event()
        done = threading.Event()
        got: dict[str, list[int]] = {}

        def worker() -> None:
            with transaction(ctx.sessions) as db:
                got["a"] = [c.id for c in backchannel.claim_due(db, lease=60, now=now, limit=2)]
                first_in.set()
                done.wait(10)

        thread = threading.Thread(target=worker)
        thread.start()
        assert first_in.wait(10)
        with transaction(ctx.sessions) as db:
            got["b"] = [c.id for c in backchannel.claim_due(db, lease=60, now=now)]
        done.set()
        thread.join()
        assert len(got["a"]) == 2 and len(got["b"]) == 1 and not set(got["a"]) & set(got["b"])
    else:
        with transaction(ctx.sessions) as db:
            assert len(backchannel.claim_due(db, lease=60, now=now)) == 3
    with transaction(ctx.sessions) as db:  # all leased now
        assert backchannel.claim_due(db, lease=60, now=now) == []
    with transaction(ctx.sessions) as db:  # a worker died mid-delivery: after the lease, again
        again = backchannel.claim_due(db, lease=60, now=now + dt.timedelta(seconds=61))
    assert len(again) == 3 and {c.attempts for c in again} == {2}


def test_backoff_doubles_then_gives_up(ctx, rp_client):
    queue(ctx, rp_client)
    now = utcnow()
    waits = []
    for _attempt in range(4):
        with transaction(ctx.sessions) as db:
            [item] = backchannel.claim_due(db, lease=60, now=now)
            status = backchannel.record_result(db, item, "HTTP 503", max_attempts=4, retry_delay=10, now=now)
            row = db.get(LogoutDelivery, item.id)
            waits.append((status, int((row.next_attempt_at - now).total_seconds())))
            now = row.next_attempt_at
    assert waits[:3] == [("pending", 10), ("pending", 20), ("pending", 40)]
    assert waits[3][0] == "failed"
    with transaction(ctx.sessions) as db:
        assert backchannel.claim_due(db, lease=60, now=now + dt.timedelta(days=1)) == []


def test_a_logout_token_is_no_id_token_hint(ctx, rp_client):
    with transaction(ctx.sessions) as db:
        token = current_db.set(db)
        try:
            logout_token = ctx.oauth.token_issuer.logout_token(rp_client, sub="someone", sid="s", jti="j")
            assert unverified(logout_token)["sub"] == "someone"
            assert ctx.oauth.token_issuer.verify_id_token_hint(logout_token) is None
        finally:
            current_db.reset(token)
