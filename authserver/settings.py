"""One frozen, typed settings object built once from ``AUTHSERVER_*`` variables.

Nothing else in the package reads ``os.environ``. The process environment wins
over a ``.env`` file in the working directory, which wins over the defaults.
A bad value raises :class:`SettingsError` with a sentence naming the variable,
what it must be and (unless it is a secret) what it was; an unknown
``AUTHSERVER_*`` name is refused with the nearest known one. Secrets are
wrapped in :class:`Secret` so they never appear in ``repr``.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from authserver.errors import AppError
from authserver.i18n import LOCALES
from authserver.oauth.vocabulary import LOOPBACK_HOSTS

PREFIX = "AUTHSERVER_"
ENV_FILE = Path(".env")
"""Read at start by ``from_env()`` from the working directory, when present."""
NOT_SETTINGS_PREFIX = "AUTHSERVER_TEST_"
"""The test suite's own variables (``AUTHSERVER_TEST_DATABASE_URL``, ...): not settings, not refused."""
NOT_SETTINGS = frozenset({"AUTHSERVER_WORKERS"})
"""Read by the container's command (``--workers``), not by the settings object."""


class SettingsError(AppError):
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
            raise SettingsError(
                f"{name} must be LIMIT/SECONDS (requests per window), e.g. 30/60, got {_shown(raw)}"
            ) from None
        if limit < 1 or window < 1:
            raise SettingsError(f"{name} must have a limit and a window of at least 1, got {_shown(raw)}")
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
    allow_generated_secret_key: bool = False

    access_token_ttl: int = 600
    id_token_ttl: int = 600
    authorization_code_ttl: int = 60
    refresh_token_idle_ttl: int = 14 * 86400
    refresh_token_max_ttl: int = 90 * 86400
    session_ttl: int = 12 * 3600
    max_devices_per_user: int = 0
    key_activation_delay: int = 600
    jwks_max_age: int = 300
    key_rotation_interval: int = 90 * 86400
    maintenance_interval: int = 300
    device_code_ttl: int = 600
    device_code_interval: int = 5
    backchannel_logout_timeout: int = 5
    backchannel_logout_max_attempts: int = 5
    backchannel_logout_retry_delay: int = 30
    outbound_allow_private: bool = False
    require_pkce: bool = True
    dpop_proof_max_age: int = 60
    dpop_clock_skew: int = 10
    dpop_require_nonce: bool = False
    require_pushed_authorization_requests: bool = False

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
    rate_limit_client_auth_failures: RateLimit = RateLimit(20, 300)
    rate_limit_client_auth_failures_ip: RateLimit = RateLimit(100, 300)
    rate_limit_user_code_failures: RateLimit = RateLimit(10, 300)

    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    log_format: str = "json"
    log_level: str = "info"
    smtp_url: Secret | None = None
    mail_from: str = "authserver@localhost"
    default_locale: str = "en"
    max_body_bytes: int = 64 * 1024
    signup_enabled: bool = True
    admin_require_mfa: bool = True
    threadpool_size: int = 4
    client_cache_ttl: int = 5
    db_pool_size: int = 4
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"

    brand_name: str = "authserver"
    brand_logo: str = ""
    brand_primary_color: str = "#0b5cad"
    brand_accent_color: str = "#0e7490"
    support_url: str = ""
    support_email: str = ""
    theme_dir: Path | None = None

    @property
    def is_https(self) -> bool:
        return self.issuer.startswith("https://")

    @property
    def private_destinations_allowed(self) -> bool:
        """Whether a client's ``jwks_uri`` and ``backchannel_logout_uri`` may point at a
        private, loopback or link-local address (``security/outbound.py``): when set, or
        while the issuer is plain http (a development server, its clients on the same machine)."""
        return self.outbound_allow_private or not self.is_https

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ``; by default the process environment over ``./.env``.

        Raises :class:`SettingsError` for an unknown ``AUTHSERVER_*`` name, a bad
        value or a directory the server cannot use. An unset ``SECRET_KEY`` is read
        from, or generated into, ``KEYS_DIR/secret_key`` (mode 0600) on SQLite; on
        PostgreSQL only with ``ALLOW_GENERATED_SECRET_KEY``, because every node of
        a shared database must use the same key (README, "Configuration").
        """
        env = environment() if environ is None else environ
        known = {PREFIX + f.name.upper(): f for f in fields(cls)}
        _refuse_unknown(env, known)
        values: dict[str, Any] = {}
        for name, f in known.items():
            raw = env.get(name, "").strip()
            if raw:
                values[f.name] = _convert(name, f, raw)
        values.update(overrides)
        settings = cls(**values)
        settings._validate()
        settings._check_paths()
        if not settings.secret_key.get():
            if not settings.is_sqlite and not settings.allow_generated_secret_key:
                raise SettingsError(
                    "AUTHSERVER_SECRET_KEY is unset and AUTHSERVER_DATABASE_URL is PostgreSQL: every node "
                    "must share one key, so set it (at least 32 characters, e.g. the output of "
                    "`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`), or set "
                    "AUTHSERVER_ALLOW_GENERATED_SECRET_KEY=1 if every node shares AUTHSERVER_KEYS_DIR"
                )
            key = load_or_create_secret_key(settings.keys_dir)
            settings = replace(settings, secret_key=Secret(key))
        return settings

    def _validate(self) -> None:
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError(f"AUTHSERVER_ISSUER must be an http(s) URL, got {_shown(self.issuer)}")
        if parts.query or parts.fragment or self.issuer.endswith("/"):
            raise SettingsError(
                "AUTHSERVER_ISSUER must have no query, fragment or trailing slash (RFC 8414 §2), "
                f"got {_shown(self.issuer)}"
            )
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise SettingsError(
                f"AUTHSERVER_ISSUER must be https unless it is a loopback address, got {_shown(self.issuer)}"
            )
        # URLs that may carry a password are described by their scheme only.
        if not self.database_url.startswith(("sqlite:", "sqlite+pysqlite:", "postgresql+psycopg:")):
            raise SettingsError(
                "AUTHSERVER_DATABASE_URL must be a sqlite:///PATH or postgresql+psycopg://USER@HOST/DB URL, "
                f"got {_scheme(self.database_url)}"
            )
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                f"AUTHSERVER_REDIS_URL must be a redis://, rediss:// or unix:// URL, got {_scheme(self.redis_url)}"
            )
        if self.smtp_url is not None and urlsplit(self.smtp_url.get()).scheme not in ("smtp", "smtps"):
            raise SettingsError(
                f"AUTHSERVER_SMTP_URL must be an smtp:// or smtps:// URL, got {_scheme(self.smtp_url.get())}"
            )
        if self.default_locale not in LOCALES:
            raise SettingsError(
                f"AUTHSERVER_DEFAULT_LOCALE must be one of {', '.join(LOCALES)}, got {_shown(self.default_locale)}"
            )
        if self.log_format not in ("json", "console"):
            raise SettingsError(f"AUTHSERVER_LOG_FORMAT must be json or console, got {_shown(self.log_format)}")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise SettingsError(
                f"AUTHSERVER_LOG_LEVEL must be debug, info, warning or error, got {_shown(self.log_level)}"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and value < 0:
                raise SettingsError(f"{PREFIX}{f.name.upper()} must not be negative, got {value}")
        for name in ("access_token_ttl", "id_token_ttl", "session_ttl", "argon2_time_cost",
                     "argon2_parallelism", "lockout_account_threshold", "lockout_ip_threshold",
                     "lockout_window", "lockout_base_duration", "threadpool_size", "db_pool_size",
                     "max_body_bytes", "dpop_proof_max_age", "device_code_interval", "backchannel_logout_timeout",
                     "backchannel_logout_max_attempts", "backchannel_logout_retry_delay"):
            if getattr(self, name) < 1:
                raise SettingsError(
                    f"{PREFIX}{name.upper()} must be a positive whole number{_unit(name)}, got {getattr(self, name)}"
                )
        if self.metrics_port > 65535:
            raise SettingsError(
                f"AUTHSERVER_METRICS_PORT must be a TCP port 1..65535 (0 = metrics off), got {self.metrics_port}")
        try:
            ipaddress.ip_address(self.metrics_host)
        except ValueError:
            raise SettingsError(
                "AUTHSERVER_METRICS_HOST must be an IP address to bind the metrics listener to, like 127.0.0.1, "
                f"got {_shown(self.metrics_host)}") from None
        if not 1 <= self.authorization_code_ttl <= 60:
            raise SettingsError(
                "AUTHSERVER_AUTHORIZATION_CODE_TTL must be between 1 and 60 seconds (codes are short-lived, "
                f"RFC 6749 §4.1.2), got {self.authorization_code_ttl}"
            )
        if not 60 <= self.device_code_ttl <= 3600:
            raise SettingsError(
                "AUTHSERVER_DEVICE_CODE_TTL must be between 60 and 3600 seconds (RFC 8628 §3.2 expires_in), "
                f"got {self.device_code_ttl}"
            )
        if self.backchannel_logout_timeout > 60:
            raise SettingsError(
                "AUTHSERVER_BACKCHANNEL_LOGOUT_TIMEOUT must be at most 60 seconds, "
                f"got {self.backchannel_logout_timeout}"
            )
        if self.refresh_token_idle_ttl > self.refresh_token_max_ttl:
            raise SettingsError(
                f"AUTHSERVER_REFRESH_TOKEN_IDLE_TTL ({self.refresh_token_idle_ttl} seconds) must not exceed "
                f"AUTHSERVER_REFRESH_TOKEN_MAX_TTL ({self.refresh_token_max_ttl} seconds)"
            )
        if self.argon2_memory_cost < 8:
            raise SettingsError(f"AUTHSERVER_ARGON2_MEMORY_COST must be at least 8 KiB, got {self.argon2_memory_cost}")
        if self.secret_key.get() and len(self.secret_key.get()) < 32:
            raise SettingsError("AUTHSERVER_SECRET_KEY must be at least 32 characters, got a shorter one")
        for position, key in enumerate(self.previous_secret_keys, 1):
            if len(key.get()) < 32:
                raise SettingsError(
                    f"AUTHSERVER_PREVIOUS_SECRET_KEYS entry {position} must be at least 32 characters, "
                    "got a shorter one (entries are separated by commas)"
                )
        for position, origin in enumerate(self.cors_origins, 1):
            o = urlsplit(origin)
            if o.scheme not in ("http", "https") or not o.netloc or o.path not in ("", "/") or o.query:
                raise SettingsError(
                    f"AUTHSERVER_CORS_ORIGINS entry {position} must be an origin like https://app.example.com "
                    f"(scheme, host, optional port; no path), got {_shown(origin)}"
                )
        for position, proxy in enumerate(self.trusted_proxies, 1):
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise SettingsError(
                    f"AUTHSERVER_TRUSTED_PROXIES entry {position} must be an IP address or a CIDR network "
                    f"like 10.0.0.0/8, got {_shown(proxy)}"
                ) from None

        self._validate_brand()

    def _validate_brand(self) -> None:
        """The brand settings (docs/branding.md): colours that keep WCAG 2.2 AA contrast on
        the white page, a logo and a support link that the pages may show."""
        from authserver.branding import contrast_ratio, parse_colour

        for name, minimum, use in (("brand_primary_color", 4.5, "links and button text (WCAG 1.4.3)"),
                                   ("brand_accent_color", 3.0, "the focus ring (WCAG 1.4.11)")):
            raw = getattr(self, name)
            setting = f"{PREFIX}{name.upper()}"
            try:
                colour = parse_colour(raw)
            except ValueError:
                raise SettingsError(f"{setting} must be a colour like #0b5cad, got {_shown(raw)}") from None
            ratio = contrast_ratio(colour, (255, 255, 255))
            if ratio < minimum:
                raise SettingsError(
                    f"{setting} must contrast at least {minimum}:1 with white for {use}, "
                    f"got {_shown(raw)} ({ratio:.2f}:1); pick a darker colour"
                )
        if not self.brand_name.strip() or len(self.brand_name) > 80:
            raise SettingsError(f"AUTHSERVER_BRAND_NAME must be 1 to 80 characters, got {_shown(self.brand_name)}")
        if self.support_url:
            parts = urlsplit(self.support_url)
            if parts.scheme not in ("https", "mailto") or not (parts.netloc or parts.scheme == "mailto"):
                raise SettingsError(
                    f"AUTHSERVER_SUPPORT_URL must be an https:// or mailto: URL, got {_shown(self.support_url)}"
                )
        if self.support_email and not re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+", self.support_email):
            raise SettingsError(
                f"AUTHSERVER_SUPPORT_EMAIL must be an e-mail address, got {_shown(self.support_email)}"
            )
        logo = self.brand_logo
        if logo and "://" in logo:
            parts = urlsplit(logo)
            if parts.scheme != "https" or not parts.netloc:
                raise SettingsError(f"AUTHSERVER_BRAND_LOGO must be an https:// URL or a file name, got {_shown(logo)}")
        elif logo:
            if self.theme_dir is None:
                raise SettingsError(
                    "AUTHSERVER_BRAND_LOGO names a file, which is looked up in THEME_DIR/static: "
                    "set AUTHSERVER_THEME_DIR too (or give an https:// URL)"
                )
            if logo.startswith("/") or ".." in Path(logo).parts:
                raise SettingsError(
                    f"AUTHSERVER_BRAND_LOGO must be a file name inside THEME_DIR/static, got {_shown(logo)}"
                )

    def _check_paths(self) -> None:
        """Refuse, naming the setting and the path, a directory the server must use but cannot."""
        secret_file = self.keys_dir / "secret_key"
        provisioned = any(self.keys_dir.glob("*.pem")) and (bool(self.secret_key.get()) or secret_file.exists())
        # A read-only KEYS_DIR (a mounted secret) is fine once it holds a key and the secret.
        _check_directory("AUTHSERVER_KEYS_DIR", self.keys_dir, writable=not provisioned)
        if self.smtp_url is None:
            _check_directory("AUTHSERVER_DATA_DIR (mail is written to its outbox/ without SMTP_URL)",
                             self.data_dir, writable=True)
        database = sqlite_path(self.database_url)
        if database is not None:
            where = "AUTHSERVER_DATABASE_URL"
            if database.exists() and not database.is_file():
                raise SettingsError(f"{where}: the SQLite database {database} is not a file")
            if database.exists() and not os.access(database, os.R_OK | os.W_OK):
                raise SettingsError(f"{where}: the SQLite database {database} is not writable by this user")
            # SQLite writes its -wal and -shm files beside the database.
            _check_directory(f"{where}: the directory of the SQLite database", database.parent, writable=True)
        if self.theme_dir is not None:
            if not self.theme_dir.is_dir() or not os.access(self.theme_dir, os.R_OK | os.X_OK):
                raise SettingsError(f"AUTHSERVER_THEME_DIR {self.theme_dir} is not a readable directory")
            logo = self.brand_logo
            if logo and "://" not in logo and not (self.theme_dir / "static" / logo).is_file():
                raise SettingsError(
                    f"AUTHSERVER_BRAND_LOGO {logo!r} is not a file in AUTHSERVER_THEME_DIR/static "
                    f"({self.theme_dir / 'static'})"
                )


def environment(env_file: Path = ENV_FILE) -> dict[str, str]:
    """The process environment over the ``AUTHSERVER_*`` lines of ``env_file``, when it exists.

    Other names in the file are ignored (``docker compose`` reads the same file).
    """
    from_file = read_env_file(env_file) if env_file.exists() else {}
    merged = {name: value for name, value in from_file.items() if name.startswith(PREFIX)}
    merged.update(os.environ)
    return merged


_ENV_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)")


def read_env_file(path: Path) -> dict[str, str]:
    """Parse ``NAME=value`` lines: ``#`` comments, blank lines, optional ``export``,
    values in single or double quotes taken literally; no ``${...}`` expansion (refused).

    Error messages give the line number, never the line: it may hold a secret.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SettingsError(f"cannot read the settings file {path}: {reason}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _ENV_LINE.fullmatch(line)
        if match is None:
            raise SettingsError(f"{path} line {number}: expected NAME=value")
        name, value = match.groups()
        if value[:1] in ("'", '"'):
            end = value.find(value[0], 1)
            if end < 0:
                raise SettingsError(f"{path} line {number}: the value of {name} has no closing quote")
            rest = value[end + 1:].strip()
            if rest and not rest.startswith("#"):
                raise SettingsError(f"{path} line {number}: text after the closing quote of {name}")
            literal = value[0] == "'"
            value = value[1:end]
        else:
            literal = False
            value = re.split(r"\s#", value, maxsplit=1)[0].rstrip()
        if not literal and "${" in value:
            raise SettingsError(
                f"{path} line {number}: {name} uses ${{...}}, which authserver does not expand; "
                "write the value out, or put it in single quotes to keep it literally"
            )
        values[name] = value
    return values


def sqlite_path(database_url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL; None for PostgreSQL or an in-memory database."""
    if not database_url.startswith("sqlite"):
        return None
    path = database_url.split(":///", 1)[-1].split("?", 1)[0] if ":///" in database_url else ""
    return Path(path) if path and path != ":memory:" else None


def _refuse_unknown(env: Mapping[str, str], known: Mapping[str, Field[Any]]) -> None:
    """A mistyped name would otherwise leave its setting at the default without a word."""
    unknown = sorted(
        name for name in env
        if name.startswith(PREFIX) and name not in known
        and name not in NOT_SETTINGS and not name.startswith(NOT_SETTINGS_PREFIX)
    )
    if not unknown:
        return
    suffixes = [name.removeprefix(PREFIX) for name in known]
    described = []
    for name in unknown:
        near = difflib.get_close_matches(name.removeprefix(PREFIX), suffixes, n=1, cutoff=0.6)
        described.append(f"{name} (did you mean {PREFIX}{near[0]}?)" if near else name)
    raise SettingsError(
        f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(described)}; "
        "every setting is listed in .env.example and in the README"
    )


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _convert(name: str, f: Field[Any], raw: str) -> object:
    """``raw`` (stripped, not empty) as the field's type; the type is the annotation's text."""
    type_name = str(f.type).removesuffix(" | None")
    if type_name == "str":
        return raw
    if type_name == "bool":
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise SettingsError(f"{name} must be true or false (or 1/0, yes/no, on/off), got {_shown(raw)}")
    if type_name == "int":
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number{_unit(f.name)}, got {_shown(raw)}") from None
    if type_name == "Path":
        return Path(raw)
    if type_name == "Secret":
        return Secret(raw)
    if type_name == "RateLimit":
        return RateLimit.parse(name, raw)
    if type_name == "tuple[Secret, ...]":
        return tuple(Secret(item) for item in _items(raw))
    if type_name == "tuple[str, ...]":
        items = _items(raw)
        return tuple(item.rstrip("/") for item in items) if f.name == "cors_origins" else items
    raise TypeError(f"no parser for {name} ({type_name}); add one to settings._convert")


def _items(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _unit(attr: str) -> str:
    """The unit an integer setting is counted in, for messages (from its name)."""
    if attr.endswith(("_ttl", "_window", "_duration", "_delay", "_max_age", "_skew")):
        return " of seconds"
    if attr.endswith("_bytes"):
        return " of bytes"
    if attr == "argon2_memory_cost":
        return " of KiB"
    return ""


def _shown(raw: str) -> str:
    """``raw`` quoted for a message, cut short: an operator may have pasted something long."""
    return repr(raw if len(raw) <= 60 else raw[:57] + "...")


def _scheme(url: str) -> str:
    """How a URL that may hold a password is described: its scheme only."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    return f"a {scheme}:// URL" if scheme else "a value that is not a URL"


def _check_directory(setting: str, path: Path, *, writable: bool) -> None:
    """Raise :class:`SettingsError` naming ``setting`` and ``path`` when ``path`` is not a
    usable directory: missing and not creatable, not a directory, or not writable when
    ``writable``."""
    access = os.R_OK | os.X_OK | (os.W_OK if writable else 0)
    if path.exists():
        if not path.is_dir():
            raise SettingsError(f"{setting} {path} is not a directory")
        if not os.access(path, access):
            need = "readable and writable" if writable else "readable"
            raise SettingsError(f"{setting} {path} is not {need} by this user (uid {os.getuid()})")
        return
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise SettingsError(f"{setting} {path} cannot be created: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SettingsError(
            f"{setting} {path} does not exist and cannot be created: {parent} is not writable "
            f"by this user (uid {os.getuid()})"
        )


def load_or_create_secret_key(keys_dir: Path) -> str:
    """Return ``keys_dir/secret_key``, creating it with mode 0600 when missing.

    Refuses a key file that group or others can read.
    """
    path = keys_dir / "secret_key"
    try:
        if path.exists():
            check_private_file(path)
            value = path.read_text().strip()
            if len(value) < 32:
                raise SettingsError(f"{path.name} in AUTHSERVER_KEYS_DIR ({path}) is too short")
            return value
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
        return value
    except OSError as exc:
        raise SettingsError(f"AUTHSERVER_KEYS_DIR: cannot use {path}: {exc.strerror}") from None


def check_private_file(path: Path) -> None:
    """Raise :class:`SettingsError` when ``path`` is readable by group or others."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(
            f"{path.name} in AUTHSERVER_KEYS_DIR is readable by others "
            f"(mode {oct(mode & 0o777)}); run chmod 600 on it"
        )
