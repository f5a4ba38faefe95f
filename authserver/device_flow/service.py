"""The device authorization grant's rules (RFC 8628), over :class:`DeviceAuthorization` rows.

* :func:`start` — a device authorization request (§3.1, §3.2): a 256-bit device code
  and an 8-letter user code from :data:`vocabulary.USER_CODE_ALPHABET` (§6.1), both
  stored as keyed hashes.
* :func:`find_pending` — the user typed a code on the verification page (§3.3): case,
  spaces and dashes do not matter.
* :func:`approve` / :func:`deny` — the user's decision, taken once (a conditional update).
* :func:`poll` — the device asks for its tokens (§3.4, §3.5): ``authorization_pending``,
  ``slow_down`` (and 5 more seconds of interval for good), ``expired_token``,
  ``access_denied``, or the approved row, claimed once.

Every state change is one conditional ``UPDATE``, so two nodes polling or approving at
the same moment cannot both win.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from authserver.db import utcnow
from authserver.device_flow.models import APPROVED, DENIED, PENDING, USED, DeviceAuthorization
from authserver.oauth.vocabulary import USER_CODE_ALPHABET, USER_CODE_LENGTH
from authserver.security.crypto import SecretBox, new_token

#: RFC 8628 §3.5: each slow_down adds this many seconds to the interval
SLOW_DOWN_STEP = 5
#: a poll counts as on time from this fraction of the interval after the previous one
ON_TIME = 0.8


@dataclass(frozen=True)
class Started:
    row: DeviceAuthorization
    device_code: str
    user_code: str


def new_user_code() -> str:
    """8 letters from the 20-consonant alphabet, shown as ``XXXX-XXXX`` (RFC 8628 §6.1:
    about 34.5 bits; guessing is bounded by the verification page's rate limits)."""
    letters = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
    half = USER_CODE_LENGTH // 2
    return f"{letters[:half]}-{letters[half:]}"


def normalize_user_code(typed: str) -> str | None:
    """The code as stored (upper case, no dashes or spaces), or None when it cannot be one
    (RFC 8628 §6.1: case-insensitive, punctuation ignored)."""
    letters = "".join(c for c in typed[:64].upper() if c not in "- \t")
    if len(letters) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in letters):
        return None
    return letters


def display(code: str) -> str:
    half = USER_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def _user_code_hash(box: SecretBox, normalized: str) -> str:
    return box.keyed_hash(f"user_code:{normalized}")


def _device_code_hash(box: SecretBox, device_code: str) -> str:
    return box.keyed_hash(f"device_code:{device_code}")


def start(db: Session, box: SecretBox, *, client_id: str, scope: str, ttl: int, interval: int) -> Started:
    """Store a new device authorization; returns the codes in clear, once."""
    device_code = new_token(32)
    while True:  # a user code is unique among the rows kept (about 2.6e10 codes)
        user_code = new_user_code()
        code_hash = _user_code_hash(box, user_code.replace("-", ""))
        if db.scalar(sa.select(DeviceAuthorization.id).where(DeviceAuthorization.user_code_hash == code_hash)) is None:
            break
    row = DeviceAuthorization(
        id=str(uuid.uuid4()), device_code_hash=_device_code_hash(box, device_code), user_code_hash=code_hash,
        client_id=client_id, scope=scope, status=PENDING, poll_interval=interval, amr=[],
        expires_at=utcnow() + dt.timedelta(seconds=ttl),
    )
    db.add(row)
    db.flush()
    return Started(row, device_code, user_code)


def find_pending(db: Session, box: SecretBox, typed: str) -> DeviceAuthorization | None:
    """The pending, unexpired authorization whose user code was typed, else None."""
    normalized = normalize_user_code(typed)
    if normalized is None:
        return None
    row = db.scalar(sa.select(DeviceAuthorization).where(
        DeviceAuthorization.user_code_hash == _user_code_hash(box, normalized)))
    if row is None or row.status != PENDING or row.expires_at <= utcnow():
        return None
    return row


def get_pending(db: Session, row_id: str) -> DeviceAuthorization | None:
    row = db.get(DeviceAuthorization, row_id)
    if row is None or row.status != PENDING or row.expires_at <= utcnow():
        return None
    return row


def _changed(db: Session, statement: sa.Update) -> int:
    """Run a conditional ``UPDATE``; how many rows it changed (0: the condition lost)."""
    return int(db.execute(statement.execution_options(synchronize_session=False)).rowcount)  # type: ignore[attr-defined]


def _decide(db: Session, row_id: str, values: dict[str, object]) -> bool:
    now = utcnow()
    return bool(_changed(db, sa.update(DeviceAuthorization).where(
        DeviceAuthorization.id == row_id, DeviceAuthorization.status == PENDING,
        DeviceAuthorization.expires_at > now).values(decided_at=now, **values)))


def approve(db: Session, row_id: str, *, user_id: str, scope: str, auth_time: int | None, amr: list[str],
            acr: str | None, sid: str | None) -> bool:
    """The user allowed the device; False when it was decided, or expired, meanwhile."""
    return _decide(db, row_id, {"status": APPROVED, "user_id": user_id, "scope": scope, "auth_time": auth_time,
                                "amr": list(amr), "acr": acr, "sid": sid})


def deny(db: Session, row_id: str, *, user_id: str) -> bool:
    return _decide(db, row_id, {"status": DENIED, "user_id": user_id})


PollState = Literal["unknown", "expired", "denied", "used", "pending", "slow_down", "approved"]


def poll(db: Session, box: SecretBox, device_code: str, client_id: str,
         now: float | None = None) -> tuple[PollState, DeviceAuthorization | None]:
    """The device's poll for ``device_code`` (RFC 8628 §3.4, §3.5).

    ``approved`` comes with the row, claimed for this request (``used`` from now on: a
    device code yields tokens once). A pending poll earlier than ``interval`` seconds
    after the previous one is ``slow_down`` and adds 5 seconds to the interval for this
    and every later poll; every poll counts as the previous one for the next.
    """
    now = time.time() if now is None else now
    if len(device_code) > 100:
        return "unknown", None
    row = db.scalar(sa.select(DeviceAuthorization).where(
        DeviceAuthorization.device_code_hash == _device_code_hash(box, device_code)))
    if row is None or row.client_id != client_id:
        return "unknown", None
    if row.status == USED:
        return "used", row
    if row.expires_at <= dt.datetime.fromtimestamp(now, dt.UTC):
        return "expired", row
    if row.status == DENIED:
        return "denied", row
    table = DeviceAuthorization
    if row.status == APPROVED:
        claimed = _changed(db, sa.update(table).where(table.id == row.id, table.status == APPROVED)
                           .values(status=USED, used_at=utcnow(), last_polled_at=now))
        return ("approved", row) if claimed else ("used", row)
    # pending: on time when the previous poll is at least an interval ago, less a fifth for
    # network jitter (one statement, so concurrent polls on two nodes cannot both pass)
    on_time = _changed(db, sa.update(table).where(
        table.id == row.id, table.status == PENDING,
        sa.or_(table.last_polled_at.is_(None), table.last_polled_at <= now - table.poll_interval * ON_TIME))
        .values(last_polled_at=now))
    if on_time:
        return "pending", row
    slowed = _changed(db, sa.update(table).where(table.id == row.id, table.status == PENDING).values(
        last_polled_at=now, poll_interval=table.poll_interval + SLOW_DOWN_STEP))
    # decided in between: the next poll gets the answer
    return ("slow_down" if slowed else "pending"), row
