"""``authserver users …``."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from authserver.accounts.service import lockout_key
from authserver.cli import users as users_cli
from authserver.db import transaction
from authserver.sessions.models import BrowserSession
from tests.cli.conftest import assert_error, audit_events, get_user
from tests.conftest import PASSWORD
from tests.flows import introspect, tokens


@pytest.fixture
def ops_role(ctx):
    """Roles must exist before they are given (the roles domain); ``ops`` is not built in."""
    from tests.conftest import ensure_roles

    with transaction(ctx.sessions) as db:
        ensure_roles(db, ["ops"])


def test_users_create_reads_one_line_of_stdin(run, ctx, ops_role):
    status, out, err = run("users", "create", "--username", "Alice", "--email", "alice@example.com",
                           "--password-stdin", "--role", "admin", "--role", "support", "--name", "Alice A",
                           stdin=PASSWORD + "\nsecond line ignored\n")
    assert status == 0, err
    assert "alice" in out and PASSWORD not in out + err
    user = get_user(ctx, "alice")
    assert user is not None and user.role_names == ["admin", "support"] and user.name == "Alice A"
    assert ctx.passwords.verify(user.password_hash, PASSWORD)
    assert len(audit_events(ctx, "user_created")) == 1


def test_users_create_strips_crlf(run, ctx):
    assert run("users", "create", "--username", "bob", "--email", "bob@example.com", "--password-stdin",
               stdin=PASSWORD + "\r\n")[0] == 0
    assert ctx.passwords.verify(get_user(ctx, "bob").password_hash, PASSWORD)


def test_users_create_empty_stdin(run):
    assert_error(run("users", "create", "--username", "bob", "--email", "bob@example.com",
                     "--password-stdin", stdin=""), "stdin")


def test_users_create_prompts_twice(run, ctx, monkeypatch):
    answers = iter([PASSWORD, PASSWORD])
    prompts: list[str] = []
    monkeypatch.setattr(users_cli, "stdin_is_tty", lambda: True)
    monkeypatch.setattr(users_cli.getpass, "getpass", lambda prompt: prompts.append(prompt) or next(answers))
    assert run("users", "create", "--username", "carol", "--email", "carol@example.com")[0] == 0
    assert len(prompts) == 2
    assert get_user(ctx, "carol") is not None


def test_users_create_prompt_mismatch(run, ctx, monkeypatch):
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr(users_cli, "stdin_is_tty", lambda: True)
    monkeypatch.setattr(users_cli.getpass, "getpass", lambda prompt: next(answers))
    assert_error(run("users", "create", "--username", "carol", "--email", "carol@example.com"), "differ")
    assert get_user(ctx, "carol") is None


def test_users_create_without_terminal_needs_password_stdin(run):
    assert_error(run("users", "create", "--username", "carol", "--email", "carol@example.com"),
                 "--password-stdin")


def test_password_is_never_an_argument(run):
    assert_error(run("users", "create", "--username", "dave", "--email", "dave@example.com",
                     "--password", PASSWORD))


@pytest.mark.parametrize(("argv", "stdin", "fragment"), [
    (["--username", "erin", "--email", "erin@example.com"], "password\n", "common"),
    (["--username", "erin", "--email", "erin@example.com"], "short\n", "at least"),
    (["--username", "erin", "--email", "not-an-email"], PASSWORD + "\n", "e-mail"),
    (["--username", "x", "--email", "erin@example.com"], PASSWORD + "\n", "username"),
    (["--username", "erin", "--email", "erin@example.com", "--role", "bad role"], PASSWORD + "\n", "role"),
])
def test_users_create_rejects(run, ctx, argv, stdin, fragment):
    result = run("users", "create", *argv, "--password-stdin", stdin=stdin)
    assert_error(result, fragment)
    assert PASSWORD not in result[2]
    assert get_user(ctx, "erin") is None


def test_users_create_duplicate(run, make_user):
    make_user("alice")
    assert_error(run("users", "create", "--username", "alice", "--email", "other@example.com",
                     "--password-stdin", stdin=PASSWORD + "\n"), "already exists")


def test_users_list(run, make_user):
    make_user("alice", roles=["admin"])
    make_user("bob")
    status, out, _ = run("users", "list")
    lines = out.splitlines()
    assert status == 0
    assert lines[0].split() == ["USERNAME", "EMAIL", "ROLES", "DISABLED", "CREATED"]
    assert lines[1].split()[:4] == ["alice", "alice@example.com", "admin", "no"]
    assert lines[2].split()[:4] == ["bob", "bob@example.com", "-", "no"]


def test_users_disable(run, ctx, make_user):
    make_user("alice")
    status, out, _ = run("users", "disable", "alice")
    assert status == 0 and out == "disabled alice: 0 session(s) ended, 0 refresh token(s) revoked\n"
    assert get_user(ctx, "alice").disabled is True
    [event] = audit_events(ctx, "user_disabled")
    assert event.detail["actor"] == "cli"
    assert run("users", "disable", "alice@example.com")[1] == "alice is already disabled\n"
    status, out, _ = run("users", "disable", "alice", "--json")
    assert json.loads(out) == {"username": "alice", "already_disabled": True, "sessions_ended": 0,
                               "refresh_tokens_revoked": 0}


# `client` before `run`: the app sets up logging before capsys starts capturing.
def test_users_disable_ends_sessions_and_revokes_tokens(client, make_user, make_client, run, ctx, settings):
    user = make_user("alice")
    cid, secret = make_client()
    issued = tokens(client, cid, secret)  # logs alice in: one browser session
    with transaction(ctx.sessions) as db:
        assert db.scalar(sa.select(sa.func.count()).where(BrowserSession.user_id == user.id)) == 1

    status, out, _ = run("users", "disable", "alice")
    assert status == 0 and out == "disabled alice: 1 session(s) ended, 1 refresh token(s) revoked\n"

    with transaction(ctx.sessions) as db:
        assert db.scalar(sa.select(sa.func.count()).where(BrowserSession.user_id == user.id)) == 0
    assert introspect(client, cid, secret, issued["refresh_token"]) == {"active": False}
    if settings.redis_url is not None:
        # The revoked-jti list is shared through Redis; without it, it lives in each
        # process (tests/accounts/test_disable.py checks the service on both backends).
        assert introspect(client, cid, secret, issued["access_token"]) == {"active": False}


def test_users_disable_unknown(run):
    assert_error(run("users", "disable", "nobody"), "no such user")


def test_users_unlock_clears_a_lock(run, ctx, settings, make_user):
    user = make_user("alice")
    key = lockout_key(user, "alice")
    for _ in range(settings.lockout_account_threshold):
        ctx.lockout.register_failure(key, "192.0.2.1")
    assert ctx.lockout.check(key, "192.0.2.9") > 0
    result = run("users", "unlock", "alice")
    if settings.redis_url is None:
        # embedded default: the counters live in the server process, not reachable from here
        assert_error(result, "AUTHSERVER_REDIS_URL")
        return
    assert result[0] == 0, result
    assert ctx.lockout.check(key, "192.0.2.9") == 0
    assert len(audit_events(ctx, "account_unlocked")) == 1


def test_users_unlock_with_redis_down(run, monkeypatch, make_user):
    make_user("alice")
    monkeypatch.setenv("AUTHSERVER_REDIS_URL", "redis://127.0.0.1:1/0")
    assert_error(run("users", "unlock", "alice"), "Redis")


def test_users_unlock_unknown(run, settings):
    result = run("users", "unlock", "nobody")
    assert_error(result, "no such user" if settings.redis_url else "AUTHSERVER_REDIS_URL")


def test_users_create_and_list_json(run, ctx, ops_role):
    status, out, _ = run("users", "create", "--username", "alice", "--email", "alice@example.com",
                         "--password-stdin", "--role", "support", "--json", stdin=PASSWORD + "\n")
    assert status == 0
    created = json.loads(out)
    assert created["sub"] == get_user(ctx, "alice").id
    assert {k: created[k] for k in ("username", "email", "roles", "disabled")} == {
        "username": "alice", "email": "alice@example.com", "roles": ["support"], "disabled": False}
    status, out, _ = run("users", "list", "--json")
    assert status == 0 and json.loads(out) == [created]


def test_users_show(run, make_user):
    user = make_user("alice", roles=["admin", "ops"])
    status, out, _ = run("users", "show", "alice@example.com")
    assert status == 0
    fields = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in out.splitlines()}
    assert fields["sub"] == user.id and fields["roles"] == "admin,ops" and fields["mfa"] == "no"
    body = json.loads(run("users", "show", "alice", "--json")[1])
    assert body["sub"] == user.id and body["roles"] == ["admin", "ops"] and body["mfa"] is False


def test_users_enable(run, ctx, make_user):
    make_user("alice")
    assert run("users", "enable", "alice")[1] == "alice is not disabled\n"
    run("users", "disable", "alice")
    assert run("users", "enable", "alice")[1] == "enabled alice\n"
    assert get_user(ctx, "alice").disabled is False
    assert [e.detail["actor"] for e in audit_events(ctx, "user_enabled")] == ["cli"]


def test_users_delete(run, ctx, make_user):
    user = make_user("alice")
    status, out, _ = run("users", "delete", "alice")
    assert status == 0 and out.startswith("deleted alice")
    assert get_user(ctx, "alice") is None
    assert [e.user_id for e in audit_events(ctx, "user_deleted")] == [user.id]
    assert_error(run("users", "delete", "alice"), "no such user")


def test_users_set_roles(run, ctx, make_user, ops_role):
    make_user("alice", roles=["admin"])
    assert run("users", "set-roles", "alice", "auditor", "support", "auditor")[1] == "alice: roles auditor, support\n"
    assert get_user(ctx, "alice").role_names == ["auditor", "support"]
    assert run("users", "set-roles", "alice")[1] == "alice: roles (none)\n"
    assert get_user(ctx, "alice").role_names == []
    assert_error(run("users", "set-roles", "alice", "bad role"), "invalid role name")
    assert len(audit_events(ctx, "user_roles_changed")) == 2


def test_users_set_password_revokes_and_changes(run, make_user, ctx):
    from authserver.accounts.models import User
    from authserver.audit.models import AuditEvent
    from authserver.db import transaction

    make_user("alice")
    status, out, err = run("users", "set-password", "alice", "--password-stdin",
                           stdin="quiet orchard lantern ninety\n")
    assert status == 0, err
    assert "password set" in out
    with transaction(ctx.sessions) as db:
        user = db.query(User).filter_by(username="alice").one()
        assert ctx.passwords.verify(user.password_hash, "quiet orchard lantern ninety")
        events = [e.event for e in db.query(AuditEvent).filter_by(user_id=user.id)]
    assert "password_set_by_admin" in events


def test_users_set_password_refuses_weak(run, make_user):
    make_user("alice")
    status, _, err = run("users", "set-password", "alice", "--password-stdin", stdin="password\n")
    assert status == 2 and err.startswith("error:"), err
