"""Sign-up with an e-mailed code, and password reset."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from authserver.accounts.models import EmailCode, User
from authserver.db import transaction
from authserver.settings import RateLimit
from tests.account_flows import login, outbox_codes
from tests.conftest import PASSWORD
from tests.flows import form_value

NEW_PASSWORD = "a much longer new passphrase"


def _code(settings, to):
    mails = [body for rcpt, body in outbox_codes(settings) if rcpt == to]
    match = re.search(r"\b(\d{8})\b", mails[-1])
    return match.group(1) if match else None


def _signup(client, username="bob", email="bob@example.com", password=PASSWORD):
    page = client.get("/signup")
    assert page.status_code == 200
    return client.post("/signup", data={"csrf_token": form_value(page.text, "csrf_token"), "rid": "",
                                        "username": username, "email": email, "password": password})


def _verify(client, code):
    page = client.get("/signup/verify")
    return client.post("/signup/verify", data={"csrf_token": form_value(page.text, "csrf_token"), "rid": "",
                                               "code": code})


def test_signup_with_code(client, ctx, settings):
    r = _signup(client)
    assert r.status_code == 303 and r.headers["location"] == "/signup/verify"
    code = _code(settings, "bob@example.com")
    with transaction(ctx.sessions) as db:
        row = db.scalar(select(EmailCode))
        assert code not in row.code_hash and PASSWORD not in str(row.pending)
        assert row.pending["password_hash"].startswith("$argon2id$")
        assert db.scalar(select(User)) is None
    wrong = "00000000" if code != "00000000" else "11111111"
    assert "That code is not valid" in _verify(client, wrong).text
    r = _verify(client, code)
    assert r.status_code == 303 and r.headers["location"] == "/account"
    assert client.get("/account").status_code == 200
    with transaction(ctx.sessions) as db:
        user = db.scalar(select(User))
        assert user.username == "bob" and user.email_verified
    client.cookies.clear()
    assert login(client, "bob").headers["location"] == "/account"


def test_signup_code_allows_five_attempts(client, settings):
    _signup(client)
    code = _code(settings, "bob@example.com")
    wrong = "00000000" if code != "00000000" else "11111111"
    for _ in range(4):
        assert _verify(client, wrong).status_code == 200
    assert _verify(client, wrong).status_code == 400  # fifth wrong guess ends the code
    assert client.get("/signup/verify").headers["location"] == "/signup"


def test_signup_rejects_weak_password_and_taken_username(client, make_user):
    make_user()
    r = _signup(client, password="password")
    assert (r.status_code == 200 and "too common" in r.text) or "at least" in r.text
    r = _signup(client, username="alice", email="new@example.com")
    assert r.status_code == 200 and "taken" in r.text


def test_signup_with_registered_email_looks_the_same(client, ctx, settings, make_user):
    make_user()
    r = _signup(client, username="bob", email="alice@example.com")
    assert r.status_code == 303 and r.headers["location"] == "/signup/verify"
    mails = outbox_codes(settings)
    assert len(mails) == 1 and not re.search(r"\d{8}", mails[0][1])


@pytest.mark.parametrize("settings_overrides", [{"signup_enabled": False}])
def test_signup_disabled(client):
    assert client.get("/signup").status_code == 404


def _reset(client, email):
    page = client.get("/password/reset")
    return client.post("/password/reset", data={"csrf_token": form_value(page.text, "csrf_token"),
                                                "email": email})


def _confirm(client, code, password=NEW_PASSWORD):
    page = client.get("/password/reset/confirm")
    return client.post("/password/reset/confirm", data={
        "csrf_token": form_value(page.text, "csrf_token"), "code": code, "new_password": password,
        "confirm_password": password})


def test_password_reset(client, ctx, settings, make_user):
    make_user()
    r = _reset(client, "alice@example.com")
    assert r.status_code == 303 and r.headers["location"] == "/password/reset/confirm"
    code = _code(settings, "alice@example.com")
    assert "too common" in _confirm(client, code, "password").text  # no guess spent
    r = _confirm(client, code)
    assert r.status_code == 303 and r.headers["location"] == "/password/reset/done"
    assert client.get(r.headers["location"]).status_code == 200
    assert login(client, password=PASSWORD).status_code == 200
    assert login(client, password=NEW_PASSWORD).headers["location"] == "/account"


def test_reset_answers_alike_for_unknown_email(client, settings, make_user):
    make_user()
    known = _reset(client, "alice@example.com")
    unknown = _reset(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 303
    assert known.headers["location"] == unknown.headers["location"]
    assert [to for to, _ in outbox_codes(settings)] == ["alice@example.com"]
    page_known = client.get("/password/reset/confirm").text
    assert "If an account uses that address" in page_known
    assert "not valid" in _confirm(client, "12345678").text


@pytest.mark.parametrize("settings_overrides", [{"rate_limits": True,
                                                 "rate_limit_registration": RateLimit(2, 60)}])
def test_registration_is_rate_limited(client):
    assert _reset(client, "a@example.com").status_code == 303
    assert _signup(client).status_code == 303
    r = _reset(client, "a@example.com")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def _attempts(ctx, email):
    with transaction(ctx.sessions) as db:
        return db.scalars(select(EmailCode.attempts).where(EmailCode.email == email)).one()


@pytest.mark.parametrize("address", ["alice@example.com", "nobody@example.com"])
def test_reset_checks_the_code_before_the_account_rule(client, ctx, settings, make_user, address):
    """A password based on the account's username gets, with a wrong code, the same answer for
    every address, and spends an attempt: the rule cannot tell who owns an address."""
    make_user(username="zebrastripe", email="alice@example.com")
    _reset(client, address)
    r = _confirm(client, "12345678", "zebrastripe2024")
    assert r.status_code == 200 and "not valid" in r.text and "username" not in r.text
    assert _attempts(ctx, address) == 1


def test_reset_account_rule_after_a_right_code_keeps_the_code(client, ctx, settings, make_user):
    make_user(username="zebrastripe", email="alice@example.com")
    _reset(client, "alice@example.com")
    code = _code(settings, "alice@example.com")
    assert "based on your username" in _confirm(client, code, "zebrastripe2024").text
    assert _attempts(ctx, "alice@example.com") == 1
    r = _confirm(client, code)
    assert r.status_code == 303 and r.headers["location"] == "/password/reset/done"
    assert _confirm(client, code).status_code == 400  # used up by the reset
