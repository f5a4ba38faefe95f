"""The one edge for hostile input (README "Input limits").

Every request passes :class:`InputEdgeMiddleware` before any handler, so no
endpoint or page sees a parameter that breaks these rules, and none reaches
storage, a log line or a mail header:

* the path, every query parameter and every ``application/x-www-form-urlencoded``
  body parameter must be valid UTF-8 once percent-decoded;
* no value may hold a control character (C0 except tab/CR/LF in free text,
  DEL, C1) or a lone surrogate; identifiers (``client_id``, ``state``,
  ``username``, ``email``, …) may not hold tab, CR, LF, nor Unicode format
  characters (bidi overrides, zero-width characters);
* every value has a length cap (:data:`CAPS`, generous for real clients; any
  other name gets :data:`DEFAULT`), names are at most :data:`MAX_NAME` characters
  and there are at most :data:`MAX_FIELDS` of them;
* ``Authorization: Basic`` credentials that decode must be UTF-8 and follow the
  ``client_id`` / ``client_secret`` rules (RFC 6749 §2.3.1);
* a JSON body nests at most :data:`MAX_JSON_DEPTH` levels (checked before it is
  parsed, so the parser never recurses deeply) and its strings follow the
  free-text rule with :data:`MAX_JSON_STRING` characters.

A refusal is ``400 invalid_request`` (RFC 6749 §5.2): JSON for API clients, the
HTML error page for browsers (:func:`authserver.errors.error_response` decides).
The message names the parameter when it is a known one, never echoes a value.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_to_bytes

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver import errors

log = structlog.get_logger("authserver.input")


@dataclass(frozen=True)
class Rule:
    """At most ``max_chars`` characters; ``identifier`` also forbids whitespace
    controls and Unicode format characters."""

    max_chars: int
    identifier: bool = True


#: Caps per parameter name, in characters. Free text (passwords, ``claims``) may hold tab/CR/LF.
CAPS: Mapping[str, Rule] = {
    # clients and their credentials
    "client_id": Rule(255),
    "client_secret": Rule(512),
    "client_assertion": Rule(16384),
    "client_assertion_type": Rule(255),
    # authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 7636 §4.3)
    "response_type": Rule(64),
    "response_mode": Rule(32),
    "redirect_uri": Rule(2048),
    "post_logout_redirect_uri": Rule(2048),
    "scope": Rule(2048),
    "state": Rule(2048),
    "nonce": Rule(512),
    "prompt": Rule(64),
    "display": Rule(32),
    "max_age": Rule(16),
    "login_hint": Rule(512),
    "logout_hint": Rule(512),
    "id_token_hint": Rule(8192),
    "acr_values": Rule(512),
    "ui_locales": Rule(256),
    "claims_locales": Rule(256),
    "claims": Rule(8192, identifier=False),
    "request": Rule(16384),
    "request_uri": Rule(2048),
    "resource": Rule(2048),
    "audience": Rule(2048),
    "code_challenge": Rule(256),
    "code_challenge_method": Rule(16),
    # token, introspection, revocation (RFC 6749 §4.1.3, §6, RFC 7662, RFC 7009)
    "grant_type": Rule(255),
    "code": Rule(512),
    "code_verifier": Rule(256),
    "refresh_token": Rule(512),
    "token": Rule(8192),
    "token_type_hint": Rule(64),
    "assertion": Rule(16384),
    # pages
    "username": Rule(320),  # a username or an e-mail address
    "email": Rule(320),  # RFC 5321 §4.5.3.1: 64 + 1 + 255
    "password": Rule(1024, identifier=False),
    "current_password": Rule(1024, identifier=False),
    "new_password": Rule(1024, identifier=False),
    "confirm_password": Rule(1024, identifier=False),
    "csrf_token": Rule(256),
    "rid": Rule(128),
    "sid": Rule(256),
    "decision": Rule(32),
    "confirm": Rule(32),
    # passkeys: a WebAuthn response as JSON (attestation "none" keeps it small), its name
    "credential": Rule(16384, identifier=False),
    "passkey_name": Rule(64),
    "passkey": Rule(20),
}
DEFAULT = Rule(4096, identifier=False)
MAX_NAME = 64
MAX_FIELDS = 100
MAX_QUERY_BYTES = 16384
MAX_JSON_DEPTH = 16
MAX_JSON_STRING = 8192
#: ``scope["state"]`` key of the form pairs this edge already parsed and checked
FORM_STATE = "checked_form"

# C0 except tab/LF/CR, DEL, C1, surrogates (from "\ud800" escapes in JSON)
_TEXT_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# all of C0, DEL, C1, surrogates, and the format characters that reorder or hide text
_IDENT_BAD = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]"
)
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


class InputRejected(errors.AppError):
    """A request broke an input rule; ``hint`` is safe to show (no value in it).
    ``400 invalid_request`` (RFC 6749 §5.2), or the error page for a browser."""

    status_code = 400
    error = "invalid_request"

    def __init__(self, hint: str) -> None:
        super().__init__(hint)


def _label(name: str) -> str:
    return f"'{name}'" if name in CAPS else "a parameter"


def check_value(name: str, value: str, *, default: Rule = DEFAULT) -> None:
    """Raise :class:`InputRejected` when ``value`` breaks the rule for ``name``."""
    rule = CAPS.get(name, default)
    if len(value) > rule.max_chars:
        raise InputRejected(f"The value of {_label(name)} is too long (at most {rule.max_chars} characters).")
    if (_IDENT_BAD if rule.identifier else _TEXT_BAD).search(value):
        raise InputRejected(f"The value of {_label(name)} contains a control or invisible character.")


def check_pairs(pairs: Iterable[tuple[str, str]]) -> None:
    for name, value in pairs:
        if len(name) > MAX_NAME or _IDENT_BAD.search(name):
            raise InputRejected("A parameter name is malformed or too long.")
        check_value(name, value)


def parse_urlencoded(raw: bytes, what: str) -> list[tuple[str, str]]:
    """Strictly decode ``a=b&c=d`` (UTF-8, at most :data:`MAX_FIELDS` fields) and check every pair."""
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS,
                          encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InputRejected(f"The {what} is not valid UTF-8.") from None
    except ValueError:
        raise InputRejected(f"The {what} has too many fields (at most {MAX_FIELDS}).") from None
    check_pairs(pairs)
    return pairs


def check_path(raw_path: bytes) -> None:
    try:
        path = unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        raise InputRejected("The path is not valid UTF-8.") from None
    if len(path) > 2048 or _IDENT_BAD.search(path):
        raise InputRejected("The path is malformed or too long.")


def check_basic(authorization: str) -> None:
    """Credentials of ``Authorization: Basic`` (RFC 6749 §2.3.1: form-urlencoded, then base64).

    Base64 that does not decode is left to client authentication (``invalid_client``);
    credentials that decode to something that is not UTF-8, or that break the
    ``client_id``/``client_secret`` rules, are refused here."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return
    try:
        raw = base64.b64decode(token.strip())
    except (binascii.Error, ValueError):
        return
    try:
        user, _, secret = raw.decode("utf-8").partition(":")
        user, secret = unquote(user, errors="strict"), unquote(secret, errors="strict")
    except UnicodeDecodeError:
        raise InputRejected("The Basic credentials are not valid UTF-8.") from None
    check_value("client_id", user)
    check_value("client_secret", secret)


def load_json(raw: bytes) -> Any:
    """Parse a JSON body after checking its depth without recursion; check every string.

    Raises :class:`InputRejected` for bad UTF-8, nesting deeper than
    :data:`MAX_JSON_DEPTH` or a string that breaks the free-text rule; returns
    ``None`` for text that is not JSON (the endpoint answers that itself)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputRejected("The JSON body is not valid UTF-8.") from None
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', raw)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        if depth > MAX_JSON_DEPTH:
            raise InputRejected(f"The JSON body nests too deeply (at most {MAX_JSON_DEPTH} levels).")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    _check_json_strings(body)
    return body


def _check_json_strings(node: Any) -> None:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            check_value("", item, default=Rule(MAX_JSON_STRING, identifier=False))
        elif isinstance(item, dict):
            for key, value in item.items():
                if len(key) > MAX_NAME or _IDENT_BAD.search(key):
                    raise InputRejected("A JSON member name is malformed or too long.")
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def first_headers(scope: Scope, names: frozenset[bytes]) -> dict[bytes, str]:
    """The first value of each of ``names`` (lower-case, as ASGI gives them) in one pass
    over the request's headers: what ``Headers.get`` gives, without a scan and a raised
    ``KeyError`` for every header a request lacks."""
    found: dict[bytes, str] = {}
    for key, value in scope["headers"]:
        if key in names and key not in found:
            found[key] = value.decode("latin-1")
    return found


def _content_type(value: str) -> str:
    return value.split(";")[0].strip().lower()


_EDGE_HEADERS = frozenset({b"content-type", b"authorization"})


class InputEdgeMiddleware:
    """Pure ASGI: checks the path, query, Basic credentials and form or JSON body,
    then hands the buffered body on unchanged. Sits inside the request-context
    middleware, whose body limit bounds what is buffered here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = first_headers(scope, _EDGE_HEADERS)
        ctype = _content_type(headers.get(b"content-type", ""))
        buffer = scope["method"] in ("POST", "PUT", "PATCH") and (
            ctype == "application/x-www-form-urlencoded" or ctype == "application/json" or ctype.endswith("+json"))
        body = b""
        if buffer:
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                body += message.get("body", b"")
                more = message.get("more_body", False)
        try:
            check_path(scope.get("raw_path") or scope["path"].encode())
            query: bytes = scope.get("query_string", b"")
            if len(query) > MAX_QUERY_BYTES:
                raise InputRejected(f"The query string is too long (at most {MAX_QUERY_BYTES} bytes).")
            if query:
                parse_urlencoded(query, "query string")
            authorization = headers.get(b"authorization")
            if authorization:
                check_basic(authorization)
            if buffer and body:
                if ctype == "application/x-www-form-urlencoded":
                    # kept for bridge.read_form, which would otherwise parse the body again
                    scope.setdefault("state", {})[FORM_STATE] = parse_urlencoded(body, "form body")
                else:
                    load_json(body)
        except InputRejected as exc:
            log.info("input_refused", reason=exc.hint)  # the access line has the path; never the value
            response = errors.render(exc, Request(scope))
            await response(scope, receive, send)
            return
        if not buffer:
            await self.app(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
