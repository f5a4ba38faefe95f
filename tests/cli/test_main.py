"""Parsing, configuration and the error path shared by every command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from authserver.accounts import service as accounts
from tests.cli.conftest import assert_error

AUTHSERVER = Path(sys.executable).parent / "authserver"


def test_no_command_is_one_line_error(run):
    assert_error(run(), "required")


def test_unknown_option_is_one_line_error(run):
    assert_error(run("users", "list", "--bogus"), "--bogus")


def test_help_exits_zero(run):
    status, out, _ = run("--help")
    assert status == 0 and "clients" in out and "deny-list" in out


@pytest.mark.parametrize(("name", "value"), [
    ("AUTHSERVER_ISSUER", "ftp://example.com"),
    ("AUTHSERVER_ACCESS_TOKEN_TTL", "ten"),
    ("AUTHSERVER_SECRET_KEY", "short"),
    ("AUTHSERVER_ACCES_TOKEN_TTL", "60"),  # misspelt: refused, not ignored
])
def test_bad_setting_names_the_variable(run, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert_error(run("users", "list"), name)


def test_missing_sqlite_file_says_migrate(run, monkeypatch, tmp_path):
    monkeypatch.setenv("AUTHSERVER_DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    assert_error(run("users", "list"), "AUTHSERVER_DATABASE_URL", str(tmp_path / "none.db"), "authserver migrate")
    assert not (tmp_path / "none.db").exists()


def test_unmigrated_database_says_migrate_then_migrate_fixes_it(run, monkeypatch, tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    monkeypatch.setenv("AUTHSERVER_DATABASE_URL", f"sqlite:///{path}")
    assert_error(run("clients", "list"), "run `authserver migrate`")
    status, out, _ = run("migrate")
    assert status == 0 and "revision" in out
    assert run("clients", "list")[0] == 0
    assert run("migrate")[0] == 0  # idempotent


def test_console_script(cli_env, ctx, client):
    env = {**os.environ, **cli_env}
    result = subprocess.run(
        [str(AUTHSERVER), "clients", "create", "--name", "Script", "--grant-type", "client_credentials",
         "--scope", "api", "--json"],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False,
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    r = client.post("/token", data={"grant_type": "client_credentials"},
                    auth=(body["client_id"], body["client_secret"]))
    assert r.status_code == 200

    result = subprocess.run(
        [str(AUTHSERVER), "users", "create", "--username", "zed", "--email", "zed@example.com",
         "--password-stdin"],
        env=env, input="password\n", capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert result.stdout == ""


# -- the error path -------------------------------------------------------------


@pytest.mark.parametrize("exc", [RuntimeError("boom s3cret"), ValueError("s3cret detail"), KeyError("s3cret")])
def test_unexpected_error_is_reported_as_a_bug(run, monkeypatch, exc):
    def broken(db):
        raise exc

    monkeypatch.setattr(accounts, "list_users", broken)
    status, out, err = run("users", "list")
    assert status == 1 and out == ""
    [line] = err.strip().splitlines()
    assert line.startswith(f"error: unexpected {type(exc).__name__}: this is a bug")
    assert "s3cret" not in err and "Traceback" not in err


def test_debug_flag_prints_the_trace_of_a_bug(run, monkeypatch):
    monkeypatch.setattr(accounts, "list_users", lambda db: 1 / 0)
    status, _, err = run("--debug", "users", "list")
    assert status == 1
    assert "Traceback" in err and "ZeroDivisionError" in err
    assert err.strip().splitlines()[-1].startswith("error: unexpected ZeroDivisionError: this is a bug")


def test_debug_log_level_logs_the_trace_of_a_bug(run, monkeypatch):
    monkeypatch.setenv("AUTHSERVER_LOG_LEVEL", "debug")
    monkeypatch.setattr(accounts, "list_users", lambda db: 1 / 0)
    status, _, err = run("users", "list")
    assert status == 1
    [event] = [json.loads(line) for line in err.splitlines() if line.startswith("{")
               and json.loads(line)["event"] == "cli_unexpected_error"]
    assert "ZeroDivisionError" in event["exception"]


def test_app_error_is_bad_input(run):
    # a domain error (AccountError is an AppError): its message, exit 2
    assert_error(run("users", "show", "nobody"), "no such user: nobody")
