"""The passkeys service with py_webauthn's options and real signed responses (a software
authenticator with P-256 keys), on SQLite and Postgres: registration, passwordless and
second-factor assertions, counters and clone detection, single-use challenges."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from sqlalchemy import select

from authserver.accounts import mfa as factors
from authserver.accounts import service as accounts
from authserver.audit.models import AuditEvent
from authserver.db import transaction
from authserver.passkeys import service as passkeys
from authserver.passkeys.errors import CloneSuspected, PasskeyError
from authserver.passkeys.models import Passkey
from tests.passkeys.authenticator import Authenticator, b64

RP = passkeys.RelyingParty(id="auth.example.com", origin="https://auth.example.com", name="auth.example.com")


def _register(ctx, user, device: Authenticator, name: str = "Laptop") -> Passkey:
    with transaction(ctx.sessions) as db:
        options, challenge = passkeys.registration_options(db, RP, accounts.get_user(db, user.id))
        row = passkeys.finish_registration(db, RP, accounts.get_user(db, user.id), challenge,
                                           device.create(json.loads(options)), name)
        db.expunge(row)
        return row


def _login(ctx, device: Authenticator, **kw):
    with transaction(ctx.sessions) as db:
        options, challenge = passkeys.authentication_options(db, RP, "login")
    with transaction(ctx.sessions) as db:
        try:
            return passkeys.finish_authentication(db, RP, challenge, device.get(json.loads(options), **kw),
                                                  purpose="login")
        except PasskeyError as exc:
            error = exc  # committed like a page's refusal (the audit rows stay)
    raise error


def _events(ctx, name):
    with transaction(ctx.sessions) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == name)))


def _refused(ctx, fn, reason: str) -> PasskeyError:
    """``fn`` raises PasskeyError(reason); the transaction commits, as the pages' does (audit rows)."""
    with transaction(ctx.sessions) as db, pytest.raises(PasskeyError) as caught:
        fn(db)
    assert caught.value.reason == reason, caught.value.reason
    return caught.value


def test_for_issuer_takes_host_and_origin_and_refuses_ip_hosts():
    rp = passkeys.RelyingParty.for_issuer("https://login.example.com:8443/tenant")
    assert rp is not None and (rp.id, rp.origin) == ("login.example.com", "https://login.example.com:8443")
    assert passkeys.RelyingParty.for_issuer("http://127.0.0.1:8000") is None
    assert passkeys.RelyingParty.for_issuer("http://[::1]:8000") is None
    assert passkeys.RelyingParty.for_issuer("http://localhost:8000").id == "localhost"
    assert passkeys.RelyingParty.for_issuer("https:///tenant") is None  # no host: no relying party


def test_registration_options_ask_for_a_discoverable_credential_without_attestation(ctx, make_user):
    user = make_user()
    device = Authenticator(RP.origin)
    first = _register(ctx, user, device)
    with transaction(ctx.sessions) as db:
        options, challenge = passkeys.registration_options(db, RP, accounts.get_user(db, user.id))
    public = json.loads(options)
    assert public["rp"] == {"id": "auth.example.com", "name": "auth.example.com"}
    assert public["attestation"] == "none" and public["timeout"] == passkeys.TIMEOUT_MS
    assert public["authenticatorSelection"]["residentKey"] == "required"
    assert public["authenticatorSelection"]["requireResidentKey"] is True
    assert public["user"]["id"] == b64(user.id.encode())
    assert [d["id"] for d in public["excludeCredentials"]] == [first.credential_id]
    assert challenge.purpose == "register" and challenge.user_id == user.id
    assert public["challenge"] == challenge.challenge and len(challenge.challenge) >= 43


def test_register_then_sign_in_without_password(ctx, make_user):
    user = make_user()
    device = Authenticator(RP.origin)
    row = _register(ctx, user, device, name="  My   phone  ")
    assert row.name == "My phone" and row.sign_count == 0 and row.transports == ["internal"]
    assert row.user_id == user.id and row.credential_id == b64(device.credentials[0].id)
    with transaction(ctx.sessions) as db:
        assert factors.has_mfa(db, user.id)
        options, _ = passkeys.authentication_options(db, RP, "login")
    public = json.loads(options)
    assert public["userVerification"] == "required" and public["allowCredentials"] == []
    assert public["timeout"] == passkeys.TIMEOUT_MS
    found = _login(ctx, device)
    assert found.passkey.user_id == user.id and found.user_verified
    with transaction(ctx.sessions) as db:
        stored = db.get(Passkey, row.id)
        assert stored.sign_count == 1 and stored.last_used_at is not None
    assert len(_events(ctx, "passkey_added")) == 1


def test_passwordless_needs_user_verification_and_a_user_handle(ctx, make_user):
    user = make_user()
    device = Authenticator(RP.origin)
    _register(ctx, user, device)
    with pytest.raises(PasskeyError) as caught:
        _login(ctx, device, uv=False)
    assert caught.value.reason == "InvalidAuthenticationResponse"
    with pytest.raises(PasskeyError) as caught:
        _login(ctx, device, user_handle=False)
    assert caught.value.reason == "no_user_handle"
    assert _events(ctx, "passkey_failed")[-1].detail["reason"] == "no_user_handle"
    other = make_user("bob")
    with pytest.raises(PasskeyError) as caught:  # the handle names someone else (§7.2 step 6)
        _login(ctx, device, user_handle=other.id.encode())
    assert caught.value.reason == "user_handle"


def test_second_factor_accepts_only_the_users_own_passkey_and_no_uv_needed(ctx, make_user):
    alice, bob = make_user(), make_user("bob")
    alice_key, bob_key = Authenticator(RP.origin, uv=False), Authenticator(RP.origin)
    _register(ctx, alice, alice_key)
    _register(ctx, bob, bob_key)
    with transaction(ctx.sessions) as db:
        options, challenge = passkeys.authentication_options(db, RP, "mfa", alice.id)
    public = json.loads(options)
    assert public["userVerification"] == "preferred" and public["timeout"] == passkeys.TIMEOUT_MS
    assert [d["id"] for d in public["allowCredentials"]] == [b64(alice_key.credentials[0].id)]
    _refused(ctx, lambda db: passkeys.finish_authentication(
        db, RP, challenge, bob_key.get(public, credential=bob_key.credentials[0]), purpose="mfa",
        user_id=alice.id), "unknown_credential")
    with transaction(ctx.sessions) as db:
        options, challenge = passkeys.authentication_options(db, RP, "mfa", alice.id)
        found = passkeys.finish_authentication(db, RP, challenge, alice_key.get(json.loads(options)),
                                               purpose="mfa", user_id=alice.id)
    assert found.passkey.user_id == alice.id and not found.user_verified
    with transaction(ctx.sessions) as db, pytest.raises(PasskeyError):
        passkeys.authentication_options(db, RP, "mfa", make_user("carol").id)  # no passkey: no options


def test_registration_is_refused_for_the_wrong_origin_rp_challenge_purpose_user_or_age(ctx, make_user):
    user, other = make_user(), make_user("bob")
    device = Authenticator(RP.origin)
    for change in ("origin", "rp_id", "challenge", "purpose", "user", "expired"):
        with transaction(ctx.sessions) as db:
            options, challenge = passkeys.registration_options(db, RP, accounts.get_user(db, user.id))
        public = json.loads(options)
        kw = {}
        if change == "origin":
            kw["origin"] = "https://evil.example.net"
        elif change == "rp_id":
            kw["rp_id"] = "evil.example.net"
        elif change == "challenge":
            public["challenge"] = b64(b"x" * 32)
        elif change == "purpose":
            challenge = dataclasses.replace(challenge, purpose="login")
        elif change == "user":
            challenge = dataclasses.replace(challenge, user_id=other.id)
        else:
            challenge = dataclasses.replace(challenge, issued=time.time() - passkeys.CHALLENGE_TTL - 1)
        response = device.create(public, **kw)
        reason = {"purpose": "no_challenge", "user": "no_challenge", "expired": "challenge_expired"}.get(
            change, "InvalidRegistrationResponse")
        refused = _refused(ctx, lambda db, c=challenge, r=response: passkeys.finish_registration(
            db, RP, accounts.get_user(db, user.id), c, r, "x"), reason)
        if change == "expired":  # the page shows this message: "start again", not a generic failure
            assert refused.hint == passkeys.EXPIRED
    with transaction(ctx.sessions) as db:
        assert db.scalar(select(Passkey)) is None


def test_assertion_is_refused_for_the_wrong_origin_rp_challenge_or_signature(ctx, make_user):
    user = make_user()
    device = Authenticator(RP.origin)
    _register(ctx, user, device)
    for change in ("origin", "rp_id", "challenge", "signature", "none"):
        with transaction(ctx.sessions) as db:
            options, challenge = passkeys.authentication_options(db, RP, "login")
        public = json.loads(options)
        kw = {"origin": "https://evil.example.net"} if change == "origin" else (
            {"rp_id": "evil.example.net"} if change == "rp_id" else {})
        if change == "challenge":
            public["challenge"] = b64(b"y" * 32)
        response = json.loads(device.get(public, **kw))
        if change == "signature":
            response["response"]["signature"] = b64(b"\x30\x06\x02\x01\x01\x02\x01\x01")
        kept = None if change == "none" else challenge
        reason = "no_challenge" if change == "none" else "InvalidAuthenticationResponse"
        _refused(ctx, lambda db, c=kept, r=json.dumps(response): passkeys.finish_authentication(
            db, RP, c, r, purpose="login"), reason)
    assert len(_events(ctx, "passkey_failed")) == 4  # the checks after the challenge's are audited


def test_a_counter_that_does_not_increase_is_a_suspected_clone(ctx, make_user):
    user = make_user()
    device = Authenticator(RP.origin)
    row = _register(ctx, user, device)
    _login(ctx, device)
    _login(ctx, device)  # counter 2
    with pytest.raises(CloneSuspected) as caught:
        _login(ctx, device, count=2)  # the same counter again: a copy of the key
    assert caught.value.reason == "counter" and caught.value.hint == passkeys.NOT_ACCEPTED
    with pytest.raises(CloneSuspected):
        _login(ctx, device, count=1)
    with pytest.raises(CloneSuspected):  # WebAuthn §6.1.1: a counter seen above 0 may not fall back to 0
        _login(ctx, device, count=0)
    events = _events(ctx, "passkey_clone_suspected")
    assert len(events) == 3 and events[0].user_id == user.id
    assert events[0].detail["stored_count"] == 2 and events[0].detail["presented_count"] == 2
    with transaction(ctx.sessions) as db:
        assert db.get(Passkey, row.id).sign_count == 2
    assert _login(ctx, device).passkey.id == row.id  # the genuine authenticator goes on


def test_a_passkey_without_a_counter_stays_usable(ctx, make_user):
    user = make_user()
    device = Authenticator(RP.origin, counter=False)  # synced passkeys send 0 every time
    _register(ctx, user, device)
    for _ in range(3):
        assert _login(ctx, device).passkey.sign_count == 0
    assert not _events(ctx, "passkey_clone_suspected")


def test_a_challenge_and_its_assertion_are_accepted_once(ctx, make_user):
    user = make_user()
    device = Authenticator(RP.origin, counter=False)  # no counter to catch the replay
    _register(ctx, user, device)
    with transaction(ctx.sessions) as db:
        options, challenge = passkeys.authentication_options(db, RP, "login")
    response = device.get(json.loads(options))
    with transaction(ctx.sessions) as db:
        passkeys.finish_authentication(db, RP, challenge, response, purpose="login")
    # the same sealed cookie and response played back: the challenge predates the last use
    _refused(ctx, lambda db: passkeys.finish_authentication(db, RP, challenge, response, purpose="login"),
             "replayed")


def test_a_credential_is_registered_once(ctx, make_user):
    user = make_user()
    device = Authenticator(RP.origin)
    with transaction(ctx.sessions) as db:
        options, challenge = passkeys.registration_options(db, RP, accounts.get_user(db, user.id))
    response = device.create(json.loads(options))
    with transaction(ctx.sessions) as db:
        passkeys.finish_registration(db, RP, accounts.get_user(db, user.id), challenge, response, "a",
                                     ip="192.0.2.5")
    _refused(ctx, lambda db: passkeys.finish_registration(db, RP, accounts.get_user(db, user.id), challenge,
                                                          response, "b"), "duplicate")
    failed = _events(ctx, "passkey_failed")
    assert [(e.user_id, e.detail["purpose"], e.detail["reason"]) for e in failed] == [
        (user.id, "register", "duplicate")]
    added = _events(ctx, "passkey_added")
    with transaction(ctx.sessions) as db:
        assert [(e.detail["passkey"], e.ip) for e in added] == [(db.scalar(select(Passkey.id)), "192.0.2.5")]


def test_at_most_max_passkeys_per_user(ctx, make_user, monkeypatch):
    monkeypatch.setattr(passkeys, "MAX_PASSKEYS", 2)
    user = make_user()
    for n in range(2):
        _register(ctx, user, Authenticator(RP.origin), name=f"key {n}")
    device = Authenticator(RP.origin)
    with transaction(ctx.sessions) as db, pytest.raises(PasskeyError) as refused:
        passkeys.registration_options(db, RP, accounts.get_user(db, user.id))
    assert (refused.value.reason, str(refused.value)) == ("too_many", "You can register at most 2 passkeys.")
    monkeypatch.setattr(passkeys, "MAX_PASSKEYS", 3)  # options given while there was room ...
    with transaction(ctx.sessions) as db:
        options, challenge = passkeys.registration_options(db, RP, accounts.get_user(db, user.id))
    response = device.create(json.loads(options))
    monkeypatch.setattr(passkeys, "MAX_PASSKEYS", 2)  # ... are refused once the limit is reached
    _refused(ctx, lambda db: passkeys.finish_registration(db, RP, accounts.get_user(db, user.id), challenge,
                                                          response, "c"), "too_many")


def test_malformed_responses_are_refused_not_crashing(ctx, make_user):
    user = make_user()
    with transaction(ctx.sessions) as db:
        _, reg = passkeys.registration_options(db, RP, accounts.get_user(db, user.id))
        _, auth = passkeys.authentication_options(db, RP, "login")
    for junk in ("", "{}", "[]", "not json", '{"id": 1}', json.dumps({"id": "a", "rawId": "a", "type": "public-key",
                                                                       "response": {}})):
        _refused(ctx, lambda db, j=junk: passkeys.finish_registration(db, RP, accounts.get_user(db, user.id), reg,
                                                                      j, "x"), "malformed")
        _refused(ctx, lambda db, j=junk: passkeys.finish_authentication(db, RP, auth, j, purpose="login"),
                 "malformed")


def test_rename_remove_and_admin_reset(ctx, make_user):
    user = make_user()
    device = Authenticator(RP.origin)
    row = _register(ctx, user, device)
    second = _register(ctx, user, Authenticator(RP.origin))
    with transaction(ctx.sessions) as db:
        assert passkeys.get(db, make_user("bob").id, str(row.id)) is None  # not bob's
        assert passkeys.get(db, user.id, "abc") is None
        passkeys.rename(db, passkeys.get(db, user.id, str(row.id)), "\u200b" * 3 + " " * 5, ip="192.0.2.7")
        assert db.get(Passkey, row.id).name == "\u200b\u200b\u200b"  # collapses spaces only
        passkeys.remove(db, passkeys.get(db, user.id, str(row.id)), ip="192.0.2.8")
        assert [k.id for k in passkeys.for_user(db, user.id)] == [second.id]
        assert accounts.reset_mfa(db, accounts.get_user(db, user.id), actor="admin")
        assert passkeys.for_user(db, user.id) == [] and not factors.has_mfa(db, user.id)
    [renamed] = _events(ctx, "passkey_renamed")
    assert (renamed.user_id, renamed.ip, renamed.detail) == (user.id, "192.0.2.7", {"passkey": row.id})
    removed = {e.detail["passkey"]: e for e in _events(ctx, "passkey_removed")}
    assert set(removed) == {row.id, second.id}
    assert (removed[row.id].user_id, removed[row.id].ip, removed[row.id].detail) == (
        user.id, "192.0.2.8", {"passkey": row.id})
    assert (removed[second.id].user_id, removed[second.id].detail) == (
        user.id, {"passkey": second.id, "actor": "admin"})
