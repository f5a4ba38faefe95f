"""Pushed authorization requests (RFC 9126): stored, then claimed once.

The parameters of a pushed request are sealed with AES-256-GCM under
``SECRET_KEY`` (``SecretBox``; the row's key is the associated data) and found
by the keyed hash of their ``request_uri``, so neither the database nor a log of
it yields a usable ``request_uri`` or the request's ``state``/``nonce``. A
``request_uri`` lives :data:`TTL` seconds and is claimed with one conditional
``UPDATE`` (single use, also across nodes; RFC 9126 §4 lets the server treat it
as one-time use, §7.3 recommends it).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from authserver.clients.models import PushedAuthorizationRequest
from authserver.db import utcnow
from authserver.security.crypto import DecryptionError, SecretBox

#: RFC 9126 §2.2 ``expires_in``; short, since the client uses it at once (§7.3)
TTL = 60
PREFIX = "urn:ietf:params:oauth:request_uri:"


def store(db: Session, box: SecretBox, client_id: str, params: list[tuple[str, str]]) -> str:
    """Keep ``params`` for ``client_id``; returns the new ``request_uri`` (RFC 9126 §2.2)."""
    request_uri = PREFIX + secrets.token_urlsafe(32)
    request_hash = box.keyed_hash(request_uri)
    db.add(PushedAuthorizationRequest(
        request_hash=request_hash,
        client_id=client_id,
        sealed_params=box.encrypt(json.dumps(params).encode(), request_hash.encode()),
        expires_at=utcnow() + dt.timedelta(seconds=TTL),
    ))
    db.flush()
    return request_uri


def claim(db: Session, box: SecretBox, request_uri: str, client_id: str) -> list[tuple[str, str]] | None:
    """The parameters pushed as ``request_uri`` by ``client_id``, marking it used; None when
    there is no such request for this client, or it expired, or it was used already."""
    if not request_uri.startswith(PREFIX) or len(request_uri) > 200:
        return None
    request_hash = box.keyed_hash(request_uri)
    now = utcnow()
    row = db.execute(
        sa.update(PushedAuthorizationRequest)
        .where(PushedAuthorizationRequest.request_hash == request_hash,
               PushedAuthorizationRequest.client_id == client_id,
               PushedAuthorizationRequest.used_at.is_(None),
               PushedAuthorizationRequest.expires_at > now)
        .values(used_at=now)
        .returning(PushedAuthorizationRequest.sealed_params)
    ).first()
    if row is None:
        return None
    try:
        params = json.loads(box.decrypt(row[0], request_hash.encode()))
    except (DecryptionError, ValueError):
        return None  # sealed under a key since dropped from PREVIOUS_SECRET_KEYS: as if expired
    return [(str(k), str(v)) for k, v in params]
