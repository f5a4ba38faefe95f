"""The running server's shared objects: a typed registry built once per process.

``create_app(settings)`` builds one (or takes one from the caller) and handlers
reach it with :func:`context_of`; the CLI builds one too. Everything else is
built on first use, so a CLI command that needs only the database never loads
the protocol engine, Redis or the templates; their modules are imported then
too (the ``TYPE_CHECKING`` imports below only name the types).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import redis
import structlog
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection

from authserver.db import create_engine, session_factory
from authserver.keys.service import KeyStore
from authserver.maintenance.state import ChangeWatcher
from authserver.resources import resource_dir
from authserver.security.crypto import SecretBox
from authserver.settings import Settings
from authserver.tokens.cache import TokenState

if TYPE_CHECKING:
    from starlette.templating import Jinja2Templates

    from authserver.branding import Brand
    from authserver.oauth.server import Server
    from authserver.security.passwords import PasswordHasher
    from authserver.security.throttle import CounterStore, Lockout, RateLimiter

TEMPLATES_DIR = resource_dir("templates")
log = structlog.get_logger("authserver")


@dataclass
class Context:
    settings: Settings
    engine: Engine = field(init=False)
    sessions: sessionmaker[Session] = field(init=False)
    #: wall-clock seconds for authentication times: ``auth_time`` stamped at login,
    #: ``max_age`` and the age of a pending authorization request (OIDC Core §2,
    #: §3.1.2.1); tests move it forward instead of sleeping
    clock: Callable[[], float] = field(default=time.time, repr=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.engine = create_engine(s.database_url, pool_size=s.db_pool_size)
        self.sessions = session_factory(self.engine)

    @cached_property
    def box(self) -> SecretBox:
        s = self.settings
        return SecretBox(s.secret_key.get(), tuple(k.get() for k in s.previous_secret_keys))

    @cached_property
    def keys(self) -> KeyStore:
        s = self.settings
        return KeyStore(
            self.sessions, self.box, self.changes,
            keys_dir=s.keys_dir,
            activation_delay=s.key_activation_delay,
            retain_seconds=max(s.access_token_ttl, s.id_token_ttl),
            rotation_interval=s.key_rotation_interval,
            jwks_max_age=s.jwks_max_age,
        )

    @cached_property
    def oauth(self) -> Server:
        """The protocol engine (Authlib's authorization server with our grants)."""
        from authserver.oauth.server import Server

        return Server(self)

    @cached_property
    def redis(self) -> redis.Redis | None:
        url = self.settings.redis_url
        if not url:
            return None
        from authserver.security.throttle import connect_redis

        return connect_redis(url)

    @cached_property
    def changes(self) -> ChangeWatcher:
        """The ``cluster_state`` counters, polled at most once a second."""
        return ChangeWatcher(self.engine)

    @cached_property
    def revoked(self) -> TokenState:
        """Revoked access tokens and subject cutoffs as the hot path sees them."""
        from authserver.tokens.cache import LocalTokenState, RedisTokenState

        if self.redis is None:
            return LocalTokenState(self.changes, self.settings.access_token_ttl)
        return RedisTokenState(self.redis, self.settings.redis_prefix, self.settings.access_token_ttl)

    @cached_property
    def counters(self) -> CounterStore:
        """Lockout and rate-limit counters: Redis with an in-process fallback,
        or in-process only on the embedded default."""
        from authserver.security.throttle import FallbackStore, MemoryStore, RedisStore

        if self.redis is None:
            return MemoryStore()
        return FallbackStore(RedisStore(self.redis, self.settings.redis_prefix), MemoryStore(), log)

    @cached_property
    def lockout(self) -> Lockout:
        from authserver.security.throttle import Lockout

        return Lockout(self.settings, self.counters)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        from authserver.security.throttle import RateLimiter

        return RateLimiter(self.settings, self.counters)

    @cached_property
    def passwords(self) -> PasswordHasher:
        from authserver.security.passwords import PasswordHasher

        return PasswordHasher.from_settings(self.settings)

    @cached_property
    def brand(self) -> Brand:
        """Name, logo, colours and support link (docs/branding.md)."""
        from authserver import branding

        return branding.from_settings(self.settings)

    @cached_property
    def templates(self) -> Jinja2Templates:
        """The page templates: ``THEME_DIR/templates`` first when set, then the built-in ones."""
        from starlette.templating import Jinja2Templates

        from authserver import branding, i18n

        directories = [str(TEMPLATES_DIR)]
        if self.settings.theme_dir is not None and (self.settings.theme_dir / "templates").is_dir():
            directories.insert(0, str(self.settings.theme_dir / "templates"))
        templates = Jinja2Templates(directory=directories)
        # read once per process (a theme's change needs a restart: docs/branding.md), not
        # checked against the file's time on every page
        templates.env.auto_reload = False
        templates.env.globals["issuer"] = self.settings.issuer
        templates.env.globals["brand"] = self.brand
        templates.env.filters["device_label"] = branding.device_label
        templates.env.filters["relative_time"] = branding.relative_time
        templates.env.filters["utc_iso"] = branding.utc_iso
        templates.env.filters["utc_text"] = branding.utc_text
        from authserver.web import language

        i18n.install(templates.env)  # gettext, and the filters that word things in the page's language
        language.install_filters(templates.env)
        return templates

    @cached_property
    def static_dirs(self) -> list[Path]:
        """Where ``/static/`` files are looked up: ``THEME_DIR/static`` first when set."""
        dirs = [TEMPLATES_DIR / "static"]
        if self.settings.theme_dir is not None and (self.settings.theme_dir / "static").is_dir():
            dirs.insert(0, self.settings.theme_dir / "static")
        return dirs

    def close(self) -> None:
        if "changes" in self.__dict__:
            self.changes.close()
        self.engine.dispose()
        connection = self.__dict__.get("redis")
        if connection is not None:
            connection.close()


def context_of(connection: HTTPConnection) -> Context:
    """The context of the app serving ``connection`` (set by ``create_app``)."""
    ctx: Context = connection.app.state.context
    return ctx
