"""``accounts.mfa.has_mfa``: asked once per request (one database session), and read
anew in that session after anything adds, confirms or removes a factor, so a request
that enrols a factor is never answered from before it."""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa

from authserver.accounts import mfa as factors
from authserver.accounts import service as accounts
from authserver.accounts.models import TotpFactor
from authserver.db import transaction, utcnow
from authserver.passkeys import service as passkeys
from tests.account_flows import enrol, totp_code
from tests.passkeys.authenticator import Authenticator

RP = passkeys.RelyingParty(id="auth.example.com", origin="https://auth.example.com", name="auth.example.com")


def _counting(engine: Any) -> list[str]:
    seen: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    return seen


def test_asked_twice_in_one_session_is_one_query(ctx: Any, make_user: Any) -> None:
    user = make_user()
    seen = _counting(ctx.engine)
    with transaction(ctx.sessions) as db:
        before = len(seen)
        assert not factors.has_mfa(db, user.id) and not factors.has_mfa(db, user.id)
        assert len([s for s in seen[before:] if "EXISTS" in s]) == 1
    with transaction(ctx.sessions) as db:  # a new request asks again
        before = len(seen)
        assert not factors.has_mfa(db, user.id)
        assert len([s for s in seen[before:] if "EXISTS" in s]) == 1


def test_totp_confirmed_and_disabled_in_the_same_session_is_seen(ctx: Any, make_user: Any) -> None:
    user = make_user()
    if time.time() % 30 > 29:  # the code below must stay valid
        time.sleep(1.1)
    with transaction(ctx.sessions) as db:
        assert not factors.has_mfa(db, user.id)
        secret = factors.start_enrolment(db, ctx.box, user.id)
        assert not factors.has_mfa(db, user.id)  # not confirmed: not a factor
        assert factors.confirm_enrolment(db, ctx.box, user.id, totp_code(secret)) is not None
        assert factors.has_mfa(db, user.id)
        factors.disable(db, user.id)
        assert not factors.has_mfa(db, user.id)
        assert db.get(TotpFactor, user.id) is None


def test_a_passkey_added_or_removed_in_the_same_session_is_seen(ctx: Any, make_user: Any) -> None:
    user = make_user()
    device = Authenticator(RP.origin)
    with transaction(ctx.sessions) as db:
        assert not factors.has_mfa(db, user.id)
        options, challenge = passkeys.registration_options(db, RP, accounts.get_user(db, user.id))
        row = passkeys.finish_registration(db, RP, accounts.get_user(db, user.id), challenge,
                                           device.create(json.loads(options)), "Laptop")
        assert factors.has_mfa(db, user.id)
        passkeys.remove(db, row)
        assert not factors.has_mfa(db, user.id)


def test_another_users_answer_is_kept_apart(ctx: Any, make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    with transaction(ctx.sessions) as db:
        assert not factors.has_mfa(db, alice.id)
        secret = factors.start_enrolment(db, ctx.box, bob.id)
        assert factors.confirm_enrolment(db, ctx.box, bob.id, totp_code(secret)) is not None
        assert factors.has_mfa(db, bob.id) and not factors.has_mfa(db, alice.id)


def test_a_change_not_yet_flushed_is_seen(ctx: Any, make_user: Any) -> None:
    """Asking again after ``forget_mfa`` flushes the change first (autoflush)."""
    user = make_user()
    with transaction(ctx.sessions) as db:
        factors.start_enrolment(db, ctx.box, user.id)
        assert not factors.has_mfa(db, user.id)
        db.get(TotpFactor, user.id).confirmed_at = utcnow()  # in memory only
        factors.forget_mfa(db, user.id)
        assert factors.has_mfa(db, user.id)


def test_an_admin_reset_after_asking_is_seen(ctx: Any, make_user: Any) -> None:
    user = make_user()
    enrol(ctx, user.id)
    with transaction(ctx.sessions) as db:
        assert factors.has_mfa(db, user.id)
        assert accounts.reset_mfa(db, accounts.get_user(db, user.id), actor="admin")
        assert not factors.has_mfa(db, user.id)


def test_loading_the_user_answers_it_without_another_statement(ctx: Any, make_user: Any) -> None:
    """The pages' user loads (by id, by username, by e-mail address) read the answer in the
    same statement (``accounts.mfa.USER_HAS_MFA``): right for a TOTP factor, a passkey and
    none, and no EXISTS query after."""
    plain, totp_user, passkey_user = make_user("plain"), make_user("totp"), make_user("passkey")
    enrol(ctx, totp_user.id)
    device = Authenticator(RP.origin)
    with transaction(ctx.sessions) as db:
        options, challenge = passkeys.registration_options(db, RP, accounts.get_user(db, passkey_user.id))
        passkeys.finish_registration(db, RP, accounts.get_user(db, passkey_user.id), challenge,
                                     device.create(json.loads(options)), "Laptop")
    seen = _counting(ctx.engine)
    for load in (lambda db, u: accounts.get_user(db, u.id, with_roles=False),
                 lambda db, u: accounts.find_by_login(db, u.username, with_roles=False),
                 lambda db, u: accounts.find_by_login(db, u.email, with_roles=False)):
        for user, expected in ((plain, False), (totp_user, True), (passkey_user, True)):
            with transaction(ctx.sessions) as db:
                assert load(db, user).id == user.id
                before = len(seen)
                assert factors.has_mfa(db, user.id) is expected
                assert seen[before:] == []


def test_a_factor_confirmed_after_the_user_loaded_is_seen(ctx: Any, make_user: Any) -> None:
    user = make_user()
    if time.time() % 30 > 29:
        time.sleep(1.1)
    with transaction(ctx.sessions) as db:
        assert accounts.get_user(db, user.id, with_roles=False) is not None  # answers "no factor"
        secret = factors.start_enrolment(db, ctx.box, user.id)
        assert factors.confirm_enrolment(db, ctx.box, user.id, totp_code(secret)) is not None
        assert factors.has_mfa(db, user.id)
