"""The one bridge between Starlette and Authlib's synchronous server.

* :class:`FrozenRequest` — an ``OAuth2Request`` built from a body read once in
  the event loop (form parameters only on the token, introspection and
  revocation endpoints; the query string as well only where the spec allows).
* :func:`call` — runs an Authlib call plus a sync SQLAlchemy session in a
  worker thread and commits, even when Authlib *returned* an error response:
  a reuse-detection revocation must survive the ``invalid_grant`` it causes.
* :func:`to_response` — Authlib's ``(status, body, headers)`` to a Starlette
  ``Response``.
"""

from __future__ import annotations

import contextvars
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.requests import JsonPayload, JsonRequest
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from authserver.db import KEEP_LOADED, ON_COMMIT
from authserver.errors import BadRequest
from authserver.security.input import FORM_STATE, InputRejected, load_json

if TYPE_CHECKING:
    from authserver.context import Context

T = TypeVar("T")
#: what Authlib's server methods return: ``(status, body, headers)``
Result = tuple[int, Any, list[Any]]

#: The database session of the request being handled in this worker thread.
current_db: contextvars.ContextVar[Session] = contextvars.ContextVar("current_db")


class FrozenPayload(OAuth2Payload):
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._data: dict[str, str] = {}
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._data.setdefault(key, value)
            self._datalist[key].append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class FrozenRequest(OAuth2Request):
    """An ``OAuth2Request`` over parameters that were already read."""

    #: the request's checked DPoP proof (``oauth.dpop.Proof``), set by the token endpoint
    dpop: Any = None

    def __init__(self, method: str, uri: str, headers: Any, form: list[tuple[str, str]],
                 args: list[tuple[str, str]], *, include_args: bool, ip: str) -> None:
        super().__init__(method, uri, headers=headers)
        self._form = FrozenPayload(form)
        self._args = FrozenPayload(args)
        self.payload = FrozenPayload([*args, *form] if include_args else form)
        self.ip = ip

    @property
    def args(self) -> dict[str, str]:
        return self._args.data

    @property
    def form(self) -> dict[str, str]:
        return self._form.data

    @property
    def form_items(self) -> list[tuple[str, str]]:
        """Every form parameter, repeated ones included."""
        return [(k, v) for k, values in self._form.datalist.items() for v in values]


class FrozenJsonRequest(JsonRequest):
    def __init__(self, method: str, uri: str, headers: Any, body: Any, ip: str) -> None:
        super().__init__(method, uri, headers)
        self.payload = _JsonPayload(body)
        self.ip = ip


class _JsonPayload(JsonPayload):
    def __init__(self, body: Any) -> None:
        self._body = body

    @property
    def data(self) -> Any:
        return self._body


async def read_form(request: Request) -> list[tuple[str, str]]:
    """The urlencoded body as a list of pairs; any other content type gives none."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method != "POST" or ctype != "application/x-www-form-urlencoded":
        return []
    checked = request.scope.get("state", {}).get(FORM_STATE)
    if checked is not None:  # parsed and checked by the input edge (security/input.py)
        return list(checked)
    # parse_qsl: Starlette's form() goes through the multipart machinery, ~3x slower
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        return parse_qsl(body, keep_blank_values=True, max_num_fields=100, encoding="utf-8", errors="replace")
    except ValueError:
        raise BadRequest("Too many form fields.") from None


async def freeze(request: Request, *, include_args: bool = False) -> FrozenRequest:
    form = await read_form(request)
    return FrozenRequest(
        request.method,
        _canonical_url(request),
        request.headers,
        form,
        list(request.query_params.multi_items()),
        include_args=include_args,
        ip=request.state.client_ip,
    )


async def freeze_json(request: Request) -> FrozenJsonRequest:
    raw = await request.body()
    try:
        body = load_json(raw) if raw else {}
    except InputRejected as exc:
        raise BadRequest(exc.hint) from None
    return FrozenJsonRequest(request.method, _canonical_url(request), request.headers, body,
                             request.state.client_ip)


def _canonical_url(request: Request) -> str:
    """The URL under the configured issuer: behind a TLS proxy the socket sees
    ``http://`` and Authlib would refuse it as insecure transport."""
    url = request.app.state.context.settings.issuer + request.url.path
    return f"{url}?{request.url.query}" if request.url.query else url


def _run_in_session(ctx: Context, fn: Callable[[], T]) -> T:
    session = ctx.sessions()
    session.info[KEEP_LOADED] = []  # one request: rows it loads stay in the identity map (db.py)
    token = current_db.set(session)
    try:
        result = fn()
        # work that touched no table (a JWT issued or introspected from the caches) left
        # no transaction: committing would only run SQLAlchemy's bookkeeping
        if session.in_transaction() or ON_COMMIT in session.info:
            session.commit()
        return result
    finally:  # close() rolls back whatever did not commit
        current_db.reset(token)
        session.close()


#: set while :func:`call` runs work on the event loop (see :class:`NeedsThread`)
on_the_loop: contextvars.ContextVar[bool] = contextvars.ContextVar("on_the_loop", default=False)


class NeedsThread(Exception):
    """Raised by work running on the loop that would have to wait (``time.sleep``):
    :func:`call` rolls its transaction back and runs it again in a worker thread. The
    token endpoint keeps the request's checked DPoP proof for the second run (its
    ``jti`` is already spent); the rate-limit counter counts that request twice."""


async def call(ctx: Context, fn: Callable[[], T], *, on_loop: bool = False) -> T:
    """Run ``fn`` in a worker thread inside one committed database transaction.

    ``on_loop`` runs it right here on the event loop instead, for work whose usual cost
    is CPU plus at most one Redis round trip (a JWT issued by ``client_credentials``, or
    one introspected; its client from the cache): the hand-off to a thread and back cost
    more than that work (docs/performance.md). Only on Postgres with a Redis that
    answers (:func:`loop_allowed`); a cache miss then holds the loop for one database
    read; nothing that can wait on a remote party (a client's ``jwks_uri``) or on a
    clock (:class:`NeedsThread`) runs this way."""
    if on_loop and loop_allowed(ctx):
        flag = on_the_loop.set(True)
        try:
            return _run_in_session(ctx, fn)
        except NeedsThread:
            pass
        finally:
            on_the_loop.reset(flag)
    return await run_in_threadpool(_run_in_session, ctx, fn)


def loop_allowed(ctx: Context) -> bool:
    """Postgres (SQLite's writer lock can hold a reader for seconds), and a Redis that
    answered lately: during an outage every cache read waits for its timeout, which
    must not stop the whole loop."""
    settings = ctx.settings
    return (not settings.is_sqlite and settings.redis_url is not None and ctx.revoked.answering()
            and not getattr(ctx.counters, "degraded", False))


def cache_only(request: FrozenRequest) -> bool:
    """No client assertion (RFC 7523): verifying one may fetch the client's ``jwks_uri``."""
    return "client_assertion" not in request.form


def to_response(result: Result) -> Response:
    status, body, pairs = result
    headers = dict(pairs or [])
    if isinstance(body, dict | list):
        body = orjson.dumps(body)  # compact UTF-8, like json.dumps with separators, ~10x faster
        headers["Content-Type"] = "application/json"
    return Response(body or b"", status_code=status, headers=headers)
