"""``Settings.from_env``: every bad value fails naming its variable; secrets stay hidden."""

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
