"""Checks that run before protocol work: rate limits (per IP and per client)."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749.util import extract_basic_authorization

from authserver.errors import TooManyRequests


def client_id_of(request: Any) -> str | None:
    """The ``client_id`` a token-endpoint style request claims (form or Basic user),
    so every guess at one client's secret counts in that client's bucket."""
    if request.form.get("client_id"):
        return str(request.form["client_id"])
    try:
        client_id, _secret = extract_basic_authorization(request.headers)
    except ValueError:  # undecodable credentials; client authentication refuses them
        return None
    return client_id or None


def rate_limit(ctx: Any, bucket: str, ip: str, client_id: str | None = None) -> None:
    """Raise :class:`TooManyRequests` (429 with ``Retry-After``) when over the limit,
    per IP and per client (the limiter hashes the keys)."""
    if not ctx.settings.rate_limits:
        return
    allowed, retry_after = ctx.rate_limiter.check(bucket, f"ip:{ip}")
    if allowed and client_id:
        allowed, retry_after = ctx.rate_limiter.check(bucket, f"client:{client_id}")
    if not allowed:
        raise TooManyRequests(retry_after)
