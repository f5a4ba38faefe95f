"""Back-channel logout (OIDC Back-Channel Logout 1.0): who is told, and delivery.

When a browser session ends (RP-initiated logout, the account page, an administrator,
a password change, the device limit) :func:`session_ended` queues a logout token
(``sub`` and ``sid``) for every client that got a code, a refresh token or a device
grant through that session and registered a ``backchannel_logout_uri``. When a user is
disabled or deleted, :func:`user_signed_out` queues one for every client the user
consented to or holds tokens at: ``sub`` only, or one per known ``sid`` for a client
that registered ``backchannel_logout_session_required``. The rows are written in the
caller's transaction (the logout and its notices commit together, or neither), and the
worker is woken once that transaction commits.

:func:`deliver_due` is the worker's part: it claims due rows (``FOR UPDATE SKIP
LOCKED`` on Postgres, the write lock on SQLite) by moving their ``next_attempt_at``
forward — a lease, so a node that dies mid-delivery leaves them to another — then
posts ``logout_token=...`` (§2.5) to each with a timeout, outside any transaction, and
records the result: delivered on a 2xx, otherwise retried after
``BACKCHANNEL_LOGOUT_RETRY_DELAY`` doubling, and given up after
``BACKCHANNEL_LOGOUT_MAX_ATTEMPTS`` (audited as ``backchannel_logout_failed``).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import sqlalchemy as sa
import structlog
from sqlalchemy.orm import Session

from authserver.audit import service as audit
from authserver.backchannel.models import DELIVERED, FAILED, PENDING, LogoutDelivery
from authserver.clients.models import Client
from authserver.consents.models import Consent
from authserver.db import on_commit, transaction, utcnow
from authserver.device_flow.models import DeviceAuthorization
from authserver.security import outbound
from authserver.security.crypto import new_token
from authserver.tokens.models import AuthorizationCode, RefreshToken

if TYPE_CHECKING:
    from authserver.context import Context

log = structlog.get_logger("authserver.backchannel")

#: rows one pass claims; the rest wait for the next pass (moments later when woken)
BATCH = 20
#: sids of one user told to a session-required client at most
MAX_SIDS = 50
#: the longest a delivery waits between attempts
MAX_DELAY = 3600

_wakers: set[Callable[[], None]] = set()
_wakers_lock = threading.Lock()


def add_waker(wake: Callable[[], None]) -> None:
    """Called (from any thread) once a transaction that queued logout tokens commits."""
    with _wakers_lock:
        _wakers.add(wake)


def remove_waker(wake: Callable[[], None]) -> None:
    with _wakers_lock:
        _wakers.discard(wake)


def _wake() -> None:
    with _wakers_lock:
        wakers = list(_wakers)
    for wake in wakers:
        wake()


# -- who is told -----------------------------------------------------------------


def _with_uri(db: Session, client_ids: Iterable[str]) -> list[Client]:
    wanted = sorted({c for c in client_ids if c})
    if not wanted:
        return []
    return list(db.scalars(sa.select(Client).where(Client.client_id.in_(wanted),
                                                  Client.backchannel_logout_uri.is_not(None))))


def _queue(db: Session, client_id: str, sub: str | None, sid: str | None) -> None:
    db.add(LogoutDelivery(client_id=client_id, sub=sub, sid=sid, jti=new_token(16), status=PENDING,
                          attempts=0, next_attempt_at=utcnow()))
    on_commit(db, _wake)  # a wake-up is idempotent: one per row is fine


def session_ended(db: Session, user_id: str | None, sid: str) -> int:
    """Queue logout tokens for the clients that got tokens through session ``sid``;
    returns how many."""
    if not user_id:
        return 0
    client_ids = [
        *db.scalars(sa.select(RefreshToken.client_id).where(
            RefreshToken.user_id == user_id, RefreshToken.sid == sid).distinct()),
        *db.scalars(sa.select(AuthorizationCode.client_id).where(
            AuthorizationCode.sid == sid, AuthorizationCode.user_id == user_id).distinct()),
        *db.scalars(sa.select(DeviceAuthorization.client_id).where(
            DeviceAuthorization.sid == sid, DeviceAuthorization.user_id == user_id).distinct()),
    ]
    clients = _with_uri(db, client_ids)
    for client in clients:
        _queue(db, client.client_id, user_id, sid)
    return len(clients)


def sessions_ended(db: Session, user_id: str, sids: Iterable[str]) -> int:
    return sum(session_ended(db, user_id, sid) for sid in sids)


def user_signed_out(db: Session, user_id: str) -> int:
    """Queue logout tokens for every client the user consented to or holds tokens at
    (the user was disabled or deleted); returns how many."""
    client_ids = [
        *db.scalars(sa.select(Consent.client_id).where(Consent.user_id == user_id)),
        *db.scalars(sa.select(RefreshToken.client_id).where(RefreshToken.user_id == user_id).distinct()),
        *db.scalars(sa.select(AuthorizationCode.client_id).where(AuthorizationCode.user_id == user_id).distinct()),
        *db.scalars(sa.select(DeviceAuthorization.client_id).where(DeviceAuthorization.user_id == user_id)
                    .distinct()),
    ]
    count = 0
    for client in _with_uri(db, client_ids):
        if not client.backchannel_logout_session_required:
            _queue(db, client.client_id, user_id, None)
            count += 1
            continue
        sids: set[str] = set()
        for model in (RefreshToken, AuthorizationCode, DeviceAuthorization):
            sids.update(s for s in db.scalars(sa.select(model.sid).where(
                model.user_id == user_id, model.client_id == client.client_id,
                model.sid.is_not(None)).distinct()) if s)
        for sid in sorted(sids)[:MAX_SIDS]:
            _queue(db, client.client_id, user_id, sid)
            count += 1
    return count


# -- delivery ----------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    client_id: str
    uri: str
    sub: str | None
    sid: str | None
    jti: str
    attempts: int


def claim_due(db: Session, *, lease: int, now: dt.datetime | None = None, limit: int = BATCH) -> list[Claimed]:
    """Take due rows for this worker: one more attempt each, and not due again for
    ``lease`` seconds, so no other worker or node takes them meanwhile."""
    now = now or utcnow()
    rows = list(db.scalars(sa.select(LogoutDelivery).where(
        LogoutDelivery.status == PENDING, LogoutDelivery.next_attempt_at <= now)
        .order_by(LogoutDelivery.next_attempt_at, LogoutDelivery.id).limit(limit)
        .with_for_update(skip_locked=True)))
    claimed = []
    for row in rows:
        client = db.get(Client, row.client_id)
        row.attempts += 1
        row.next_attempt_at = now + dt.timedelta(seconds=lease)
        if client is None or not client.backchannel_logout_uri:
            row.status, row.finished_at, row.last_error = FAILED, now, "no backchannel_logout_uri any more"
            continue
        claimed.append(Claimed(row.id, row.client_id, client.backchannel_logout_uri, row.sub, row.sid, row.jti,
                               row.attempts))
    db.flush()
    return claimed


def post(uri: str, logout_token: str, timeout: float, *, allow_private: bool) -> str | None:
    """POST the token as a form (§2.5); None on a 2xx, else what went wrong (no body kept).
    Only to a public address unless ``allow_private`` (:mod:`authserver.security.outbound`)."""
    try:
        destination = outbound.resolve(uri, allow_private=allow_private)
    except outbound.ForbiddenDestination as refused:
        return f"not sent: {refused}"
    try:
        with destination.client(timeout) as http:
            response = http.send(destination.request(http, "POST", data={"logout_token": logout_token},
                                                     headers={"Cache-Control": "no-store"}))
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # ValueError: a name TLS cannot send
        return type(exc).__name__
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


def record_result(db: Session, item: Claimed, error: str | None, *, max_attempts: int, retry_delay: int,
                  now: dt.datetime | None = None) -> str:
    """Mark a claimed row delivered, due again after the backoff, or given up; returns
    the new status."""
    now = now or utcnow()
    row = db.get(LogoutDelivery, item.id)
    if row is None:  # the client was deleted meanwhile
        return FAILED
    row.last_error = error
    if error is None:
        row.status, row.finished_at = DELIVERED, now
    elif row.attempts >= max_attempts:
        row.status, row.finished_at = FAILED, now
        audit.record(db, "backchannel_logout_failed", user_id=row.sub, client_id=row.client_id,
                     attempts=row.attempts, error=error, sid=row.sid)
    else:
        delay = min(MAX_DELAY, retry_delay * 2 ** (row.attempts - 1))
        row.next_attempt_at = now + dt.timedelta(seconds=delay)
    return row.status


def deliver_due(ctx: Context) -> dict[str, int]:
    """One delivery pass (the maintenance worker's); returns counts by outcome."""
    s = ctx.settings
    with transaction(ctx.sessions) as db:
        claimed = claim_due(db, lease=s.backchannel_logout_timeout + 60)
    counts = {"delivered": 0, "retry": 0, "failed": 0}
    for item in claimed:
        token = ctx.oauth.token_issuer.logout_token(item.client_id, sub=item.sub, sid=item.sid, jti=item.jti)
        error = post(item.uri, token, s.backchannel_logout_timeout, allow_private=s.private_destinations_allowed)
        with transaction(ctx.sessions) as db:
            status = record_result(db, item, error, max_attempts=s.backchannel_logout_max_attempts,
                                   retry_delay=s.backchannel_logout_retry_delay)
        counts["delivered" if status == DELIVERED else "failed" if status == FAILED else "retry"] += 1
        if error is not None:
            log.info("backchannel_logout_attempt_failed", client_id=item.client_id, attempt=item.attempts,
                     error=error)
    return counts


def forgettable(before: dt.datetime) -> sa.Delete:
    """Finished rows (delivered or given up) older than ``before``, for cleanup."""
    return sa.delete(LogoutDelivery).where(LogoutDelivery.status != PENDING, LogoutDelivery.created_at < before)
