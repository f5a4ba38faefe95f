"""The device authorization grant (RFC 8628) outside the token endpoint.

* :func:`authorization_response` — the device authorization endpoint (§3.1, §3.2):
  client authentication as at the token endpoint (public clients by ``client_id``),
  the grant type registered for the client, the scope checked, and the codes.
* :func:`begin` / :func:`resume` — the user's side (§3.3). The verification page
  keeps the request pending in the browser session under a random ``rid``, exactly
  like an authorization request, so the same login, MFA and consent pages serve it
  (they come back through ``/authorize/resume``, which hands device requests here).
  The checks are those of the code flow — denied, logged in, second factor, consent —
  except that consent is asked every time, never remembered or skipped: the user must
  confirm the device they are signing in (§5.4, remote phishing).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.rfc6749.util import scope_to_list

from authserver.accounts import service as accounts
from authserver.audit import service as audit
from authserver.clients import service as clients
from authserver.device_flow import service as device_flow
from authserver.device_flow.models import DeviceAuthorization
from authserver.oauth import authorization, vocabulary
from authserver.oauth.bridge import FrozenRequest, Result, current_db
from authserver.oauth.errors import InvalidScopeError, UnauthorizedClientError
from authserver.oauth.grants import ALL_AUTH_METHODS
from authserver.sessions import service as sessions
from authserver.sessions.models import BrowserSession

if TYPE_CHECKING:
    from authserver.context import Context

#: where the user types the code (``verification_uri``, RFC 8628 §3.2)
VERIFICATION_PATH = "/device"
#: where the login, MFA and consent pages hand a pending device request back
CONTINUE_PATH = vocabulary.DEVICE_CONTINUE_PATH
#: the pending-request key marking a device request in the session (``authz[rid]``)
DEVICE = vocabulary.DEVICE_PENDING


def authorization_response(ctx: Context, request: FrozenRequest) -> Result:
    """RFC 8628 §3.1-§3.2; errors as RFC 6749 §5.2 (invalid_client 401, no-store)."""
    server = ctx.oauth
    try:
        client = server.authenticate_client(request, ALL_AUTH_METHODS, "device_authorization")
        if not client.check_grant_type(vocabulary.DEVICE_CODE):
            raise UnauthorizedClientError("The client is not allowed the device authorization grant.")
        allowed = client.row.scope.split()
        requested = list(dict.fromkeys(scope_to_list(request.form.get("scope")) or []))
        if any(s not in allowed for s in requested):
            raise InvalidScopeError("The requested scope is not allowed for this client.")
    except OAuth2Error as error:
        return server.handle_error_response(request, error)
    settings = ctx.settings
    started = device_flow.start(current_db.get(), ctx.box, client_id=client.client_id,
                                scope=" ".join(requested or allowed), ttl=settings.device_code_ttl,
                                interval=settings.device_code_interval)
    verification_uri = settings.issuer + VERIFICATION_PATH
    body = {
        "device_code": started.device_code,
        "user_code": started.user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": f"{verification_uri}?user_code={started.user_code}",
        "expires_in": settings.device_code_ttl,
        "interval": settings.device_code_interval,
    }
    return 200, body, list(vocabulary.NO_STORE_ITEMS)


def begin(ctx: Context, session: BrowserSession, row: DeviceAuthorization, user_code: str) -> str:
    """Keep the device request pending in ``session``; returns its ``rid``."""
    rid = secrets.token_urlsafe(16)
    now = ctx.clock()
    authz = {k: v for k, v in (session.data or {}).get("authz", {}).items()
             if v["created"] + authorization.PENDING_TTL > now}
    while len(authz) >= authorization.MAX_PENDING:
        authz.pop(min(authz, key=lambda k: authz[k]["created"]))
    authz[rid] = {"params": [("client_id", row.client_id), ("scope", row.scope)], "created": int(now),
                  "sid": session.sid, DEVICE: row.id, "user_code": user_code}
    sessions.set_data(session, "authz", authz)
    return rid


def pending_device(session: BrowserSession | None, rid: str) -> dict[str, Any] | None:
    """The pending device request ``rid`` of ``session``, if it is one."""
    if session is None or not rid:
        return None
    item: dict[str, Any] | None = (session.data or {}).get("authz", {}).get(rid)
    return item if item is not None and DEVICE in item else None


def _forget(session: BrowserSession, rid: str) -> None:
    authz = dict((session.data or {}).get("authz", {}))
    if authz.pop(rid, None) is not None:
        sessions.set_data(session, "authz", authz)


@dataclass(frozen=True)
class Step:
    """What the verification flow shows next: a page to go to (``location``), or the end
    (``done``: ``approved``, ``denied`` or ``expired``) with the client's name."""

    location: str | None = None
    done: Literal["approved", "denied", "expired"] | None = None
    client_name: str | None = None


def resume(ctx: Context, session: BrowserSession | None, rid: str, ip: str | None) -> Step:
    """Run the checks for pending device request ``rid`` and act on the first that fails;
    when all pass, approve the device with the session's sign-in."""
    db = current_db.get()
    item = pending_device(session, rid)
    if item is None or session is None or item["created"] + authorization.PENDING_TTL < ctx.clock():
        return Step(done="expired")
    row = device_flow.get_pending(db, item[DEVICE])
    client = clients.get_client(db, row.client_id) if row is not None else None
    if row is None or client is None:
        _forget(session, rid)
        return Step(done="expired")
    name = client.client_name
    user = accounts.get_user(db, session.user_id) if session.user_id else None
    if item.get("denied"):
        if user is not None:
            device_flow.deny(db, row.id, user_id=user.id)
            audit.record(db, "device_denied", user_id=user.id, client_id=client.client_id, ip=ip)
        _forget(session, rid)
        return Step(done="denied", client_name=name)
    if user is None or user.disabled:
        return Step(location=f"/login?rid={rid}")
    if authorization.second_factor_missing(db, list(session.amr or []), user.id, client, ""):
        return Step(location=f"/login/mfa?rid={rid}")
    if not item.get("consented"):
        return Step(location=f"/consent?rid={rid}")
    _forget(session, rid)
    if not device_flow.approve(db, row.id, user_id=user.id, scope=row.scope, auth_time=session.auth_time,
                               amr=list(session.amr or []), acr=session.acr, sid=session.sid):
        return Step(done="expired")
    audit.record(db, "device_approved", user_id=user.id, client_id=client.client_id, ip=ip, scope=row.scope)
    return Step(done="approved", client_name=name)
