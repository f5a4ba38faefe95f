"""The authorization request pipeline (RFC 6749 §4.1.1, OIDC Core §3.1.2).

Authlib validates the client, ``redirect_uri``, ``response_type``, scope and
PKCE (``get_consent_grant``); then the checks in :data:`CHECKS` run in order,
each either passing, raising a protocol error (sent to the redirect URI), or
asking for an interaction (login, MFA, consent). With ``prompt=none`` an
interaction becomes ``login_required`` / ``consent_required`` /
``interaction_required`` instead. When every check passes the code is issued.
Every redirect carries ``iss`` (RFC 9207 §2), errors included.

A pending request is kept in the browser session under a random ``rid`` while
the user logs in or consents, then resumed with :func:`resume`: the login, MFA and
consent POSTs call it themselves and answer with where the pipeline goes next (the
next page, or the client's redirect URI), so a login and consent take no extra hop
through ``/authorize/resume``. For a
browser that has not signed in, that session is the anonymous one sealed in
its cookie, so nothing is stored for strangers; the oldest pending requests
give way when the cookie would grow too large.

:func:`missing_step` is the one rule for "has this session the whole
authentication this request needs" (password, and the second factor when the
account, the client or ``acr_values`` asks for it); the pipeline's checks and
the page wrapper's ``signed_in`` requirement both use it.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.base import OAuth2Error

from authserver.accounts import mfa as factors
from authserver.accounts import service as accounts
from authserver.accounts.models import User
from authserver.clients import pushed
from authserver.clients.models import Client
from authserver.consents import service as consents
from authserver.i18n import N_
from authserver.oauth import vocabulary
from authserver.oauth.bridge import FrozenRequest, Result, current_db
from authserver.oauth.errors import (
    AccessDeniedError,
    ConsentRequiredError,
    InteractionRequiredError,
    InvalidRequestError,
    InvalidRequestUriError,
    LoginRequiredError,
    RegistrationNotSupportedError,
    RequestNotSupportedError,
    RequestUriNotSupportedError,
    UnsupportedResponseTypeError,
)
from authserver.oauth.models import Principal
from authserver.oauth.vocabulary import ACR_MFA as ACR_MFA  # re-exported for the pages
from authserver.oauth.vocabulary import ACR_PHR as ACR_PHR
from authserver.oauth.vocabulary import ACR_PWD as ACR_PWD
from authserver.oauth.vocabulary import AMR_SECOND_FACTORS
from authserver.sessions import service as sessions
from authserver.sessions.models import BrowserSession

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from authserver.context import Context
    from authserver.oauth.grants import AuthorizationCodeGrant

PENDING_TTL = 1800
MAX_PENDING = 10
SIGN_IN_EXPIRED = N_("This sign-in request has expired. Start again from the application.")
REQUEST_TOO_LARGE = N_("This sign-in request is too large to keep. Start again from the application.")


@dataclass
class Outcome:
    """What the endpoint should send: a redirect, or an HTML error page."""

    location: str | None = None
    error: str | None = None
    error_description: str | None = None
    status: int = 302
    cookie: str | None = None  # a new session cookie value to set
    #: an interaction the request needs (``login``, ``mfa``, ``consent``): ``location`` is
    #: its page, ``rid`` the pending request (``pushed`` through ``/par``) and ``session``
    #: the browser session holding it
    interaction: str | None = None
    rid: str | None = None
    pushed: bool = False
    session: BrowserSession | None = field(default=None, repr=False)


@dataclass
class Interaction(Exception):
    """A check needs the user: ``kind`` is ``login``, ``mfa`` or ``consent``."""

    kind: str


@dataclass
class State:
    """Everything the checks look at."""

    ctx: Context
    request: FrozenRequest
    grant: AuthorizationCodeGrant
    session: BrowserSession | None
    pending: dict[str, Any] | None
    params: dict[str, str] = field(default_factory=dict)
    prompts: set[str] = field(default_factory=set)
    claims: dict[str, Any] | None = None
    hint_sub: str | None = None
    #: the parameters came from a pushed authorization request (RFC 9126)
    pushed: bool = False

    @property
    def user(self) -> User | None:
        if self.session is None or not self.session.user_id:
            return None
        return accounts.get_user(current_db.get(), self.session.user_id, with_roles=False)

    @property
    def user_id(self) -> str:
        """The logged-in user's id; only for checks that run after ``check_login``."""
        assert self.session is not None and self.session.user_id
        return self.session.user_id

    @property
    def amr(self) -> list[str]:
        return list(self.session.amr or []) if self.session is not None else []

    @property
    def just_authenticated(self) -> bool:
        """The session logged in after this request arrived (ends the prompt=login loop)."""
        # auth_time has one-second resolution: also require a new session (log_in
        # replaces it), or a session from the same second would pass unchallenged
        return bool(self.pending and self.session and self.session.auth_time
                    and self.session.auth_time >= self.pending["created"]
                    and self.session.sid != self.pending.get("sid"))


# -- checks, in order ----------------------------------------------------------


def check_pushed(s: State) -> None:
    """RFC 9126 §5 and §6: with ``REQUIRE_PUSHED_AUTHORIZATION_REQUESTS`` or the client's
    ``require_pushed_authorization_requests``, only pushed requests are accepted."""
    if s.pushed:
        return
    client = s.grant.request.client.row
    if s.ctx.settings.require_pushed_authorization_requests or client.require_pushed_authorization_requests:
        raise InvalidRequestError("Authorization requests of this client must be pushed to the "
                                  "pushed_authorization_request_endpoint first (RFC 9126).")


def check_request_objects(s: State) -> None:
    """OIDC Core §6: request objects are not supported, and say so (never ignored)."""
    if "request" in s.params:
        raise RequestNotSupportedError("The 'request' parameter is not supported.")
    if "request_uri" in s.params:
        raise RequestUriNotSupportedError("The 'request_uri' parameter is not supported.")
    if "registration" in s.params:
        raise RegistrationNotSupportedError("The 'registration' parameter is not supported.")


def check_prompt(s: State) -> None:
    """OIDC Core §3.1.2.1: ``none`` must stand alone."""
    s.prompts = set(s.params.get("prompt", "").split())
    if "none" in s.prompts and len(s.prompts) > 1:
        raise InvalidRequestError("'prompt=none' cannot be combined with other values.")


def check_max_age(s: State) -> None:
    raw = s.params.get("max_age")
    if raw is not None and not re.fullmatch(r"[0-9]{1,10}", raw):
        raise InvalidRequestError("'max_age' must be a non-negative integer.")


def check_dpop_jkt(s: State) -> None:
    """RFC 9449 §10: ``dpop_jkt`` is the JWK SHA-256 thumbprint the code will be bound to."""
    raw = s.params.get("dpop_jkt")
    if raw is not None and not re.fullmatch(r"[A-Za-z0-9_-]{43}", raw):
        raise InvalidRequestError("'dpop_jkt' must be a JWK SHA-256 thumbprint (RFC 9449, section 10).")


def check_claims(s: State) -> None:
    """OIDC Core §5.5: the ``claims`` parameter is a JSON object."""
    raw = s.params.get("claims")
    if not raw:
        return
    if len(raw) > 4000:
        raise InvalidRequestError("'claims' is too long.")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidRequestError("'claims' is not valid JSON.") from None
    if not isinstance(value, dict):
        raise InvalidRequestError("'claims' must be a JSON object.")
    s.claims = {k: v for k, v in value.items() if k in ("userinfo", "id_token") and isinstance(v, dict)}


def check_id_token_hint(s: State) -> None:
    """OIDC Core §3.1.2.1: an ID token we issued (expired is fine) naming the user."""
    hint = s.params.get("id_token_hint")
    if not hint:
        return
    claims = s.ctx.oauth.token_issuer.verify_id_token_hint(hint)
    if claims is None:
        raise InvalidRequestError("'id_token_hint' is not an ID token issued by this server.")
    s.hint_sub = claims["sub"]


def check_login(s: State) -> None:
    """Log in when there is no session user, when ``prompt=login``, when the
    session is older than ``max_age``, or when ``id_token_hint`` names someone else."""
    user = s.user
    if user is None or user.disabled:
        raise Interaction("login")
    if s.just_authenticated:
        return
    if "login" in s.prompts:
        raise Interaction("login")
    max_age = s.params.get("max_age")
    if max_age is not None and s.ctx.clock() - (s.session.auth_time or 0) > int(max_age):  # type: ignore[union-attr]
        raise Interaction("login")
    if s.hint_sub is not None and s.hint_sub != user.id:
        raise Interaction("login")


def mfa_required(db: Session, user_id: str, client: Client | None, acr_values: str) -> bool:
    """A second factor is needed when the user enrolled one (TOTP or a passkey), the client
    is registered ``require_mfa``, or ``acr_values`` asks for it (OIDC Core §3.1.2.1)."""
    requested = acr_values.split()
    return bool((client is not None and client.require_mfa) or ACR_MFA in requested
                or ACR_PHR in requested or factors.has_mfa(db, user_id))


def passkey_required(acr_values: str) -> bool:
    """``acr_values`` asks for phishing-resistant authentication: only a passkey will do."""
    return ACR_PHR in acr_values.split()


def second_factor_missing(db: Session, amr: list[str], user_id: str, client: Client | None,
                          acr_values: str) -> bool:
    """The session (``amr``) lacks the second factor this request needs: a passkey (``hwk``)
    when ``acr_values`` asks for :data:`ACR_PHR`, else any second factor when
    :func:`mfa_required`."""
    if passkey_required(acr_values):
        return "hwk" not in amr
    return not (AMR_SECOND_FACTORS & set(amr)) and mfa_required(db, user_id, client, acr_values)


def cached_client(ctx: Context, client_id: str) -> Client | None:
    """The client's row from the token endpoint's cache (``CLIENT_CACHE_TTL``,
    :meth:`Server.query_client`): the interaction pages read only its columns."""
    found = ctx.oauth.query_client(client_id) if client_id else None
    return found.row if found is not None else None


def missing_step(ctx: Context, db: Session, session: BrowserSession | None,
                 rid: str | None) -> Literal["login", "mfa"] | None:
    """What ``session`` still lacks of the authentication that pending request ``rid`` (or,
    without one, the account itself) needs: ``"login"``, ``"mfa"``, or ``None`` when complete."""
    user = accounts.get_user(db, session.user_id, with_roles=False) if session is not None and session.user_id else None
    if session is None or user is None or user.disabled:
        return "login"
    params = dict(pending_params(session, rid) or []) if rid else {}
    client = cached_client(ctx, params.get("client_id", "")) if params else None
    if second_factor_missing(db, list(session.amr or []), user.id, client, params.get("acr_values", "")):
        return "mfa"
    return None


def check_mfa(s: State) -> None:
    """The second factor, by :func:`mfa_required`."""
    client = s.grant.request.client.row
    if second_factor_missing(current_db.get(), s.amr, s.user_id, client, s.params.get("acr_values", "")):
        raise Interaction("mfa")


def check_consent(s: State) -> None:
    client = s.grant.request.client
    if client.row.skip_consent:
        return
    if s.pending and s.pending.get("consented"):
        return
    if "consent" in s.prompts:
        raise Interaction("consent")
    granted = consents.granted_scopes(current_db.get(), s.user_id, client.client_id)
    if not granted or not set(s.grant.request.scope.split()) <= granted:
        raise Interaction("consent")


def check_denied(s: State) -> None:
    if s.pending and s.pending.get("denied"):
        raise AccessDeniedError("The user denied the request.")


CHECKS: list[tuple[str, Callable[[State], None]]] = [
    ("pushed when required", check_pushed),
    ("request objects are refused", check_request_objects),
    ("prompt is well formed", check_prompt),
    ("max_age is well formed", check_max_age),
    ("dpop_jkt is well formed", check_dpop_jkt),
    ("claims is well formed", check_claims),
    ("id_token_hint is ours", check_id_token_hint),
    ("the user denied", check_denied),
    ("the user is logged in", check_login),
    ("the second factor is done", check_mfa),
    ("the user consented", check_consent),
]

PROMPT_NONE_ERRORS = {"login": LoginRequiredError, "mfa": InteractionRequiredError,
                      "consent": ConsentRequiredError}


# -- running the pipeline ------------------------------------------------------


def with_iss(location: str, issuer: str) -> str:
    location_with_iss: str = add_params_to_uri(location, [("iss", issuer)])
    return location_with_iss


def _error_outcome(ctx: Context, error: OAuth2Error, state: str | None) -> Outcome:
    if error.redirect_uri:
        error.state = state
        _status, _body, headers = error()
        return Outcome(location=with_iss(dict(headers)["Location"], ctx.settings.issuer))
    return Outcome(error=error.error, error_description=error.get_error_description(), status=400)


def run(ctx: Context, request: FrozenRequest, session: BrowserSession | None, rid: str | None = None) -> Outcome:
    """Validate, check, and either issue a code or hand over to an interaction page."""
    pending = _pending(session, rid, ctx.clock())
    if rid and pending is None:
        return Outcome(error="invalid_request", status=400, error_description=SIGN_IN_EXPIRED)
    is_pushed = bool(pending and pending.get("pushed"))
    if rid is None and request.payload.data.get("request_uri", "").startswith(pushed.PREFIX):
        # a pushed request; any other request_uri is a request object by reference, refused below
        resolved = _pushed_request(ctx, request)
        if isinstance(resolved, Outcome):
            return resolved
        request, is_pushed = resolved, True
    state_param = request.payload.state
    try:
        grant = ctx.oauth.get_consent_grant(request)
    except UnsupportedResponseTypeError as error:
        if not request.payload.response_type:
            # RFC 6749 §4.1.2.1: a missing required parameter is invalid_request
            error = InvalidRequestError("Missing 'response_type'.", redirect_uri=error.redirect_uri)
        return _error_outcome(ctx, error, state_param)
    except OAuth2Error as error:
        return _error_outcome(ctx, error, state_param)
    except ValueError:
        # Authlib refuses to quote characters outside RFC 6749 §A's set in an error
        return Outcome(error="invalid_request", status=400,
                       error_description=N_("The request contains characters that are not allowed."))
    s = State(ctx, request, grant, session, pending, params=request.payload.data, pushed=is_pushed)
    try:
        for _name, check in CHECKS:
            check(s)
    except OAuth2Error as error:
        error.redirect_uri = grant.redirect_uri
        _forget(session, rid)
        return _error_outcome(ctx, error, state_param)
    except Interaction as needed:
        if "none" in s.prompts:
            _forget(session, rid)
            return _error_outcome(ctx, PROMPT_NONE_ERRORS[needed.kind](redirect_uri=grant.redirect_uri),
                                  state_param)
        return _interact(ctx, request, session, rid, needed.kind, is_pushed=is_pushed)
    user = s.user
    assert session is not None and user is not None  # check_login passed
    principal = Principal(
        user.id, session.auth_time, list(session.amr or []), session.acr, session.sid,
        claims=s.claims, device_id=session.device_id, user=user,
    )
    status, _body, headers = ctx.oauth.create_authorization_response(request, grant_user=principal, grant=grant)
    _forget(session, rid)
    location = dict(headers).get("Location")
    if status != 302 or not location:
        return Outcome(error="server_error", status=500, error_description="Could not issue the code.")
    return Outcome(location=with_iss(location, ctx.settings.issuer))


def resume(ctx: Context, session: BrowserSession | None, rid: str, headers: Any, ip: str) -> Outcome:
    """Run the pipeline again for pending request ``rid`` (after login, MFA or consent),
    with the parameters kept when it was first seen, as if sent to ``/authorize``.
    A pending device request (RFC 8628) goes on at the device page instead."""
    pending = (session.data or {}).get("authz", {}).get(rid) if session is not None and rid else None
    if pending is not None and vocabulary.DEVICE_PENDING in pending:
        return Outcome(location=f"{vocabulary.DEVICE_CONTINUE_PATH}?rid={rid}", status=303)
    params = pending_params(session, rid)
    if params is None:
        return Outcome(error="invalid_request", status=400, error_description=SIGN_IN_EXPIRED)
    frozen = FrozenRequest("GET", ctx.settings.issuer + "/authorize", headers, [], params,
                           include_args=True, ip=ip)
    return run(ctx, frozen, session, rid)


PUSHED_EXPIRED = ("This sign-in request has expired or was already used. Start again from the application.")


def _pushed_request(ctx: Context, request: FrozenRequest) -> FrozenRequest | Outcome:
    """The authorization request pushed as ``request_uri`` (RFC 9126 §4), claimed once.

    Only ``client_id`` is read beside ``request_uri``; every other parameter sent to
    ``/authorize`` is ignored and the pushed ones are used, as for a request object
    (RFC 9126 §4 defers to RFC 9101 §5: "the authorization server MUST only use the
    parameters in the Request Object"). An unknown, expired, used or foreign
    ``request_uri`` gets an error page, never a redirect: which ``redirect_uri`` the
    request was for is unknown (RFC 9126 §4, OIDC Core §3.1.2.6 ``invalid_request_uri``)."""
    data = request.payload.data
    client_id = data.get("client_id")
    if not client_id:
        return Outcome(error="invalid_request", status=400,
                       error_description="'client_id' is required with 'request_uri' (RFC 9126, section 4).")
    params = pushed.claim(current_db.get(), ctx.box, data["request_uri"], client_id)
    if params is None:
        return Outcome(error=InvalidRequestUriError.error, status=400, error_description=PUSHED_EXPIRED)
    return FrozenRequest("GET", request.uri, request.headers, [], params, include_args=True, ip=request.ip)


#: form parameters of client authentication, not of the authorization request (RFC 9126 §2.1)
CLIENT_AUTH_PARAMS = frozenset({"client_secret", "client_assertion", "client_assertion_type"})
#: what a pushed request may hold, like the pending requests a browser cookie keeps (3,800)
MAX_PUSHED_CHARS = 4000
#: the checks a pushed request passes before it is stored: those that need no user
PUSH_CHECKS = (check_request_objects, check_prompt, check_max_age, check_claims, check_id_token_hint)


def push(ctx: Context, request: FrozenRequest) -> Result:
    """The pushed authorization request endpoint (RFC 9126 §2): authenticate the client
    as at the token endpoint, validate the request as ``/authorize`` would (client,
    ``redirect_uri``, ``response_type``, scope, PKCE, and the checks that need no user),
    store it and answer ``201`` with ``request_uri`` and ``expires_in``. Errors are JSON
    (RFC 9126 §2.3), never redirects."""
    server = ctx.oauth
    try:
        client = server.authenticate_client(request, server.client_auth_methods, "par")
        form = request.form
        if "request_uri" in form:
            raise InvalidRequestError("'request_uri' cannot be pushed (RFC 9126, section 2.1).")
        if form.get("client_id", client.client_id) != client.client_id:
            raise InvalidRequestError("'client_id' is not the authenticated client (RFC 9126, section 2.1).")
        params = [(k, v) for k, v in request.form_items if k not in CLIENT_AUTH_PARAMS]
        if sum(len(k) + len(v) for k, v in params) > MAX_PUSHED_CHARS:
            raise InvalidRequestError(f"The pushed request is larger than {MAX_PUSHED_CHARS} characters.")
        if "client_id" not in form:
            params.append(("client_id", client.client_id))
        authorization = FrozenRequest("GET", ctx.settings.issuer + "/authorize", request.headers, [], params,
                                      include_args=True, ip=request.ip)
        grant = server.get_consent_grant(authorization)
        s = State(ctx, authorization, grant, None, None, params=authorization.payload.data, pushed=True)
        for check in PUSH_CHECKS:
            check(s)
    except OAuth2Error as error:
        # RFC 9126 §2.3: the error goes back in the response, shaped as RFC 6749 §5.2 (no state)
        error.redirect_uri = error.state = None
        if not request.form.get("response_type") and isinstance(error, UnsupportedResponseTypeError):
            error = InvalidRequestError("Missing 'response_type'.")
        return server.handle_error_response(request, error)
    except ValueError:
        return server.handle_error_response(
            request, InvalidRequestError("The request contains characters that are not allowed."))
    request_uri = pushed.store(current_db.get(), ctx.box, client.client_id, params)
    return 201, {"request_uri": request_uri, "expires_in": pushed.TTL}, list(vocabulary.NO_STORE_ITEMS)


def _pending(session: BrowserSession | None, rid: str | None, now: float) -> dict[str, Any] | None:
    if not rid or session is None:
        return None
    item: dict[str, Any] | None = (session.data or {}).get("authz", {}).get(rid)
    if not item or item["created"] + PENDING_TTL < now:
        return None
    return item


def pending_params(session: BrowserSession | None, rid: str | None) -> list[tuple[str, str]] | None:
    # pages only show the pending request; run() decides on Context.clock
    item = _pending(session, rid, time.time())
    return [(p[0], p[1]) for p in item["params"]] if item else None


def pending_language(session: BrowserSession | None, rid: str | None) -> tuple[str | None, str | None]:
    """The pending request's ``ui_locales`` (OIDC Core §3.1.2.1) and the language the user
    picked with the switcher during it (``lang``), each ``None`` when absent."""
    item = _pending(session, rid, time.time())
    if not item:
        return None, None
    ui_locales = next((str(p[1]) for p in item["params"] if p[0] == "ui_locales"), None)
    chosen = item.get("lang")
    return ui_locales, chosen if isinstance(chosen, str) else None


def update_pending(session: BrowserSession, rid: str, **changes: Any) -> None:
    authz = dict((session.data or {}).get("authz", {}))
    if rid in authz:
        authz[rid] = {**authz[rid], **changes}
        sessions.set_data(session, "authz", authz)


def _forget(session: BrowserSession | None, rid: str | None) -> None:
    if session is not None and rid and rid in (session.data or {}).get("authz", {}):
        authz = dict(session.data["authz"])
        authz.pop(rid)
        sessions.set_data(session, "authz", authz)


def _interact(ctx: Context, request: FrozenRequest, session: BrowserSession | None, rid: str | None,
              kind: str, *, is_pushed: bool = False) -> Outcome:
    # a browser that has not signed in gets an anonymous session kept in its cookie only
    session = session if session is not None else sessions.anonymous()
    if rid is None or rid not in (session.data or {}).get("authz", {}):
        rid = secrets.token_urlsafe(16)
        # "created" is compared with the session's auth_time: the same clock
        now = ctx.clock()
        authz = {k: v for k, v in (session.data or {}).get("authz", {}).items()
                 if v["created"] + PENDING_TTL > now}
        while len(authz) >= MAX_PENDING:
            authz.pop(min(authz, key=lambda k: authz[k]["created"]))
        params = [(k, v) for k, values in request.payload.datalist.items() for v in values]
        authz[rid] = {"params": params, "created": int(now), "sid": session.sid, "pushed": is_pushed}
        sessions.set_data(session, "authz", authz)
    cookie = None
    if sessions.is_anonymous(session):
        cookie = seal_anonymous(ctx, session, keep=rid)
        if cookie is None:
            return Outcome(error="invalid_request", status=400, error_description=REQUEST_TOO_LARGE)
    path = {"login": "/login", "mfa": "/login/mfa", "consent": "/consent"}[kind]
    return Outcome(location=f"{path}?rid={rid}", status=303, cookie=cookie, interaction=kind, rid=rid,
                   pushed=is_pushed, session=session)


def seal_anonymous(ctx: Context, session: BrowserSession, *, keep: str | None = None) -> str | None:
    """The anonymous session's cookie, dropping its oldest pending requests (other than
    ``keep``) until it fits; ``None`` when it cannot fit even so."""
    while True:
        try:
            return sessions.seal(ctx.box, session)
        except sessions.TooLargeError:
            others = {k: v for k, v in (session.data or {}).get("authz", {}).items() if k != keep}
            if not others:
                return None
            _forget(session, min(others, key=lambda k: others[k]["created"]))
