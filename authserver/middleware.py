"""Pure ASGI middleware: request id and access log, last-resort error page,
body size limit, security headers and CORS. Pure ASGI keeps the hot paths cheap;
its refusals are rendered by :mod:`authserver.errors` like every other error.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from urllib.parse import urlsplit

import structlog
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver import errors, metrics
from authserver.security.input import first_headers
from authserver.security.network import client_ip
from authserver.settings import Settings

log = structlog.get_logger("authserver.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# a random per-process prefix and a counter: unique, and no system call per request
_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)


def _reseed_request_ids() -> None:
    global _ID_PREFIX
    _ID_PREFIX = os.urandom(6).hex()


os.register_at_fork(after_in_child=_reseed_request_ids)

_READ_HEADERS = frozenset({b"x-request-id", b"origin", b"content-length", b"access-control-request-method"})

# CORS only where a browser-based client needs it: the endpoints a single-page app calls
# with fetch. The pages and /authorize are top-level navigations and get none
# (docs/decisions.md "Headers and CORS").
CORS_PATHS = frozenset({
    "/token", "/jwks.json", "/userinfo", "/revoke", "/introspect",
    "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
})


def _security_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    # an https logo (AUTHSERVER_BRAND_LOGO) is the one image from elsewhere
    logo = settings.brand_logo
    img_src = "'self' data:" + (f" {urlsplit(logo).scheme}://{urlsplit(logo).netloc}" if "://" in logo else "")
    headers = [
        (b"content-security-policy",
         # script-src and connect-src: the one page script (static/passkeys.js) and its fetch calls
         f"default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src {img_src}; "
         "frame-ancestors 'none'; base-uri 'none'".encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if settings.is_https:
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return headers


class RequestContextMiddleware:
    """Binds a request id, logs one access line (path only, never the query),
    adds security headers, enforces the body limit and hands any unexpected
    exception to :func:`errors.handle_unexpected` (a 500 without a trace)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.headers = _security_headers(settings)
        self.cors_origins = frozenset(settings.cors_origins)
        self.trusted_proxies = settings.trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = first_headers(scope, _READ_HEADERS)
        incoming = found.get(b"x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"
        peer = scope.get("client")
        # X-Forwarded-For is read only from a trusted proxy (security/network.py)
        ip = client_ip(peer[0] if peer else None, Headers(scope=scope), self.trusted_proxies)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_ip"] = ip
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder = [0]
        response_started = [False]
        path = scope["path"]
        origin = found.get(b"origin")
        cors = origin if (origin in self.cors_origins and path in CORS_PATHS) else None

        received = [0]

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > self.max_body:
                    raise _BodyTooLarge
            return message

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_started[0] = True
                status_holder[0] = message["status"]
                raw = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                raw.append((b"x-request-id", request_id.encode()))
                present = {k.lower() for k, _ in raw}
                raw.extend(h for h in self.headers if h[0] not in present)
                if cors:
                    raw.append((b"access-control-allow-origin", cors.encode()))
                    raw.append((b"vary", b"Origin"))
                    # RFC 9449 §7.1, §8: a browser client must be able to read these
                    raw.append((b"access-control-expose-headers", b"WWW-Authenticate, DPoP-Nonce"))
                message["headers"] = raw
            await send(message)

        length = found.get(b"content-length")
        try:
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                refusal = errors.PayloadTooLarge() if length.isdigit() else errors.BadRequest()
                await errors.render(refusal, Request(scope))(scope, receive, send_wrapper)
            elif cors and scope["method"] == "OPTIONS" and b"access-control-request-method" in found:
                await _preflight(send, cors, request_id)
                status_holder[0] = 204
            else:
                await self.app(scope, limited_receive, send_wrapper)
        except _BodyTooLarge:
            if not response_started[0]:
                await errors.render(errors.PayloadTooLarge(), Request(scope))(scope, receive, send_wrapper)
            status_holder[0] = 413
        except Exception as exc:
            if not response_started[0]:
                response = await errors.handle_unexpected(Request(scope), exc)
                await response(scope, receive, send_wrapper)
            else:
                log.exception("unhandled_error", exc_type=type(exc).__name__, path=path)
            status_holder[0] = 500
        finally:
            recorder = metrics.record
            if recorder.enabled:
                recorder.request(route_template(scope), scope["method"], status_holder[0],
                                 time.perf_counter() - started)
            log.info(
                "request",
                method=scope["method"],
                # a hostile path (refused with a 400 by the input edge) is not copied into the log
                path=path if len(path) <= 256 and path.isprintable() else "(unprintable or over-long)",
                status=status_holder[0],
                ms=round((time.perf_counter() - started) * 1000, 1),
            )


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (``/register/{client_id}``), never the
    raw path: a metrics label must not grow with what strangers type (``unmatched``)."""
    route = scope.get("route")
    if route is None:
        return metrics.UNMATCHED
    if isinstance(route, Mount):
        return f"{route.path}/{{path}}"
    path: str = getattr(route, "path", metrics.UNMATCHED)
    root: str = scope.get("root_path", "")
    return root + path


class _BodyTooLarge(Exception):
    pass


async def _preflight(send: Send, origin: str, request_id: str) -> None:
    await send({
        "type": "http.response.start",
        "status": 204,
        "headers": [
            (b"access-control-allow-origin", origin.encode()),
            (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-allow-headers", b"Authorization, Content-Type, DPoP"),
            (b"access-control-max-age", b"600"),
            (b"vary", b"Origin"),
            (b"x-request-id", request_id.encode()),
        ],
    })
    await send({"type": "http.response.body", "body": b""})
