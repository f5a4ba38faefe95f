"""Checks that run before protocol work: rate limits (per IP and per client)."""

from __future__ import annotations

import hashlib
from typing import Any

from authserver.errors import TooManyRequests


def rate_limit(ctx: Any, bucket: str, ip: str, client_key: str | None = None) -> None:
    """Raise :class:`TooManyRequests` (429 with ``Retry-After``) when over the limit."""
    if not ctx.settings.rate_limits:
        return
    allowed, retry_after = ctx.rate_limiter.check(bucket, f"ip:{ip}")
    if allowed and client_key:
        digest = hashlib.sha256(client_key.encode()).hexdigest()[:32]
        allowed, retry_after = ctx.rate_limiter.check(bucket, f"client:{digest}")
    if not allowed:
        raise TooManyRequests(retry_after)
