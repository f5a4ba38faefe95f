"""Passkeys (WebAuthn Level 2/3) through py_webauthn: registration, sign-in, the rules.

The relying party is the issuer: its host is the RP ID and its origin the only
accepted origin (WebAuthn Level 2 §5.1.4, §7.1 steps 9 and 13). Attestation is
``none`` (§5.4.7): nothing here trusts an authenticator model, so nothing asks
for one. Registration asks for a discoverable credential (``residentKey:
required``) so the same passkey serves for sign-in without a username; user
verification is *preferred* when registering and when used as a second factor
after a password, and *required* for passwordless sign-in (§6.2.3).

Challenges (32 random bytes) are kept by the caller in the browser session —
the row of a signed-in session, or the sealed cookie of an anonymous one — as
one :class:`Challenge` per purpose, single use (taken out before it is checked)
and valid for :data:`CHALLENGE_TTL` seconds. A sealed cookie could be played
back together with the assertion it produced; so an assertion is accepted only
for a challenge issued *after* the credential's last accepted use
(``last_used_at``), claimed by one conditional ``UPDATE`` that also moves the
signature counter (two concurrent uses: one wins).

Counters (§6.1.1, §7.2 step 21): when either the stored or the new counter is
non-zero, the new one must be greater; otherwise the credential may be cloned,
the assertion is refused and ``passkey_clone_suspected`` is audited.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from authserver.accounts import mfa as factors
from authserver.accounts.models import User
from authserver.audit import service as audit
from authserver.i18n import N_, Text
from authserver.passkeys.errors import CloneSuspected, PasskeyError
from authserver.passkeys.models import Passkey

#: seconds a challenge stays usable (the browser's own timeout is :data:`TIMEOUT_MS`)
CHALLENGE_TTL = 300
TIMEOUT_MS = 120_000
MAX_PASSKEYS = 20
MAX_NAME = 64
Purpose = Literal["register", "login", "mfa"]

NOT_ACCEPTED = N_("The passkey could not be verified. Try again.")
UNKNOWN = N_("This passkey is not registered here. Sign in with your password, or use another passkey.")
EXPIRED = N_("The passkey request expired. Try again.")
DUPLICATE = N_("This passkey is already registered.")
NO_PASSKEY = N_("You have no passkey.")


def _too_many() -> Text:
    return Text(N_("You can register at most %(count)d passkeys."), count=MAX_PASSKEYS)


@dataclass(frozen=True)
class RelyingParty:
    """The RP ID (the issuer's host) and the one origin assertions may come from."""

    id: str
    origin: str
    name: str

    @classmethod
    def for_issuer(cls, issuer: str) -> RelyingParty | None:
        """``None`` when the issuer's host is an IP address: browsers accept only a domain
        name (or ``localhost``) as RP ID (WebAuthn Level 2 §5.1.4, "valid domain")."""
        parts = urlsplit(issuer)
        host = parts.hostname or ""
        try:
            ipaddress.ip_address(host)
            return None
        except ValueError:
            pass
        if not host:
            return None
        return cls(id=host, origin=f"{parts.scheme}://{parts.netloc}", name=host)


@dataclass(frozen=True)
class Challenge:
    """What the session keeps between the options and the response."""

    purpose: str
    challenge: str  # base64url
    issued: float  # epoch seconds
    user_id: str | None
    user_verification: bool

    def to_data(self) -> dict[str, Any]:
        return {"p": self.purpose, "c": self.challenge, "t": self.issued, "u": self.user_id,
                "v": self.user_verification}

    @classmethod
    def from_data(cls, data: object) -> Challenge | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(str(data["p"]), str(data["c"]), float(data["t"]),
                       None if data["u"] is None else str(data["u"]), bool(data["v"]))
        except (KeyError, TypeError, ValueError):
            return None


def _new_challenge(purpose: Purpose, user_id: str | None, uv: bool) -> tuple[bytes, Challenge]:
    raw = secrets.token_bytes(32)
    return raw, Challenge(purpose, bytes_to_base64url(raw), time.time(), user_id, uv)


def _transports(values: list[str]) -> list[AuthenticatorTransport]:
    known = {t.value: t for t in AuthenticatorTransport}
    return [known[v] for v in values if v in known]


def _descriptors(rows: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(r.credential_id),
                                          transports=_transports(r.transports or [])) for r in rows]


# -- the credentials -------------------------------------------------------------------


def for_user(db: Session, user_id: str) -> list[Passkey]:
    return list(db.scalars(select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at)))


def has_passkey(db: Session, user_id: str) -> bool:
    return db.scalar(select(Passkey.id).where(Passkey.user_id == user_id).limit(1)) is not None


def get(db: Session, user_id: str, passkey_id: str) -> Passkey | None:
    """The user's passkey with this id, or ``None`` (another user's id is unknown)."""
    if not passkey_id.isdigit() or len(passkey_id) > 18:
        return None
    return db.scalar(select(Passkey).where(Passkey.id == int(passkey_id), Passkey.user_id == user_id))


def clean_name(name: str) -> str:
    name = " ".join((name or "").split())[:MAX_NAME]
    return name or "Passkey"


def rename(db: Session, row: Passkey, name: str, *, ip: str | None = None) -> None:
    row.name = clean_name(name)
    audit.record(db, "passkey_renamed", user_id=row.user_id, ip=ip, passkey=row.id)


def remove(db: Session, row: Passkey, *, ip: str | None = None, actor: str | None = None) -> None:
    audit.record(db, "passkey_removed", user_id=row.user_id, ip=ip, passkey=row.id,
                 **({"actor": actor} if actor else {}))
    db.delete(row)
    db.flush()
    factors.forget_mfa(db, row.user_id)


# -- registration (§7.1) ---------------------------------------------------------------


def registration_options(db: Session, rp: RelyingParty, user: User) -> tuple[str, Challenge]:
    """``PublicKeyCredentialCreationOptions`` as JSON for ``navigator.credentials.create``,
    and the challenge to keep. The user's passkeys are excluded (one per authenticator)."""
    existing = for_user(db, user.id)
    if len(existing) >= MAX_PASSKEYS:
        raise PasskeyError("too_many", _too_many())
    raw, challenge = _new_challenge("register", user.id, False)
    options = generate_registration_options(
        rp_id=rp.id, rp_name=rp.name,
        # the user handle is the random user id (the OIDC sub): no personal data (§14.6.1)
        user_id=user.id.encode(), user_name=user.email or user.username,
        user_display_name=user.name or user.username,
        challenge=raw, timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=_descriptors(existing),
    )
    return options_to_json(options), challenge


def finish_registration(db: Session, rp: RelyingParty, user: User, challenge: Challenge | None,
                        credential: str, name: str, *, ip: str | None = None) -> Passkey:
    """Verify the attestation response (attestation ``none``) and store the credential."""
    _check_challenge(challenge, "register", user.id)
    assert challenge is not None
    try:
        parsed = parse_registration_credential_json(credential)
    except (WebAuthnException, ValueError, TypeError, KeyError):
        _failed(db, user.id, ip, "register", "malformed")
        raise PasskeyError("malformed", NOT_ACCEPTED) from None
    try:
        verified = verify_registration_response(
            credential=parsed, expected_challenge=base64url_to_bytes(challenge.challenge),
            expected_rp_id=rp.id, expected_origin=rp.origin, require_user_verification=False)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        _failed(db, user.id, ip, "register", type(exc).__name__)
        raise PasskeyError(type(exc).__name__, NOT_ACCEPTED) from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if db.scalar(select(Passkey.id).where(Passkey.credential_id == credential_id)) is not None:
        _failed(db, user.id, ip, "register", "duplicate")
        raise PasskeyError("duplicate", DUPLICATE)
    if len(for_user(db, user.id)) >= MAX_PASSKEYS:
        raise PasskeyError("too_many", _too_many())
    transports = [t.value for t in (parsed.response.transports or [])][:8]
    row = Passkey(user_id=user.id, credential_id=credential_id, public_key=verified.credential_public_key,
                  sign_count=verified.sign_count, transports=transports, name=clean_name(name),
                  aaguid=str(verified.aaguid or "")[:36],
                  backup_eligible=verified.credential_device_type.value == "multi_device")
    db.add(row)
    db.flush()
    factors.forget_mfa(db, user.id)
    audit.record(db, "passkey_added", user_id=user.id, ip=ip, passkey=row.id,
                 user_verified=verified.user_verified, synced=row.backup_eligible)
    return row


# -- authentication (§7.2) -------------------------------------------------------------


def authentication_options(db: Session, rp: RelyingParty, purpose: Literal["login", "mfa"],
                           user_id: str | None = None) -> tuple[str, Challenge]:
    """``PublicKeyCredentialRequestOptions`` as JSON for ``navigator.credentials.get``.

    ``login``: passwordless, no ``allowCredentials`` (discoverable credentials) and user
    verification required. ``mfa``: the user's own passkeys, user verification preferred.
    """
    if purpose == "mfa":
        assert user_id is not None
        rows = for_user(db, user_id)
        if not rows:
            raise PasskeyError("no_passkey", NO_PASSKEY)
        raw, challenge = _new_challenge("mfa", user_id, False)
        options = generate_authentication_options(
            rp_id=rp.id, challenge=raw, timeout=TIMEOUT_MS, allow_credentials=_descriptors(rows),
            user_verification=UserVerificationRequirement.PREFERRED)
    else:
        raw, challenge = _new_challenge("login", None, True)
        options = generate_authentication_options(
            rp_id=rp.id, challenge=raw, timeout=TIMEOUT_MS, allow_credentials=[],
            user_verification=UserVerificationRequirement.REQUIRED)
    return options_to_json(options), challenge


@dataclass(frozen=True)
class Assertion:
    """An accepted assertion: the passkey (its owner is ``passkey.user_id``) and whether
    the authenticator verified the user (the UV flag)."""

    passkey: Passkey
    user_verified: bool


def finish_authentication(db: Session, rp: RelyingParty, challenge: Challenge | None, credential: str,
                          *, purpose: Literal["login", "mfa"], user_id: str | None = None,
                          ip: str | None = None) -> Assertion:
    """Verify an assertion for the kept ``challenge``; for ``mfa`` the passkey must be
    ``user_id``'s. Raises :class:`PasskeyError` (or :class:`CloneSuspected`)."""
    _check_challenge(challenge, purpose, user_id)
    assert challenge is not None
    try:
        parsed = parse_authentication_credential_json(credential)
    except (WebAuthnException, ValueError, TypeError, KeyError):
        _failed(db, user_id, ip, purpose, "malformed")
        raise PasskeyError("malformed", NOT_ACCEPTED) from None
    credential_id = bytes_to_base64url(parsed.raw_id)
    row = db.scalar(select(Passkey).where(Passkey.credential_id == credential_id[:1400]))
    if row is None or (user_id is not None and row.user_id != user_id):
        _failed(db, user_id, ip, purpose, "unknown_credential")
        raise PasskeyError("unknown_credential", UNKNOWN)
    # §7.2 step 6: the user handle, when given, must name the credential's owner
    handle = parsed.response.user_handle
    if handle is not None and handle != row.user_id.encode():
        _failed(db, row.user_id, ip, purpose, "user_handle")
        raise PasskeyError("user_handle", NOT_ACCEPTED)
    if purpose == "login" and handle is None:
        _failed(db, row.user_id, ip, purpose, "no_user_handle")
        raise PasskeyError("no_user_handle", NOT_ACCEPTED)
    try:
        # the counter is checked below, after the signature, so a clone is audited only
        # for a genuine signature (py_webauthn's own check would refuse it unannounced)
        verified = verify_authentication_response(
            credential=parsed, expected_challenge=base64url_to_bytes(challenge.challenge),
            expected_rp_id=rp.id, expected_origin=rp.origin, credential_public_key=row.public_key,
            credential_current_sign_count=0, require_user_verification=challenge.user_verification)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        _failed(db, row.user_id, ip, purpose, type(exc).__name__)
        raise PasskeyError(type(exc).__name__, NOT_ACCEPTED) from None
    new_count = verified.new_sign_count
    old_count = row.sign_count
    if (new_count or old_count) and new_count <= old_count:
        audit.record(db, "passkey_clone_suspected", user_id=row.user_id, ip=ip, passkey=row.id,
                     stored_count=old_count, presented_count=new_count)
        raise CloneSuspected("counter", NOT_ACCEPTED)
    issued = dt.datetime.fromtimestamp(challenge.issued, dt.UTC)
    claimed = db.execute(
        update(Passkey)
        .where(Passkey.id == row.id, Passkey.sign_count == old_count,
               or_(Passkey.last_used_at.is_(None), Passkey.last_used_at < issued))
        # microseconds, not utcnow()'s seconds: a challenge issued in the same second as the
        # last use must still count as older
        .values(sign_count=new_count, last_used_at=dt.datetime.now(dt.UTC))
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        _failed(db, row.user_id, ip, purpose, "replayed")
        raise PasskeyError("replayed", EXPIRED)
    db.refresh(row)
    return Assertion(row, bool(verified.user_verified))


def _check_challenge(challenge: Challenge | None, purpose: str, user_id: str | None) -> None:
    if challenge is None or challenge.purpose != purpose or challenge.user_id != user_id:
        raise PasskeyError("no_challenge", EXPIRED)
    if not 0 <= time.time() - challenge.issued <= CHALLENGE_TTL:
        raise PasskeyError("challenge_expired", EXPIRED)


def _failed(db: Session, user_id: str | None, ip: str | None, purpose: str, reason: str) -> None:
    audit.record(db, "passkey_failed", user_id=user_id, ip=ip, purpose=purpose, reason=reason)

