"""A browser's pending device requests (``oauth/device.py``): kept beside the other
pending requests of the same session, at most ``MAX_PENDING`` of them (the oldest goes
first), and forgotten once the device request is gone."""

from __future__ import annotations

import itertools

from authserver.db import transaction
from authserver.device_flow.models import DeviceAuthorization
from authserver.oauth import authorization, device
from authserver.oauth.bridge import current_db
from authserver.sessions.models import BrowserSession
from tests.conftest import Clock


def _request(n: int) -> DeviceAuthorization:
    return DeviceAuthorization(id=n, client_id="tv", scope="openid")


def test_the_oldest_pending_request_makes_room_and_the_others_stay(ctx, monkeypatch):
    clock = Clock(1_000_000.0)
    monkeypatch.setattr(ctx, "clock", clock)
    # rids that sort the other way round from their age: the oldest must go, not the smallest
    names = (f"rid-{n:02d}" for n in itertools.count(99, -1))
    monkeypatch.setattr(device.secrets, "token_urlsafe", lambda _n: next(names))
    session = BrowserSession(sid="sid-1", data={"authz": {"zz-code-flow": {"created": clock.now, "params": []}},
                                                 "lang": "fr"})
    rids = []
    for n in range(authorization.MAX_PENDING - 1):
        clock.now += 1
        rids.append(device.begin(ctx, session, _request(n), f"CODE-{n}"))
    assert list(session.data["authz"]) == ["zz-code-flow", *rids]  # the code flow's request is kept
    assert session.data["authz"][rids[0]] == {
        "params": [("client_id", "tv"), ("scope", "openid")], "created": 1_000_001, "sid": "sid-1",
        device.DEVICE: 0, "user_code": "CODE-0"}
    clock.now += 1
    newest = device.begin(ctx, session, _request(99), "CODE-99")
    assert list(session.data["authz"]) == [*rids, newest]  # full: the oldest (the code flow's) went
    assert session.data["lang"] == "fr"
    clock.now += authorization.PENDING_TTL - 1
    last = device.begin(ctx, session, _request(100), "CODE-100")
    assert list(session.data["authz"]) == [newest, last]  # the expired ones are dropped


def test_a_pending_request_whose_device_request_is_gone_is_forgotten(ctx, monkeypatch):
    clock = Clock(1_000_000.0)
    monkeypatch.setattr(ctx, "clock", clock)
    session = BrowserSession(sid="sid-1", data={})
    gone = device.begin(ctx, session, _request(404), "GONE")
    kept = device.begin(ctx, session, _request(405), "KEPT")
    with transaction(ctx.sessions) as db:
        token = current_db.set(db)
        try:
            assert device.resume(ctx, session, gone, ip=None) == device.Step(done="expired")
        finally:
            current_db.reset(token)
    assert list(session.data["authz"]) == [kept]
    assert device.pending_device(session, kept)["user_code"] == "KEPT"
    assert device.pending_device(session, gone) is None
    assert device.pending_device(None, kept) is None and device.pending_device(session, "") is None
