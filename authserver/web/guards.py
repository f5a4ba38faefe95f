"""Checks that run before protocol work: request budgets per client IP.

Failed client authentication is counted by the protocol engine
(``oauth.server.Server.authenticate_client``), by (client, address) and by
address, so strangers cannot spend a client's budget.
"""

from __future__ import annotations

from typing import Any

from authserver.errors import TooManyRequests


def rate_limit(ctx: Any, bucket: str, ip: str) -> None:
    """Raise :class:`TooManyRequests` (429 with ``Retry-After``) when this IP is over
    the bucket's limit (the limiter hashes the key)."""
    if not ctx.settings.rate_limits:
        return
    allowed, retry_after = ctx.rate_limiter.check(bucket, f"ip:{ip}")
    if not allowed:
        raise TooManyRequests(retry_after)
