"""``Settings.from_env``: every bad value fails with a sentence naming its variable, what it
must be and what it was (never a secret); unknown names, ``.env``, unusable directories and
the PostgreSQL ``SECRET_KEY`` rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from authserver.settings import RateLimit, Secret, Settings, SettingsError

SECRET = "k" * 48


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    base = {"AUTHSERVER_KEYS_DIR": str(tmp_path / "keys"), "AUTHSERVER_SECRET_KEY": SECRET}
    base.update({f"AUTHSERVER_{name}": value for name, value in values.items()})
    return base


def test_defaults_are_the_embedded_default(tmp_path):
    s = Settings.from_env(env(tmp_path))
    assert s.issuer == "http://127.0.0.1:8000"
    assert s.database_url == "sqlite:///data/authserver.db" and s.is_sqlite
    assert s.redis_url is None and s.rate_limits is True and not s.is_https


def test_values_are_parsed(tmp_path):
    s = Settings.from_env(env(
        tmp_path,
        ISSUER="https://id.example.com",
        DATABASE_URL="postgresql+psycopg://u@db/auth",
        REDIS_URL="redis://cache:6379/0",
        ACCESS_TOKEN_TTL="300",
        RATE_LIMITS="off",
        RATE_LIMIT_LOGIN="5/60",
        CORS_ORIGINS="https://app.example.com/, https://b.example.com",
        TRUSTED_PROXIES="10.0.0.0/8,::1",
        PREVIOUS_SECRET_KEYS="a" * 40 + "," + "b" * 40,
        LOG_FORMAT="console",
    ))
    assert s.is_https and not s.is_sqlite
    assert s.access_token_ttl == 300 and s.rate_limits is False
    assert s.rate_limit_login == RateLimit(5, 60)
    assert s.cors_origins == ("https://app.example.com", "https://b.example.com")
    assert s.trusted_proxies == ("10.0.0.0/8", "::1")
    assert [k.get() for k in s.previous_secret_keys] == ["a" * 40, "b" * 40]


def test_empty_value_means_default(tmp_path):
    assert Settings.from_env(env(tmp_path, ACCESS_TOKEN_TTL="")).access_token_ttl == 600


@pytest.mark.parametrize(("name", "value"), [
    ("ISSUER", "not a url"),
    ("ISSUER", "ftp://id.example.com"),
    ("ISSUER", "http://id.example.com"),  # http only on loopback
    ("ISSUER", "https://id.example.com/"),
    ("ISSUER", "https://id.example.com?x=1"),
    ("DATABASE_URL", "mysql://db/auth"),
    ("DATABASE_URL", "postgresql://u@db/auth"),  # psycopg2's scheme: not installed
    ("SMTP_URL", "mail.example.com"),
    ("LOCKOUT_MAX_DURATION", "-1"),
    ("PREVIOUS_SECRET_KEYS", "x" * 40 + ",short"),
    ("REDIS_URL", "http://cache"),
    ("ACCESS_TOKEN_TTL", "ten"),
    ("ACCESS_TOKEN_TTL", "0"),
    ("AUTHORIZATION_CODE_TTL", "600"),
    ("ARGON2_MEMORY_COST", "1"),
    ("RATE_LIMITS", "maybe"),
    ("REQUIRE_PKCE", "2"),
    ("LOG_FORMAT", "xml"),
    ("LOG_LEVEL", "verbose"),
    ("SECRET_KEY", "too-short"),
    ("RATE_LIMIT_LOGIN", "30 per minute"),
    ("RATE_LIMIT_TOKEN", "0/60"),
    ("RATE_LIMIT_REGISTRATION", "10"),
    ("TRUSTED_PROXIES", "10.0.0.0/33"),
    ("TRUSTED_PROXIES", "proxy.internal"),
    ("CORS_ORIGINS", "https://app.example.com/path"),
    ("BRAND_PRIMARY_COLOR", "blue"),
    ("BRAND_PRIMARY_COLOR", "#ffd700"),  # gold: 1.4:1 on white, unreadable as a link
    ("BRAND_ACCENT_COLOR", "#dddddd"),  # a focus ring nobody sees
    ("BRAND_NAME", "x" * 81),
    ("BRAND_LOGO", "http://cdn.example.com/logo.png"),
    ("BRAND_LOGO", "logo.svg"),  # a file name needs THEME_DIR
    ("SUPPORT_URL", "javascript:alert(1)"),
    ("SUPPORT_URL", "http://help.example.com"),
    ("SUPPORT_EMAIL", "not an address"),
    ("THEME_DIR", "/nonexistent/theme"),
])
def test_bad_value_names_the_variable(tmp_path, name, value):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env(tmp_path, **{name: value}))
    assert f"AUTHSERVER_{name}" in str(info.value)
    if name == "SECRET_KEY":
        assert value not in str(info.value)


def test_refresh_idle_ttl_must_not_exceed_max(tmp_path):
    with pytest.raises(SettingsError, match="AUTHSERVER_REFRESH_TOKEN_IDLE_TTL"):
        Settings.from_env(env(tmp_path, REFRESH_TOKEN_IDLE_TTL="100", REFRESH_TOKEN_MAX_TTL="50"))


def test_secrets_not_in_repr(tmp_path):
    s = Settings.from_env(env(tmp_path, SMTP_URL="smtp://user:hunter2-smtp@mail",
                              PREVIOUS_SECRET_KEYS="p" * 40))
    text = repr(s) + str(s)
    assert SECRET not in text and "hunter2" not in text and "p" * 40 not in text
    assert s.secret_key.get() == SECRET and "hunter2" in s.smtp_url.get()
    assert repr(Secret("value")) == "Secret('**********')" and "value" not in str(Secret("value"))


def test_secret_key_generated_into_keys_dir_0600_and_reused(tmp_path):
    values = {"AUTHSERVER_KEYS_DIR": str(tmp_path / "keys")}
    first = Settings.from_env(values)
    path = tmp_path / "keys" / "secret_key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(first.secret_key.get()) >= 32
    assert path.read_text().strip() == first.secret_key.get()
    assert Settings.from_env(values).secret_key == first.secret_key


def test_explicit_secret_key_writes_nothing(tmp_path):
    Settings.from_env(env(tmp_path))
    assert not (tmp_path / "keys" / "secret_key").exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_refuses_readable_secret_key_file(tmp_path, mode):
    keys = tmp_path / "keys"
    keys.mkdir()
    path = keys / "secret_key"
    path.write_text("s" * 48 + "\n")
    os.chmod(path, mode)
    with pytest.raises(SettingsError, match=r"secret_key.*AUTHSERVER_KEYS_DIR.*chmod 600"):
        Settings.from_env({"AUTHSERVER_KEYS_DIR": str(keys)})


def test_refuses_short_secret_key_file(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    path = keys / "secret_key"
    path.write_text("short\n")
    path.chmod(0o600)
    with pytest.raises(SettingsError, match="too short"):
        Settings.from_env({"AUTHSERVER_KEYS_DIR": str(keys)})


def test_settings_are_frozen(tmp_path):
    s = Settings.from_env(env(tmp_path))
    with pytest.raises(AttributeError):
        s.issuer = "https://other.example.com"  # type: ignore[misc]


def test_env_example_lists_every_setting():
    from dataclasses import fields

    text = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    names = {line.split("=", 1)[0].lstrip("# ").strip() for line in text.splitlines() if "=" in line}
    missing = {f"AUTHSERVER_{f.name.upper()}" for f in fields(Settings)} - names
    assert not missing


# -- messages in words ----------------------------------------------------------


@pytest.mark.parametrize(("name", "value", "message"), [
    ("ACCESS_TOKEN_TTL", "abc", "AUTHSERVER_ACCESS_TOKEN_TTL must be a whole number of seconds, got 'abc'"),
    ("ACCESS_TOKEN_TTL", "10m", "AUTHSERVER_ACCESS_TOKEN_TTL must be a whole number of seconds, got '10m'"),
    ("ACCESS_TOKEN_TTL", "0", "AUTHSERVER_ACCESS_TOKEN_TTL must be a positive whole number of seconds, got 0"),
    ("JWKS_MAX_AGE", "-5", "AUTHSERVER_JWKS_MAX_AGE must not be negative, got -5"),
    ("MAX_BODY_BYTES", "64k", "AUTHSERVER_MAX_BODY_BYTES must be a whole number of bytes, got '64k'"),
    ("ARGON2_MEMORY_COST", "lots", "AUTHSERVER_ARGON2_MEMORY_COST must be a whole number of KiB, got 'lots'"),
    ("ARGON2_MEMORY_COST", "4", "AUTHSERVER_ARGON2_MEMORY_COST must be at least 8 KiB, got 4"),
    ("LOCKOUT_ACCOUNT_THRESHOLD", "five",
     "AUTHSERVER_LOCKOUT_ACCOUNT_THRESHOLD must be a whole number, got 'five'"),
    ("RATE_LIMITS", "maybe",
     "AUTHSERVER_RATE_LIMITS must be true or false (or 1/0, yes/no, on/off), got 'maybe'"),
    ("RATE_LIMIT_LOGIN", "30 per minute",
     "AUTHSERVER_RATE_LIMIT_LOGIN must be LIMIT/SECONDS (requests per window), e.g. 30/60, got '30 per minute'"),
    ("RATE_LIMIT_TOKEN", "0/60",
     "AUTHSERVER_RATE_LIMIT_TOKEN must have a limit and a window of at least 1, got '0/60'"),
    ("AUTHORIZATION_CODE_TTL", "600",
     "AUTHSERVER_AUTHORIZATION_CODE_TTL must be between 1 and 60 seconds (codes are short-lived, "
     "RFC 6749 §4.1.2), got 600"),
    ("LOG_FORMAT", "xml", "AUTHSERVER_LOG_FORMAT must be json or console, got 'xml'"),
    ("LOG_LEVEL", "verbose", "AUTHSERVER_LOG_LEVEL must be debug, info, warning or error, got 'verbose'"),
    ("ISSUER", "http://id.example.com",
     "AUTHSERVER_ISSUER must be https unless it is a loopback address, got 'http://id.example.com'"),
    ("TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal",
     "AUTHSERVER_TRUSTED_PROXIES entry 2 must be an IP address or a CIDR network like 10.0.0.0/8, "
     "got 'proxy.internal'"),
    ("CORS_ORIGINS", "https://a.example.com,https://b.example.com/app",
     "AUTHSERVER_CORS_ORIGINS entry 2 must be an origin like https://app.example.com "
     "(scheme, host, optional port; no path), got 'https://b.example.com/app'"),
])
def test_message_says_what_is_expected_and_what_was_given(tmp_path, name, value, message):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env(tmp_path, **{name: value}))
    assert str(info.value) == message


def test_a_long_value_is_cut_in_the_message(tmp_path):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env(tmp_path, LOG_LEVEL="v" * 500))
    assert len(str(info.value)) < 150 and str(info.value).endswith("...'")


@pytest.mark.parametrize(("name", "value", "described"), [
    ("DATABASE_URL", "mysql://auth:hunter2-db@db/auth", "got a mysql:// URL"),
    ("DATABASE_URL", "postgres://auth:hunter2-db@db/auth", "got a postgres:// URL"),
    ("REDIS_URL", "http://:hunter2-redis@cache", "got a http:// URL"),
    ("SMTP_URL", "http://user:hunter2-smtp@mail", "got a http:// URL"),
    ("SMTP_URL", "user:hunter2-smtp@mail", "got a value that is not a URL"),
    ("SECRET_KEY", "hunter2-short", "got a shorter one"),
    ("PREVIOUS_SECRET_KEYS", "p" * 40 + ",hunter2-short", "entry 2 must be at least 32 characters"),
])
def test_values_that_may_hold_a_password_are_never_repeated(tmp_path, name, value, described):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env(tmp_path, **{name: value}))
    assert f"AUTHSERVER_{name}" in str(info.value) and described in str(info.value)
    assert "hunter2" not in str(info.value)


# -- unknown names -----------------------------------------------------------------


def test_misspelt_variable_is_refused_with_the_nearest_name(tmp_path):
    values = {**env(tmp_path), "AUTHSERVER_ACCES_TOKEN_TTL": "60"}
    with pytest.raises(SettingsError) as info:
        Settings.from_env(values)
    assert str(info.value) == (
        "unknown setting AUTHSERVER_ACCES_TOKEN_TTL (did you mean AUTHSERVER_ACCESS_TOKEN_TTL?); "
        "every setting is listed in .env.example and in the README"
    )


def test_every_unknown_variable_is_named_and_far_ones_get_no_guess(tmp_path):
    values = {**env(tmp_path), "AUTHSERVER_FROBNICATE": "1", "AUTHSERVER_REDIS": "redis://x"}
    with pytest.raises(SettingsError) as info:
        Settings.from_env(values)
    assert str(info.value).startswith(
        "unknown settings AUTHSERVER_FROBNICATE, AUTHSERVER_REDIS (did you mean AUTHSERVER_REDIS_URL?); "
    )


def test_test_harness_container_and_foreign_variables_are_not_settings(tmp_path):
    values = {**env(tmp_path), "AUTHSERVER_TEST_REQUIRE_SERVICES": "1", "AUTHSERVER_WORKERS": "4",
              "AUTHSERVERX": "1", "PATH": "/usr/bin", "authserver_issuer": "https://ignored.example.com"}
    assert Settings.from_env(values).issuer == "http://127.0.0.1:8000"


# -- .env ------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory and a process environment without AUTHSERVER_* settings."""
    for name in list(os.environ):
        if name.startswith("AUTHSERVER_") and not name.startswith("AUTHSERVER_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_dot_env_in_the_working_directory_is_read(workdir):
    (workdir / ".env").write_text(
        "# compose reads this file too\n"
        "POSTGRES_PASSWORD=not-ours\n"
        "\n"
        "AUTHSERVER_ISSUER=https://id.example.com\n"
        f"export AUTHSERVER_SECRET_KEY='{SECRET}'\n"
        'AUTHSERVER_LOG_FORMAT="console"  # for people\n'
        "AUTHSERVER_ACCESS_TOKEN_TTL = 300 # five minutes\n"
    )
    s = Settings.from_env()
    assert s.issuer == "https://id.example.com" and s.secret_key.get() == SECRET
    assert s.log_format == "console" and s.access_token_ttl == 300


def test_process_environment_wins_over_dot_env(workdir, monkeypatch):
    (workdir / ".env").write_text(f"AUTHSERVER_ACCESS_TOKEN_TTL=300\nAUTHSERVER_SECRET_KEY={SECRET}\n")
    monkeypatch.setenv("AUTHSERVER_ACCESS_TOKEN_TTL", "120")
    assert Settings.from_env().access_token_ttl == 120


def test_without_dot_env_only_the_environment_counts(workdir):
    s = Settings.from_env()
    assert s.issuer == "http://127.0.0.1:8000" and (workdir / "keys" / "secret_key").exists()


def test_explicit_environ_ignores_dot_env(workdir):
    (workdir / ".env").write_text("AUTHSERVER_ACCESS_TOKEN_TTL=300\n")
    assert Settings.from_env(env(workdir)).access_token_ttl == 600


def test_misspelt_name_in_dot_env_is_refused(workdir):
    (workdir / ".env").write_text("AUTHSERVER_ISUER=https://id.example.com\n")
    with pytest.raises(SettingsError, match=r"AUTHSERVER_ISUER \(did you mean AUTHSERVER_ISSUER\?\)"):
        Settings.from_env()


@pytest.mark.parametrize(("text", "message"), [
    ("AUTHSERVER_ISSUER https://id.example.com\n", "line 1: expected NAME=value"),
    ("# ok\nAUTHSERVER_SECRET_KEY='hunter2-unclosed\n",
     "line 2: the value of AUTHSERVER_SECRET_KEY has no closing quote"),
    ("AUTHSERVER_SECRET_KEY=\"hunter2\" trailing\n", "line 1: text after the closing quote of AUTHSERVER_SECRET_KEY"),
    ("AUTHSERVER_DATABASE_URL=postgresql+psycopg://a:${PW}@db/a\n",
     "line 1: AUTHSERVER_DATABASE_URL uses ${...}, which authserver does not expand"),
])
def test_bad_dot_env_line_is_named_by_number_never_shown(workdir, text, message):
    (workdir / ".env").write_text(text)
    with pytest.raises(SettingsError) as info:
        Settings.from_env()
    assert str(info.value).startswith(f".env {message}")
    assert "hunter2" not in str(info.value)


def test_single_quotes_keep_dollar_signs(workdir):
    secret = "$" + "{literal}" + "k" * 40
    (workdir / ".env").write_text(f"AUTHSERVER_SECRET_KEY='{secret}'\n")
    assert Settings.from_env().secret_key.get() == secret


def test_env_example_is_a_valid_dot_env_of_the_defaults(tmp_path):
    from dataclasses import fields

    from authserver.settings import read_env_file

    example = read_env_file(Path(__file__).resolve().parent.parent / ".env.example")
    assert all(name.startswith("AUTHSERVER_") for name in example)
    example.update(env(tmp_path))
    parsed = Settings.from_env(example)
    for f in fields(Settings):
        if f.name not in ("keys_dir", "secret_key"):
            assert getattr(parsed, f.name) == getattr(Settings(), f.name), f.name


# -- filesystem ------------------------------------------------------------------


def test_keys_dir_that_is_a_file_is_named(tmp_path):
    (tmp_path / "keys").write_text("")
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env(tmp_path))
    assert str(info.value) == f"AUTHSERVER_KEYS_DIR {tmp_path / 'keys'} is not a directory"


def test_keys_dir_that_cannot_be_created_is_named(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env(tmp_path, KEYS_DIR=str(tmp_path / "file" / "keys")))
    assert str(info.value) == (
        f"AUTHSERVER_KEYS_DIR {tmp_path / 'file' / 'keys'} cannot be created: {tmp_path / 'file'} is not a directory"
    )


# /proc/1 is a directory nobody may create files in, root included: the "not writable"
# case without depending on who runs the tests.
def test_keys_dir_not_writable_is_named():
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"AUTHSERVER_KEYS_DIR": "/proc/1/authserver-keys"})
    assert str(info.value).startswith(
        "AUTHSERVER_KEYS_DIR /proc/1/authserver-keys does not exist and cannot be created: "
        "/proc/1 is not writable by this user"
    )


def test_existing_keys_dir_not_writable_is_named():
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"AUTHSERVER_KEYS_DIR": "/proc/1"})
    assert str(info.value).startswith("AUTHSERVER_KEYS_DIR /proc/1 is not readable and writable by this user")


def test_data_dir_problem_is_named(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env(tmp_path, DATA_DIR=str(tmp_path / "file")))
    assert str(info.value).startswith("AUTHSERVER_DATA_DIR (mail is written to its outbox/ without SMTP_URL) ")
    assert str(info.value).endswith(f"{tmp_path / 'file'} is not a directory")


def test_data_dir_is_not_needed_with_smtp(tmp_path):
    (tmp_path / "file").write_text("")
    s = Settings.from_env(env(tmp_path, DATA_DIR=str(tmp_path / "file"), SMTP_URL="smtp://mail.example.com"))
    assert s.smtp_url is not None


def test_sqlite_directory_problem_is_named(tmp_path):
    (tmp_path / "file").write_text("")
    url = f"sqlite:///{tmp_path / 'file' / 'authserver.db'}"
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env(tmp_path, DATABASE_URL=url))
    assert str(info.value) == (
        f"AUTHSERVER_DATABASE_URL: the directory of the SQLite database {tmp_path / 'file'} is not a directory"
    )


def test_sqlite_database_that_is_a_directory_is_named(tmp_path):
    (tmp_path / "db").mkdir()
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db'}"))
    assert str(info.value) == f"AUTHSERVER_DATABASE_URL: the SQLite database {tmp_path / 'db'} is not a file"


# -- SECRET_KEY with PostgreSQL ---------------------------------------------------------

PG = "postgresql+psycopg://auth@db.example.com/auth"


def test_postgres_refuses_a_generated_secret_key(tmp_path):
    values = {"AUTHSERVER_KEYS_DIR": str(tmp_path / "keys"), "AUTHSERVER_DATABASE_URL": PG}
    with pytest.raises(SettingsError) as info:
        Settings.from_env(values)
    assert str(info.value).startswith(
        "AUTHSERVER_SECRET_KEY is unset and AUTHSERVER_DATABASE_URL is PostgreSQL: every node must share one key"
    )
    assert "AUTHSERVER_ALLOW_GENERATED_SECRET_KEY=1" in str(info.value)
    assert not (tmp_path / "keys" / "secret_key").exists()


def test_postgres_refuses_even_a_secret_key_file_left_by_an_earlier_start(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "secret_key").write_text("s" * 48 + "\n")
    (keys / "secret_key").chmod(0o600)
    with pytest.raises(SettingsError, match="AUTHSERVER_SECRET_KEY is unset"):
        Settings.from_env({"AUTHSERVER_KEYS_DIR": str(keys), "AUTHSERVER_DATABASE_URL": PG})


def test_postgres_generates_a_secret_key_only_when_allowed(tmp_path):
    values = {"AUTHSERVER_KEYS_DIR": str(tmp_path / "keys"), "AUTHSERVER_DATABASE_URL": PG,
              "AUTHSERVER_ALLOW_GENERATED_SECRET_KEY": "1"}
    s = Settings.from_env(values)
    assert s.secret_key.get() == (tmp_path / "keys" / "secret_key").read_text().strip()


def test_postgres_with_a_secret_key_needs_no_permission(tmp_path):
    s = Settings.from_env(env(tmp_path, DATABASE_URL=PG))
    assert s.secret_key.get() == SECRET and not s.allow_generated_secret_key
