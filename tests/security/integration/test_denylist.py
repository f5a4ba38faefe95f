"""The IP deny list answers 403 before any work, refreshes from the table, and audits hits."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from authserver.audit.models import AuditEvent
from authserver.db import transaction
from authserver.security import denylist_middleware
from authserver.security.denylist_middleware import DenyListMiddleware
from authserver.security.models import IpDenyEntry


def _deny(ctx, cidr):
    with transaction(ctx.sessions) as db:
        db.add(IpDenyEntry(cidr=cidr, reason="test"))


async def _call(mw, ip, path="/token"):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "state": {"client_ip": ip}}
    await mw(scope, receive, send)
    return sent


def _inner_app():
    calls = []

    async def app(scope, receive, send):
        calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app, calls


@pytest.mark.anyio
async def test_middleware_blocks_listed_networks_and_audits_once(ctx):
    _deny(ctx, "203.0.113.0/24")
    _deny(ctx, "2001:db8::/32")
    app, calls = _inner_app()
    mw = DenyListMiddleware(app, ctx)
    for ip in ("203.0.113.7", "2001:db8::1", "::ffff:203.0.113.9"):
        sent = await _call(mw, ip)
        assert sent[0]["status"] == 403 and sent[1]["body"] == b'{"error":"access_denied"}'
    await _call(mw, "203.0.113.7")
    assert calls == []
    sent = await _call(mw, "198.51.100.1")
    assert sent[0]["status"] == 200 and calls == ["/token"]
    with transaction(ctx.sessions) as db:
        hits = db.scalars(select(AuditEvent).where(AuditEvent.event == "deny_list_hit")).all()
    assert sorted(h.ip for h in hits) == ["2001:db8::1", "203.0.113.7", "::ffff:203.0.113.9"]


@pytest.mark.anyio
async def test_middleware_refreshes_at_most_every_five_seconds(ctx, monkeypatch):
    now = [1000.0]
    app, _calls = _inner_app()
    mw = DenyListMiddleware(app, ctx, clock=lambda: now[0])
    assert (await _call(mw, "192.0.2.1"))[0]["status"] == 200
    _deny(ctx, "192.0.2.0/24")
    now[0] += denylist_middleware.REFRESH_SECONDS - 1
    assert (await _call(mw, "192.0.2.1"))[0]["status"] == 200  # cached list
    now[0] += 2
    assert (await _call(mw, "192.0.2.1"))[0]["status"] == 403


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxies": ("127.0.0.0/8",)}])
def test_app_denies_forwarded_client_behind_trusted_proxy(app, ctx, settings_overrides):
    from starlette.testclient import TestClient

    _deny(ctx, "198.51.100.0/24")
    with TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 50000)) as c:
        r = c.get("/.well-known/openid-configuration", headers={"x-forwarded-for": "198.51.100.23"})
        assert r.status_code == 403 and r.json() == {"error": "access_denied"}
        assert r.headers["x-frame-options"] == "DENY"  # the outer middleware still adds headers
        r = c.get("/.well-known/openid-configuration", headers={"x-forwarded-for": "192.0.2.5"})
        assert r.status_code == 200
