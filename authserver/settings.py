"""One frozen, typed settings object built once from ``AUTHSERVER_*`` variables.

Nothing else in the package reads ``os.environ``. A bad value raises
:class:`SettingsError` naming the variable. Secrets are wrapped in
:class:`Secret` so they never appear in ``repr``.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PREFIX = "AUTHSERVER_"


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


class Secret:
    """A string that never shows itself in ``repr``/``str`` (logs, tracebacks)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class RateLimit:
    """``limit`` requests per ``window`` seconds, written ``"limit/window"``."""

    limit: int
    window: int

    @classmethod
    def parse(cls, name: str, raw: str) -> RateLimit:
        try:
            limit, window = (int(part) for part in raw.split("/", 1))
        except ValueError:
            raise SettingsError(f"{name} must look like LIMIT/SECONDS, e.g. 30/60") from None
        if limit < 1 or window < 1:
            raise SettingsError(f"{name} must have a positive limit and window")
        return cls(limit, window)


@dataclass(frozen=True)
class Settings:
    """Every setting, with the embedded default. See ``.env.example``."""

    issuer: str = "http://127.0.0.1:8000"
    database_url: str = "sqlite:///data/authserver.db"
    redis_url: str | None = None
    redis_prefix: str = "authserver:"
    keys_dir: Path = Path("keys")
    data_dir: Path = Path("data")
    secret_key: Secret = field(default_factory=lambda: Secret(""))
    previous_secret_keys: tuple[Secret, ...] = ()

    access_token_ttl: int = 600
    id_token_ttl: int = 600
    authorization_code_ttl: int = 60
    refresh_token_idle_ttl: int = 14 * 86400
    refresh_token_max_ttl: int = 90 * 86400
    session_ttl: int = 12 * 3600
    max_devices_per_user: int = 0
    key_activation_delay: int = 600
    jwks_max_age: int = 300
    require_pkce: bool = True

    argon2_time_cost: int = 2
    argon2_memory_cost: int = 19456
    argon2_parallelism: int = 1

    lockout_account_threshold: int = 5
    lockout_ip_threshold: int = 20
    lockout_window: int = 900
    lockout_base_duration: int = 60
    lockout_max_duration: int = 3600

    rate_limits: bool = True
    rate_limit_login: RateLimit = RateLimit(30, 60)
    rate_limit_token: RateLimit = RateLimit(600, 60)
    rate_limit_introspection: RateLimit = RateLimit(1200, 60)
    rate_limit_registration: RateLimit = RateLimit(10, 3600)

    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    log_format: str = "json"
    log_level: str = "info"
    smtp_url: Secret | None = None
    mail_from: str = "authserver@localhost"
    max_body_bytes: int = 64 * 1024
    signup_enabled: bool = True
    threadpool_size: int = 4
    client_cache_ttl: int = 5
    db_pool_size: int = 4

    @property
    def is_https(self) -> bool:
        return self.issuer.startswith("https://")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``).

        Generates ``SECRET_KEY`` into ``KEYS_DIR/secret_key`` (mode 0600) when it
        is unset, so the embedded default needs no configuration.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = PREFIX + f.name.upper()
            if name in env and env[name] != "":
                values[f.name] = _convert(name, f.name, env[name], f.type)
        values.update(overrides)
        settings = cls(**values)
        settings._validate()
        if not settings.secret_key.get():
            key = load_or_create_secret_key(settings.keys_dir)
            settings = cls(**{**values, "secret_key": Secret(key)})
        return settings

    def _validate(self) -> None:
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError("AUTHSERVER_ISSUER must be an http(s) URL")
        if parts.query or parts.fragment or self.issuer.endswith("/"):
            raise SettingsError(
                "AUTHSERVER_ISSUER must have no query, fragment or trailing slash (RFC 8414 §2)"
            )
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SettingsError("AUTHSERVER_ISSUER must be https unless it is a loopback address")
        if not (self.database_url.startswith("sqlite") or self.database_url.startswith("postgresql")):
            raise SettingsError("AUTHSERVER_DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("AUTHSERVER_REDIS_URL must be a redis:// or rediss:// URL")
        if self.log_format not in ("json", "console"):
            raise SettingsError("AUTHSERVER_LOG_FORMAT must be json or console")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise SettingsError("AUTHSERVER_LOG_LEVEL must be debug, info, warning or error")
        if not 1 <= self.authorization_code_ttl <= 60:
            raise SettingsError("AUTHSERVER_AUTHORIZATION_CODE_TTL must be 1..60 seconds")
        if self.refresh_token_idle_ttl > self.refresh_token_max_ttl:
            raise SettingsError("AUTHSERVER_REFRESH_TOKEN_IDLE_TTL must not exceed REFRESH_TOKEN_MAX_TTL")
        for name in ("access_token_ttl", "id_token_ttl", "session_ttl", "argon2_time_cost",
                     "argon2_parallelism", "lockout_account_threshold", "lockout_ip_threshold",
                     "lockout_window", "lockout_base_duration", "threadpool_size", "db_pool_size",
                     "max_body_bytes"):
            if getattr(self, name) < 1:
                raise SettingsError(f"AUTHSERVER_{name.upper()} must be positive")
        if self.max_devices_per_user < 0:
            raise SettingsError("AUTHSERVER_MAX_DEVICES_PER_USER must be 0 (no limit) or more")
        if self.argon2_memory_cost < 8:
            raise SettingsError("AUTHSERVER_ARGON2_MEMORY_COST must be at least 8 (KiB)")
        if self.secret_key.get() and len(self.secret_key.get()) < 32:
            raise SettingsError("AUTHSERVER_SECRET_KEY must be at least 32 characters")
        for origin in self.cors_origins:
            o = urlsplit(origin)
            if o.scheme not in ("http", "https") or not o.netloc or o.path not in ("", "/"):
                raise SettingsError(f"AUTHSERVER_CORS_ORIGINS has an invalid origin: {origin!r}")


def _convert(env_name: str, attr: str, raw: str, type_: Any) -> Any:
    type_name = type_ if isinstance(type_, str) else getattr(type_, "__name__", str(type_))
    raw = raw.strip()
    try:
        if type_name == "bool":
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if type_name == "int":
            return int(raw)
        if type_name == "Path":
            return Path(raw)
        if type_name == "Secret":
            return Secret(raw)
        if type_name == "Secret | None":
            return Secret(raw)
        if type_name == "RateLimit":
            return RateLimit.parse(env_name, raw)
        if type_name == "tuple[Secret, ...]":
            return tuple(Secret(s.strip()) for s in raw.split(",") if s.strip())
        if type_name == "tuple[str, ...]":
            items = tuple(s.strip() for s in raw.split(",") if s.strip())
            if attr == "trusted_proxies":
                for item in items:
                    ipaddress.ip_network(item, strict=False)
            if attr == "cors_origins":
                items = tuple(i.rstrip("/") for i in items)
            return items
        return raw
    except SettingsError:
        raise
    except ValueError:
        raise SettingsError(f"{env_name} has an invalid value for a {type_name} setting") from None


def load_or_create_secret_key(keys_dir: Path) -> str:
    """Return ``keys_dir/secret_key``, creating it with mode 0600 when missing.

    Refuses a key file that group or others can read.
    """
    path = keys_dir / "secret_key"
    if path.exists():
        check_private_file(path)
        value = path.read_text().strip()
        if len(value) < 32:
            raise SettingsError(f"{path.name} in AUTHSERVER_KEYS_DIR is too short")
        return value
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def check_private_file(path: Path) -> None:
    """Raise :class:`SettingsError` when ``path`` is readable by group or others."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(
            f"{path.name} in AUTHSERVER_KEYS_DIR is readable by others "
            f"(mode {oct(mode & 0o777)}); run chmod 600 on it"
        )
