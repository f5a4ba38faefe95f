"""Checks that run before protocol work: request budgets per client IP.

Failed client authentication is counted by the protocol engine
(``oauth.server.Server.authenticate_client``), by (client, address) and by
address, so strangers cannot spend a client's budget.
"""

from __future__ import annotations

from typing import Any

from authserver.errors import TooManyRequests
from authserver.i18n import N_


def rate_limit(ctx: Any, bucket: str, ip: str) -> None:
    """Raise :class:`TooManyRequests` (429 with ``Retry-After``) when this IP is over
    the bucket's limit (the limiter hashes the key)."""
    if not ctx.settings.rate_limits:
        return
    allowed, retry_after = ctx.rate_limiter.check(bucket, f"ip:{ip}")
    if not allowed:
        raise TooManyRequests(retry_after)


def _user_code_key(ctx: Any, ip: str) -> str:
    return f"usercode:ip:{ctx.box.keyed_hash(ip)}"


def user_code_budget(ctx: Any, ip: str) -> None:
    """Refuse the device verification page (429) to an address that typed too many wrong
    user codes (``RATE_LIMIT_USER_CODE_FAILURES``): guessing is bounded per address
    (RFC 8628 §5.1)."""
    if not ctx.settings.rate_limits:
        return
    limit = ctx.settings.rate_limit_user_code_failures
    if ctx.counters.failures(_user_code_key(ctx, ip), limit.window) >= limit.limit:
        raise TooManyRequests(limit.window, N_("Too many wrong codes from this address. Try again later."))


def user_code_failed(ctx: Any, ip: str) -> None:
    if ctx.settings.rate_limits:
        ctx.counters.add_failure(_user_code_key(ctx, ip), ctx.settings.rate_limit_user_code_failures.window)
