"""Our ``AuthorizationServer``: Authlib's engine wired to our storage and keys.

Endpoints call :meth:`Server.token_response`, :meth:`introspect`,
:meth:`revoke` or the authorization helpers inside :func:`bridge.call`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from authlib.oauth2 import rfc6749
from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidClientError, UnsupportedResponseTypeError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from sqlalchemy import select

from authserver import metrics
from authserver.clients import service as clients
from authserver.db import utcnow
from authserver.errors import TooManyRequests
from authserver.oauth import grants, vocabulary
from authserver.oauth.bridge import FrozenRequest, Result, current_db
from authserver.oauth.client_auth import ClientKeys, PrivateKeyJWT
from authserver.oauth.dpop import DPoP
from authserver.oauth.models import OAuthClient, Principal
from authserver.oauth.tokens import TokenIssuer
from authserver.roles.permissions import user_access
from authserver.security.throttle import ClientAuthFailures
from authserver.tokens import service as tokens
from authserver.tokens.models import RefreshToken

if TYPE_CHECKING:
    from authserver.context import Context


CLIENT_AUTHENTICATION_FAILED = "Client authentication failed."
#: how Authlib 1.9 describes an unknown client and credentials that fail every method
_AUTHLIB_CLIENT_FAILURES = ("The client does not exist on this server.", "The client cannot authenticate with methods")


class Server(rfc6749.AuthorizationServer):
    def __init__(self, ctx: Context) -> None:
        super().__init__(scopes_supported=list(vocabulary.SCOPES))
        self.ctx = ctx
        self._clients: dict[str, tuple[OAuthClient, float]] = {}
        self.clock = time.monotonic
        self.revoked = ctx.revoked
        self.auth_failures = ClientAuthFailures(ctx.settings, ctx.counters)
        self.token_issuer = TokenIssuer(ctx.settings, ctx.keys, self.revoked)
        self.dpop = DPoP(ctx.settings, ctx.redis)
        # http jwks_uri only while the server itself runs on http (loopback development)
        self.client_keys = ClientKeys(allow_http=not ctx.settings.is_https,
                                      allow_private=ctx.settings.private_destinations_allowed)
        self.register_client_auth_method(vocabulary.PRIVATE_KEY_JWT, PrivateKeyJWT(ctx.settings, self.client_keys))
        id_token = grants.IDTokenExtension()
        self.register_grant(grants.AuthorizationCodeGrant,
                            [grants.S256CodeChallenge(ctx.settings.require_pkce), id_token])
        self.register_grant(grants.RefreshTokenGrant, [id_token])
        self.register_grant(grants.PasswordGrant, [id_token])
        self.register_grant(grants.ClientCredentialsGrant)
        self.register_grant(grants.DeviceCodeGrant, [id_token])

    # -- Authlib's abstract methods ----------------------------------------

    def query_client(self, client_id: str) -> OAuthClient | None:
        """The client, from a per-process cache of ``CLIENT_CACHE_TTL`` seconds: the
        token, introspection and revocation hot paths then skip a query. A secret
        rotated or a client deleted elsewhere takes effect within that time."""
        ttl = self.ctx.settings.client_cache_ttl
        now = self.clock()
        cached = self._clients.get(client_id) if ttl else None
        if cached is not None and cached[1] > now:
            return cached[0]
        row = clients.get_client(current_db.get(), client_id)
        if ttl and row is not None:
            # a copy of its columns, bound to no session: the loading session's rollback
            # would expire the row itself under every thread that reads the cache
            row = clients.snapshot(row)
        client = OAuthClient(row, self.ctx.box) if row is not None else None
        if ttl and client is not None:
            if len(self._clients) > 10_000:
                self._clients.clear()
            self._clients[client_id] = (client, now + ttl)
        return client

    def create_oauth2_request(self, request: Any) -> Any:
        assert isinstance(request, FrozenRequest)
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> Result:
        return status, body, list(headers or [])

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib's hook bus; we audit at the call sites instead."""

    def get_authorization_grant(self, request: Any) -> Any:
        """Authlib's, with a description of our own for an unsupported ``response_type``:
        Authlib 1.9 passes its message and the value the wrong way round, so the
        description would be the client's ``response_type`` itself."""
        try:
            return super().get_authorization_grant(request)
        except UnsupportedResponseTypeError as error:
            error.description = "Only response_type 'code' is supported."
            raise

    def handle_error_response(self, request: Any, error: OAuth2Error) -> Result:
        if isinstance(error, InvalidClientError):
            # RFC 6749 §5.2: 401 and a challenge for the scheme we support
            error.status_code = 401
            status, body, _ = error(None)
            return 401, body, [*vocabulary.NO_STORE_ITEMS, ("Content-Type", "application/json"),
                               ("WWW-Authenticate", 'Basic realm="authserver", error="invalid_client"')]
        status, body, headers = error(None)
        if status == 302:
            return status, body, list(headers)
        return status, body, [*vocabulary.NO_STORE_ITEMS, *headers]

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Store the refresh token (hashed) and remember what was issued, so a
        code replay or a refresh reuse can revoke it."""
        db = current_db.get()
        issued = request.issued
        access_exp = dt.datetime.fromtimestamp(issued["exp"], dt.UTC)
        family_id = None
        if token.get("refresh_token"):
            now = utcnow()
            settings = self.ctx.settings
            old = request.refresh_token.row if request.refresh_token is not None else None
            family_id = old.family_id if old else str(uuid.uuid4())
            family_expires = old.family_expires_at if old else now + dt.timedelta(
                seconds=settings.refresh_token_max_ttl)
            principal: Principal | None = request.user
            tokens.store_refresh_token(
                db,
                token_hash=self.ctx.box.keyed_hash(token["refresh_token"]),
                family_id=family_id,
                client_id=request.client.client_id,
                user_id=principal.user_id if principal else None,
                # RFC 6749 §6: the new refresh token keeps the scope of the old one,
                # even when this access token was narrowed
                scope=old.scope if old else token["scope"],
                auth_time=principal.auth_time if principal else None,
                amr=principal.amr if principal else [],
                acr=principal.acr if principal else None,
                sid=principal.sid if principal else None,
                # a rotated token stays on its family's device
                device_id=old.device_id if old else principal.device_id if principal else None,
                expires_at=min(now + dt.timedelta(seconds=settings.refresh_token_idle_ttl), family_expires),
                family_expires_at=family_expires,
                access_token_jti=issued["jti"],
                access_token_expires_at=access_exp,
                # RFC 9449 §5: a public client's refresh token is bound to its DPoP key;
                # a confidential client's is already bound to its credentials
                dpop_jkt=request.dpop.jkt if request.dpop is not None and request.client.is_public else None,
            )
        code = request.authorization_code
        if code is not None:
            tokens.record_code_issue(db, code.row.id, family_id=family_id, jti=issued["jti"],
                                     access_expires=access_exp)

    # -- token issuance ----------------------------------------------------

    def issue_tokens(self, request: Any, grant_type: str, user: Principal | None, scope: str | None,
                     include_refresh_token: bool) -> dict[str, Any]:
        """Build the token response (RFC 6749 §5.1). A refresh token is issued only
        to clients allowed the ``refresh_token`` grant, for an end user, and when
        ``offline_access`` was granted or the client is confidential."""
        client: OAuthClient = request.client
        scope = scope or request.scope or ""
        access = None
        if vocabulary.ROLES in scope.split():
            # one query for the user; the client's is kept with the cached client
            db = current_db.get()
            access = user_access(db, user.user_id) if user is not None else client.access(db)
        proof = request.dpop  # RFC 9449 §5: a checked proof binds the access token (cnf.jkt, §6.1)
        access_token, claims = self.token_issuer.access_token(client, user, scope, access=access,
                                                              jkt=proof.jkt if proof is not None else None)
        request.issued = {"jti": claims["jti"], "exp": claims["exp"]}
        token: dict[str, Any] = {
            "access_token": access_token,
            "token_type": vocabulary.DPOP if proof is not None else vocabulary.BEARER,
            "expires_in": claims["exp"] - claims["iat"],
            "scope": scope,
        }
        old = getattr(request, "refresh_token", None)
        granted = old.row.scope if old is not None else scope
        if (include_refresh_token and user is not None and client.check_grant_type(vocabulary.REFRESH_TOKEN)
                and (vocabulary.OFFLINE_ACCESS in granted.split() or not client.is_public)):
            token["refresh_token"] = self.token_issuer.new_refresh_token()
        return token

    def token_response(self, request: FrozenRequest) -> Result:
        if not request.form.get("grant_type"):
            # RFC 6749 §5.2: a missing parameter is invalid_request (Authlib says unsupported_grant_type)
            status, body, headers = self.handle_error_response(
                request, rfc6749.InvalidRequestError("Missing 'grant_type'."))
        else:
            try:  # RFC 9449 §4.3, §5: the proof is checked before anything is looked up
                if request.dpop is None:  # not again when the bridge re-runs it (NeedsThread)
                    request.dpop = self.dpop.check(request.headers, request.method, request.uri)
            except OAuth2Error as error:
                status, body, headers = self.handle_error_response(request, error)
            else:
                status, body, headers = self.create_token_response(request)
                headers = [*headers, *self.dpop.nonce_headers()]
                if status == 200:
                    metrics.record.token_issued(request.form["grant_type"])
        kept = [h for h in headers if h[0].lower() not in ("cache-control", "pragma")]
        return status, body, [*vocabulary.NO_STORE_ITEMS, *kept]

    # -- RFC 7662 / RFC 7009 -------------------------------------------------

    def authenticate_client(self, request: Any, methods: Any, endpoint: str = "token") -> Any:
        """Authlib's client authentication (RFC 6749 §2.3), behind two checks.

        * More than one method in one request (a Basic header and ``client_secret``
          in the body) is ``invalid_request``: §2.3 says a client MUST NOT do that.
        * Failures are counted by (``client_id``, address) and by address
          (:class:`~authserver.security.throttle.ClientAuthFailures`); a full bucket
          answers 429 before the secret is checked. Strangers therefore never spend
          the budget of a client that authenticates correctly from its own address.

        Base64 that does not decode is ``invalid_client`` (Authlib finds no credentials);
        credentials that decode to something other than UTF-8 never get here: the input
        edge (``security/input.py``) answers them ``invalid_request``.
        """
        basic = (request.headers.get("authorization") or "").strip()[:6].lower() == "basic "
        if basic and ("client_secret" in request.form or "client_assertion" in request.form):
            raise rfc6749.InvalidRequestError(
                "Use one client authentication method: the Authorization header or the body, not both.")
        if "client_secret" in request.form and "client_assertion" in request.form:
            raise rfc6749.InvalidRequestError(
                "Use one client authentication method: a client secret or a client assertion, not both.")
        claimed = _claimed_client_id(request)
        wait = self.auth_failures.retry_after(claimed, request.ip)
        if wait:
            metrics.record.rate_limited("client_auth_failures")
            raise TooManyRequests(wait, "Too many failed client authentications from this address.")
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            self.auth_failures.failed(claimed, request.ip)
            if str(error.description).startswith(_AUTHLIB_CLIENT_FAILURES):
                # one answer for an unknown client, a wrong secret and a missing one, so
                # the endpoint does not tell which client_ids exist (RFC 6749 §5.2 invalid_client)
                error.description = CLIENT_AUTHENTICATION_FAILED
            raise

    @property
    def client_auth_methods(self) -> list[str]:
        return grants.ALL_AUTH_METHODS

    def _endpoint_client(self, request: FrozenRequest, endpoint: str) -> OAuthClient:
        client: OAuthClient = self.authenticate_client(request, grants.ALL_AUTH_METHODS, endpoint)
        return client

    def introspect(self, request: FrozenRequest) -> Result:
        """RFC 7662 §2. Inactive, foreign or unknown tokens are just ``{"active": false}``;
        a client sees its own tokens only unless it is a resource server (``introspect_any``)."""
        try:
            client = self._endpoint_client(request, "introspection")
            token = request.form.get("token")
            if not token:
                raise rfc6749.InvalidRequestError("Missing 'token'.")
            body = self._introspection_body(client, token, request.form.get("token_type_hint"))
        except OAuth2Error as error:
            return self.handle_error_response(request, error)
        return 200, body, [*vocabulary.NO_STORE_ITEMS, ("Content-Type", "application/json")]

    def _introspection_body(self, client: OAuthClient, token: str, hint: str | None) -> dict[str, Any]:
        inactive = {"active": False}
        if token.count(".") == 2:
            claims = self.token_issuer.verify_access_token(token)
            if claims is None:
                return inactive
            if claims.get("client_id") != client.client_id and not client.row.introspect_any:
                return inactive
            body: dict[str, Any] = {k: claims[k] for k in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat",
                                            "jti", "auth_time", "acr", "amr", "roles", "entitlements", "cnf")
                                    if k in claims}
            # RFC 9449 §6.2: a bound token's cnf.jkt, and token_type DPoP
            token_type = vocabulary.DPOP if "cnf" in claims else vocabulary.BEARER
            return {"active": True, "token_type": token_type, **body}
        row = self._live_refresh_token(token)
        if row is None or (row.client_id != client.client_id and not client.row.introspect_any):
            return inactive
        return {
            "active": True,
            "token_type": vocabulary.REFRESH_TOKEN_TYPE,
            "scope": row.scope,
            "client_id": row.client_id,
            "sub": row.user_id,
            "iss": self.ctx.settings.issuer,
            "exp": int(row.expires_at.timestamp()),
            "iat": int(row.created_at.timestamp()),
        }

    def _live_refresh_token(self, token: str) -> RefreshToken | None:
        if len(token) > 512:
            return None
        row = current_db.get().scalar(
            select(RefreshToken).where(RefreshToken.token_hash == self.ctx.box.keyed_hash(token)))
        now = utcnow()
        if (row is None or row.revoked_at or row.rotated_at or row.expires_at <= now
                or row.family_expires_at <= now):
            return None
        return row

    def revoke(self, request: FrozenRequest) -> Result:
        """RFC 7009 §2. A refresh token revokes its family; an access token's ``jti``
        goes on the revoked list. Unknown or foreign tokens get 200 too (§2.2)."""
        try:
            client = self._endpoint_client(request, "revocation")
            token = request.form.get("token")
            if not token:
                raise rfc6749.InvalidRequestError("Missing 'token'.")
        except OAuth2Error as error:
            return self.handle_error_response(request, error)
        db = current_db.get()
        if token.count(".") == 2:
            claims = self.token_issuer.verify_access_token(token)
            if claims and claims.get("client_id") == client.client_id:
                tokens.revoke_access_token(db, self.revoked, claims["jti"], claims["exp"])
        else:
            row = self._live_refresh_token(token)
            if row is not None and row.client_id == client.client_id:
                tokens.revoke_family(db, self.revoked, row.family_id)
        return 200, "", list(vocabulary.NO_STORE_ITEMS)


def _claimed_client_id(request: FrozenRequest) -> str | None:
    """The ``client_id`` a request claims (body, else a client assertion's unverified
    ``sub``, else the Basic user), for counting failures."""
    if request.form.get("client_id"):
        return request.form["client_id"]
    assertion = request.form.get("client_assertion")
    if assertion:
        sub = _unverified_sub(assertion)
        return sub
    try:
        client_id, _secret = extract_basic_authorization(request.headers)
    except ValueError:  # undecodable credentials: counted by address only
        return None
    return client_id or None


def _unverified_sub(assertion: str) -> str | None:
    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, RecursionError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) and 0 < len(sub) <= 64 else None
