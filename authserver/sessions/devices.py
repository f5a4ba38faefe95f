"""Devices and the device limit (``MAX_DEVICES_PER_USER``, docs/decisions.md "Device limit").

A device is a browser the user completed a sign-in on (its successive sessions:
signing in again there keeps the device) or an application that signed the user
in with the password grant, plus the refresh-token families issued to it. It is
*active* while not ended and while one of its browser sessions or refresh tokens
is still live. A new device beyond the limit ends the least recently used one:
its browser sessions end, its refresh-token families are revoked with the access
tokens they issued (``tokens.service.revoke_family``), an audit event is recorded
and the account page tells the user.

Concurrency: counting and evicting run under a lock on the user's row
(``SELECT … FOR NO KEY UPDATE`` on Postgres; on SQLite every transaction already holds
the write lock from ``BEGIN IMMEDIATE``), so two sign-ins at once never leave
more than the limit. Locks are taken in one order — user, device, refresh
tokens — and a code exchange share-locks the device (:func:`is_live`), so a
family cannot be issued to a device while it is being ended, nor rotated past
its revocation.

"Last used" costs nothing on the hot path: it is the latest of the device's last
sign-in, its sessions' ``last_seen_at`` and the ``created_at`` of its live
refresh tokens (rotation writes a new row on every refresh anyway), read only
when a sign-in counts devices or the account page lists them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Delete, Label, and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from authserver.accounts.models import User
from authserver.audit import service as audit
from authserver.backchannel import service as backchannel
from authserver.db import utcnow
from authserver.i18n import N_, Text
from authserver.sessions.models import BrowserSession, Device
from authserver.tokens import service as tokens
from authserver.tokens.models import AuthorizationCode, RefreshToken

if TYPE_CHECKING:
    from authserver.context import Context

DEVICE_LIMIT = "device_limit"
#: how long the account page keeps telling the user about a device the limit ended
NOTICE_DAYS = 30

# First match wins: Edge and Opera say "Chrome", Chrome says "Safari", Android says "Linux",
# and iOS browsers say "like Mac OS X".
_BROWSERS = (("Edg", "Edge"), ("OPR/", "Opera"), ("SamsungBrowser/", "Samsung Internet"),
             ("Firefox/", "Firefox"), ("FxiOS/", "Firefox"), ("CriOS/", "Chrome"),
             ("Chromium/", "Chromium"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (("Windows", "Windows"), ("iPhone", "iOS"), ("iPad", "iPadOS"), ("Android", "Android"),
            ("CrOS", "ChromeOS"), ("Macintosh", "macOS"), ("Mac OS X", "macOS"), ("Linux", "Linux"))


def device_name(user_agent: str | None) -> Text:
    """A short name for a browser, "Firefox on Linux", from its ``User-Agent``; an
    :class:`~authserver.i18n.Text`, so a mail or page can say it in its reader's language.

    Only names from the tables above come out, never text of the header itself
    (it is the client's to choose: shown on a page, it must not say anything else).
    """
    ua = user_agent or ""
    browser = next((name for token, name in _BROWSERS if token in ua), None)
    system = next((name for token, name in _SYSTEMS if token in ua), None)
    if browser and system:
        return Text(N_("%(browser)s on %(system)s"), browser=browser, system=system)
    if browser:
        return Text(N_("%(browser)s browser"), browser=browser)
    if system:
        return Text(N_("a browser on %(system)s"), system=system)
    return Text(N_("an unknown browser"))


def stored_name(name: str | None) -> Text | str:
    """A stored device name (English, from :func:`device_name`) as a :class:`Text` again,
    so a page can say it in its language; an application's name stays as it is."""
    if not name:
        return Text(N_("an unknown browser"))
    browsers = {label for _token, label in _BROWSERS}
    systems = {label for _token, label in _SYSTEMS}
    browser, on, system = name.partition(" on ")
    if on and browser in browsers and system in systems:
        return Text(N_("%(browser)s on %(system)s"), browser=browser, system=system)
    if name.endswith(" browser") and name[:-8] in browsers:
        return Text(N_("%(browser)s browser"), browser=name[:-8])
    if name.startswith("a browser on ") and name[13:] in systems:
        return Text(N_("a browser on %(system)s"), system=name[13:])
    if name == "an unknown browser":
        return Text(N_("an unknown browser"))
    return name


#: whether the user has a device yet (ended ones count), read in the same statement as the
#: user's row by the login's lookup (``accounts.service.find_by_login``), before the
#: sign-in makes its device: one statement less per login (docs/performance.md)
USER_HAS_DEVICE: Label[bool] = exists().where(Device.user_id == User.id).label("has_device")
#: ``Session.info`` key of those answers, per user, for this session's request
_HAD_DEVICE = "had_device"


def remember_had_device(db: Session, user_id: str, answer: bool) -> None:
    """Keep ``answer`` (:data:`USER_HAS_DEVICE`, read before this request made a device)
    for :func:`had_other_devices`."""
    db.info.setdefault(_HAD_DEVICE, {})[user_id] = bool(answer)


def had_other_devices(db: Session, user_id: str, device_id: str) -> bool:
    """Whether the user ever completed a sign-in on another device than ``device_id``,
    the one this sign-in just made (ended ones count). The answer the login's lookup
    kept (:func:`remember_had_device`) is this one, as every device it saw is another;
    it is taken once. Without it (the MFA and passkey pages) one query asks.

    The kept answer was read before the password check and before the device limit's
    lock on the user, so the first two sign-ins of an account, overlapping on
    Postgres, may both see no device and neither send the letter (without a device
    limit the query had the same window). A letter is a notice, not a check."""
    kept = db.info.get(_HAD_DEVICE, {}).pop(user_id, None)
    if kept is not None:
        return bool(kept)
    return db.scalar(select(Device.id).where(Device.user_id == user_id, Device.id != device_id).limit(1)) is not None


@dataclass(frozen=True)
class ActiveDevice:
    device: Device
    last_used_at: dt.datetime


@dataclass(frozen=True)
class Notice:
    """A device the limit ended, for the account page."""

    name: str
    ended_at: dt.datetime
    replaced_by: str | None


def active(db: Session, user_id: str) -> list[ActiveDevice]:
    """The user's active devices, least recently used first (ties: the older device first).

    Three queries through ``user_id`` indexes; run at sign-in and on the account page only.
    """
    now = utcnow()
    seen: dict[str | None, dt.datetime] = {device_id: at for device_id, at in db.execute(
        select(BrowserSession.device_id, func.max(BrowserSession.last_seen_at))
        .where(BrowserSession.user_id == user_id, BrowserSession.device_id.is_not(None),
               BrowserSession.expires_at > now)
        .group_by(BrowserSession.device_id))}
    refreshed: dict[str | None, dt.datetime] = {device_id: at for device_id, at in db.execute(
        select(RefreshToken.device_id, func.max(RefreshToken.created_at))
        .where(RefreshToken.user_id == user_id, RefreshToken.device_id.is_not(None),
               RefreshToken.revoked_at.is_(None), RefreshToken.rotated_at.is_(None),
               RefreshToken.expires_at > now, RefreshToken.family_expires_at > now)
        .group_by(RefreshToken.device_id))}
    live = set(seen) | set(refreshed)
    if not live:
        return []
    found = []
    for device in db.scalars(select(Device).where(Device.user_id == user_id, Device.ended_at.is_(None),
                                                  Device.id.in_(live))):
        times = [device.last_used_at, seen.get(device.id), refreshed.get(device.id)]
        found.append(ActiveDevice(device, max(t for t in times if t is not None)))
    found.sort(key=lambda a: (a.last_used_at, a.device.created_at, a.device.id))
    return found


def sign_in(db: Session, ctx: Context, user_id: str, device_id: str | None, *, user_agent: str | None,
            ip: str | None = None) -> Device:
    """The device of a browser sign-in that just completed (password, and the second
    factor when the account has one); ``device_id`` is the browser's device when the
    same user signed in on it before (``sessions.service.kept_device``).

    Signing in again in the same browser keeps its device; otherwise a new device is
    made, ending the least recently used ones beyond ``MAX_DEVICES_PER_USER``.
    """
    # locked (FOR NO KEY UPDATE): a sign-in elsewhere that is ending this device by the
    # limit commits first, and the row is then read as ended
    current = db.get(Device, device_id, with_for_update={"key_share": True}) if device_id else None
    if current is not None and current.user_id == user_id and current.ended_at is None:
        current.last_used_at = utcnow()
        return current
    return _new_device(db, ctx, user_id, str(device_name(user_agent)), ip)


def sign_in_application(db: Session, ctx: Context, user_id: str, name: str,
                        ip: str | None = None) -> Device:
    """A new device for a refresh-token family issued by the password grant: there is no
    browser session to tie it to, so every such sign-in is a device of its own, named
    after the application, and counts towards the limit like a browser."""
    return _new_device(db, ctx, user_id, name[:100], ip)


def _new_device(db: Session, ctx: Context, user_id: str, name: str, ip: str | None) -> Device:
    limit = ctx.settings.max_devices_per_user
    device = Device(id=str(uuid.uuid4()), user_id=user_id, name=name)
    live: list[ActiveDevice] = []
    if limit:
        # Serialise the user's sign-ins across workers: the count below must see every
        # device committed before it (READ COMMITTED reads anew once the lock is held).
        # NO KEY UPDATE: the rows this sign-in already wrote key-share-lock the user
        # through their foreign keys, which FOR UPDATE would wait on (a deadlock).
        db.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))
        live = active(db, user_id)
    db.add(device)
    db.flush()  # before the devices it ends refer to it
    for old in live[:max(0, len(live) - limit + 1)]:
        end(db, ctx, old.device, reason=DEVICE_LIMIT, by=device, ip=ip)
    return device


def end(db: Session, ctx: Context, device: Device, *, reason: str, by: Device | None = None,
        ip: str | None = None) -> int:
    """Sign a device out: its browser sessions end, its refresh-token families are
    revoked with the access tokens they and its codes issued, and one audit event is
    recorded. Returns how many refresh tokens were still usable."""
    device.ended_at = utcnow()
    device.ended_reason = reason
    device.ended_by = by.id if by is not None else None
    # The device row is locked first, so a code exchange (is_live) waits or sees it ended.
    db.flush()
    # Lock every unrevoked token of the device before revoking: a rotation in flight holds
    # its old token's row, so this waits for it, and revoke_family's own statements then
    # see the new token it wrote. Rotated rows are included on purpose: the head being
    # rotated at this instant is one of them once the rotation commits.
    rows = db.execute(select(RefreshToken.id, RefreshToken.family_id).where(
        RefreshToken.user_id == device.user_id, RefreshToken.device_id == device.id,
        RefreshToken.revoked_at.is_(None)).with_for_update()).all()
    revoked = sum(tokens.revoke_family(db, ctx.revoked, family_id)
                  for family_id in dict.fromkeys(family for _id, family in rows))
    now = utcnow()
    for code in db.scalars(select(AuthorizationCode).where(
            AuthorizationCode.user_id == device.user_id, AuthorizationCode.device_id == device.id,
            AuthorizationCode.family_id.is_(None), AuthorizationCode.access_token_expires_at > now)):
        tokens.revoke_code_issue(db, ctx.revoked, code)
    backchannel.sessions_ended(db, device.user_id, db.scalars(
        select(BrowserSession.sid).where(BrowserSession.device_id == device.id)).all())
    ended = db.execute(delete(BrowserSession).where(BrowserSession.device_id == device.id)
                       .execution_options(synchronize_session=False)).rowcount or 0  # type: ignore[attr-defined]
    audit.record(db, "device_signed_out", user_id=device.user_id, ip=ip, reason=reason, device=device.name,
                 device_id=device.id, by_device=by.name if by is not None else None,
                 sessions_ended=ended, refresh_tokens_revoked=revoked)
    return revoked


def is_live(db: Session, device_id: str) -> bool:
    """False when the device was signed out (or is unknown). Share-locks its row on
    Postgres, so a concurrent :func:`end` either waits for the caller's commit (and then
    sees what it issued) or has already ended it."""
    ended = db.execute(select(Device.ended_at).where(Device.id == device_id)
                       .with_for_update(read=True)).one_or_none()
    return ended is not None and ended[0] is None


def notices(db: Session, user_id: str) -> list[Notice]:
    """Devices the limit signed out in the last ``NOTICE_DAYS`` days, newest first."""
    replacement = Device.__table__.alias("replacement")
    rows = db.execute(
        select(Device.name, Device.ended_at, replacement.c.name)
        .outerjoin(replacement, replacement.c.id == Device.ended_by)
        .where(Device.user_id == user_id, Device.ended_reason == DEVICE_LIMIT,
               Device.ended_at > utcnow() - dt.timedelta(days=NOTICE_DAYS))
        .order_by(Device.ended_at.desc()).limit(10))
    return [Notice(name, ended_at, by) for name, ended_at, by in rows if ended_at is not None]


def forgettable(now: dt.datetime) -> Delete:
    """The devices ``cleanup`` deletes: ended ones once their notice is over, and those
    that have had nothing live for ``NOTICE_DAYS`` (no browser session, no refresh token
    that can still be used; found through the ``user_id`` indexes)."""
    since = now - dt.timedelta(days=NOTICE_DAYS)
    session = select(BrowserSession.id).where(BrowserSession.device_id == Device.id)
    token = select(RefreshToken.id).where(
        RefreshToken.user_id == Device.user_id, RefreshToken.device_id == Device.id,
        RefreshToken.revoked_at.is_(None), RefreshToken.family_expires_at > now)
    return delete(Device).where(or_(
        Device.ended_at < since,
        and_(Device.ended_at.is_(None), Device.last_used_at < since, ~session.exists(), ~token.exists()),
    )).execution_options(synchronize_session=False)
