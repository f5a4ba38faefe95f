"""Authlib grants configured for our storage and rules.

Each class documents, with its RFC section, the Authlib 1.9 default it overrides
(PKCE ``plain`` and optional challenges, scope checks, refresh-token reuse;
docs/architecture.md, "Authlib 1.9").
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc8628 import DeviceCodeGrant as AuthlibDeviceCodeGrant
from sqlalchemy import Row, select

from authserver import metrics
from authserver.accounts import service as accounts
from authserver.audit import service as audit
from authserver.db import utcnow
from authserver.device_flow import service as device_flow
from authserver.device_flow.models import DeviceAuthorization
from authserver.oauth import vocabulary
from authserver.oauth.bridge import FrozenRequest, current_db
from authserver.oauth.errors import (
    AccessDeniedError,
    AuthorizationPendingError,
    ExpiredTokenError,
    InvalidDPoPProofError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    SlowDownError,
    UnauthorizedClientError,
)
from authserver.oauth.models import AuthorizationCodeAdapter, Principal, RefreshTokenAdapter
from authserver.sessions import devices
from authserver.tokens import service as tokens
from authserver.tokens.models import AuthorizationCode, RefreshToken

if TYPE_CHECKING:
    from authserver.oauth.server import Server

PKCE_PATTERN = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
ALL_AUTH_METHODS = list(vocabulary.AUTH_METHODS)
CONFIDENTIAL_AUTH_METHODS = list(vocabulary.CONFIDENTIAL_AUTH_METHODS)


class IssueMixin:
    """Hands token generation to our issuer together with the request, so the
    issued ``jti`` and the principal's login context are known to ``save_token``."""

    request: FrozenRequest
    server: Server
    GRANT_TYPE: str

    def authenticate_token_endpoint_client(self) -> Any:
        """Authlib's client authentication, then RFC 9449 §5.2: a client registered with
        ``dpop_bound_access_tokens`` is refused without a DPoP proof, before the grant
        consumes anything (a code, a refresh token)."""
        client = super().authenticate_token_endpoint_client()  # type: ignore[misc]
        if client.row.dpop_bound_access_tokens and self.request.dpop is None:
            raise InvalidDPoPProofError("This client must send a DPoP proof (dpop_bound_access_tokens).")
        return client

    def generate_token(self, user: Any = None, scope: str | None = None, grant_type: str | None = None,
                       expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
        token: dict[str, Any] = self.server.issue_tokens(self.request, grant_type or self.GRANT_TYPE, user,
                                                         scope, include_refresh_token)
        return token

    def validate_requested_scope(self) -> None:
        """RFC 6749 §3.3: every requested scope must be allowed for the client;
        none requested means the client's registered scopes."""
        requested = scope_to_list(self.request.payload.scope) or []
        allowed = self.request.client.row.scope.split()
        if self.GRANT_TYPE == vocabulary.AUTHORIZATION_CODE:
            # OIDC Core §3.1.2.1: scope values not understood are ignored
            requested = [s for s in requested if s in allowed]
        if any(s not in allowed for s in requested):
            raise InvalidScopeError("The requested scope is not allowed for this client.")
        scope = requested or allowed
        if self.GRANT_TYPE == vocabulary.CLIENT_CREDENTIALS:
            # no end user: user-facing scopes mean nothing here
            scope = [s for s in scope if s not in vocabulary.USER_SCOPES]
        self.request.scope = " ".join(dict.fromkeys(scope))


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class S256CodeChallenge:
    """PKCE (RFC 7636) with ``S256`` only, required for public clients and, by
    default, for all (RFC 9700 §2.1.1). Authlib's ``CodeChallenge`` accepts a
    request without a challenge and defaults to ``plain``: not this one."""

    def __init__(self, required_for_all: bool) -> None:
        self.required_for_all = required_for_all

    def __call__(self, grant: AuthorizationCodeGrant) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.validate_code_challenge)
        grant.register_hook("after_validate_token_request", self.validate_code_verifier)

    def validate_code_challenge(self, grant: AuthorizationCodeGrant, redirect_uri: str) -> None:
        payload = grant.request.payload
        challenge = payload.data.get("code_challenge")
        method = payload.data.get("code_challenge_method")
        for name in ("code_challenge", "code_challenge_method"):
            if len(payload.datalist.get(name, [])) > 1:
                raise InvalidRequestError(f"Multiple '{name}' in request.")
        if not challenge:
            if method or self.required_for_all or grant.request.client.is_public:
                raise InvalidRequestError("'code_challenge' (PKCE, S256) is required.")
            return
        if method != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        if not PKCE_PATTERN.match(challenge):
            raise InvalidRequestError("Invalid 'code_challenge'.")

    def validate_code_verifier(self, grant: AuthorizationCodeGrant, result: object) -> None:
        verifier = grant.request.form.get("code_verifier")
        code = grant.request.authorization_code
        if not code.code_challenge:
            if verifier:
                raise InvalidRequestError("No 'code_challenge' was sent for this code.")
            return
        if not verifier:
            raise InvalidRequestError("Missing 'code_verifier'.")
        if not PKCE_PATTERN.match(verifier):
            raise InvalidRequestError("Invalid 'code_verifier'.")
        if _s256(verifier) != code.code_challenge:
            raise InvalidGrantError("The 'code_verifier' does not match the 'code_challenge'.")


class IDTokenExtension:
    """Adds an ID token when ``openid`` was granted (OIDC Core §3.1.3.3, §12.2)."""

    def __call__(self, grant: grants.BaseGrant) -> None:
        grant.register_hook("after_create_token_response", self.add_id_token)

    def add_id_token(self, grant: Any, result: Any) -> None:
        _status, token, _headers = result
        if vocabulary.OPENID not in (token.get("scope") or "").split():
            return
        request = grant.request
        principal: Principal = request.user
        code = request.authorization_code
        token["id_token"] = grant.server.token_issuer.id_token(
            request.client, principal, scope=token["scope"],
            access_token=token.get("access_token"),
            nonce=code.get_nonce() if code is not None else None,
        )


class AuthorizationCodeGrant(IssueMixin, grants.AuthorizationCodeGrant):
    """RFC 6749 §4.1. Codes are claimed atomically at lookup (Authlib deletes them
    only after ``save_token``, and a replay revokes nothing: authlib #757)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    def save_authorization_code(self, code: str, request: Any) -> None:
        db = current_db.get()
        principal: Principal = request.user
        payload = request.payload.data
        db.add(AuthorizationCode(
            code_hash=self.server.ctx.box.keyed_hash(code),
            client_id=request.client.client_id,
            user_id=principal.user_id,
            redirect_uri=request.payload.redirect_uri or "",
            scope=request.scope,
            nonce=payload.get("nonce"),
            code_challenge=payload.get("code_challenge"),
            code_challenge_method=payload.get("code_challenge_method"),
            claims=principal.claims,
            auth_time=principal.auth_time or int(self.server.ctx.clock()),
            amr=principal.amr,
            acr=principal.acr,
            sid=principal.sid,
            device_id=principal.device_id,
            expires_at=utcnow() + dt.timedelta(seconds=self.server.ctx.settings.authorization_code_ttl),
            dpop_jkt=payload.get("dpop_jkt"),  # RFC 9449 §10 (checked by authorization.check_dpop_jkt)
        ))

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCodeAdapter | None:
        db = current_db.get()
        ctx = self.server.ctx
        code_hash = ctx.box.keyed_hash(code)
        row = tokens.claim_code(db, code_hash, client.client_id)
        if row is not None:
            return AuthorizationCodeAdapter(row)
        used = db.scalar(select(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash))
        if used is not None and used.used_at is not None and used.client_id == client.client_id:
            tokens.revoke_code_issue(db, self.server.revoked, used)
            metrics.record.reuse_detected("authorization_code")
            audit.record(db, "code_replay_detected", user_id=used.user_id, client_id=used.client_id,
                         ip=self.request.ip)
        return None

    def delete_authorization_code(self, authorization_code: Any) -> None:
        """Nothing to do: the code was marked used when it was claimed."""

    def authenticate_user(self, authorization_code: AuthorizationCodeAdapter) -> Principal | None:
        row = authorization_code.row
        proof = self.request.dpop
        if row.dpop_jkt is not None and (proof is None or not hmac.compare_digest(proof.jkt, row.dpop_jkt)):
            # RFC 9449 §10: the code was bound to a key with dpop_jkt; the exchange must prove it
            raise InvalidGrantError("The code is bound to a DPoP key (dpop_jkt): send a DPoP proof signed with it.")
        db = current_db.get()
        # the claim checked that the user exists and is not disabled; the row is read only
        # for a claims request's ID-token claims (OIDC Core §5.5)
        user = accounts.get_user(db, row.user_id, with_roles=False) if row.claims else None
        if row.claims and user is None:
            return None
        if (row.device_id is not None and self.server.ctx.settings.max_devices_per_user
                and not devices.is_live(db, row.device_id)):
            return None  # the browser was signed out by the device limit meanwhile
        return Principal(row.user_id, row.auth_time, list(row.amr or []), row.acr, row.sid, row.nonce, row.claims,
                         device_id=row.device_id, user=user)


class RefreshTokenGrant(IssueMixin, grants.RefreshTokenGrant):
    """RFC 6749 §6 with rotation (RFC 9700 §4.14.2). A replayed or raced old
    token revokes its whole family; rotation is an atomic conditional update."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    _claimed: Row[Any] | None = None

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshTokenAdapter | None:
        """Look the token up and claim it in one ``UPDATE … RETURNING``; only when that
        finds nothing does a second query tell a reuse (rotated already: the family is
        revoked) from an unknown, foreign, expired or revoked token."""
        db = current_db.get()
        if len(refresh_token) > 512:
            return None
        token_hash = self.server.ctx.box.keyed_hash(refresh_token)
        client_id = self.request.client.client_id
        row = tokens.claim_live_refresh_token(db, token_hash, client_id)
        if row is not None:
            self._claimed = row
            proof = self.request.dpop
            if row.dpop_jkt is not None and (proof is None or not hmac.compare_digest(proof.jkt, row.dpop_jkt)):
                # RFC 9449 §5: a public client's bound refresh token needs a proof of the same key.
                # The claim is released (validate_token_request), so a thief without the key burns nothing.
                raise InvalidGrantError("The refresh token is bound to a DPoP key: send a DPoP proof signed with it.")
            return RefreshTokenAdapter(row)
        found = tokens.find_refresh_token(db, token_hash)
        if found is None or found.client_id != client_id:
            return None
        if found.rotated_at is not None:
            # presented again after rotation, or a concurrent request claimed it first
            self._reuse_detected(found)
        return None

    def _reuse_detected(self, row: RefreshToken) -> None:
        db = current_db.get()
        revoked = tokens.revoke_family(db, self.server.revoked, row.family_id)
        metrics.record.reuse_detected("refresh_token")
        audit.record(db, "token_reuse_detected", user_id=row.user_id, client_id=row.client_id,
                     ip=self.request.ip, family_revoked=revoked)

    def validate_token_request(self) -> None:
        """Authlib's checks (client, token, scope); a token claimed for a request that
        fails them is released (the transaction commits error answers). The user is
        live: the claim takes only a token whose user exists and is not disabled."""
        self._claimed = None
        try:
            super().validate_token_request()
        except Exception:
            if self._claimed is not None:
                tokens.release_refresh_token(current_db.get(), self._claimed)
            raise

    def authenticate_user(self, refresh_token: RefreshTokenAdapter) -> Principal | None:
        row = refresh_token.row
        return Principal(row.user_id, row.auth_time, list(row.amr or []), row.acr, row.sid, device_id=row.device_id)

    def revoke_old_credential(self, refresh_token: Any) -> None:
        """Nothing to do: the old token was marked rotated in ``validate_token_request``."""


class ApplicationDeviceMixin:
    """For the grants without a browser session (password, device code): a refresh token
    makes the sign-in a device of its own, named after the client and counted by the
    device limit (``sessions.devices.sign_in_application``); without one nothing
    outlives the access token, so nothing is counted."""

    request: Any
    server: Any

    def save_token(self, token: dict[str, Any]) -> None:
        principal: Principal = self.request.user
        if token.get("refresh_token"):
            client = self.request.client
            principal.device_id = devices.sign_in_application(
                current_db.get(), self.server.ctx, principal.user_id,
                client.row.client_name or client.client_id, ip=self.request.ip).id
        super().save_token(token)  # type: ignore[misc]


class PasswordGrant(ApplicationDeviceMixin, IssueMixin, grants.ResourceOwnerPasswordCredentialsGrant):
    """RFC 6749 §4.3, for confidential clients explicitly allowed it. Bad
    credentials are ``invalid_grant`` (§5.2), with lockout; accounts with MFA
    never get a token this way."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def authenticate_user(self, username: str, password: str) -> Principal:
        db = current_db.get()
        ctx = self.server.ctx
        result = accounts.authenticate(db, ctx, username, password, self.request.ip,
                                       channel="password_grant")
        if result.user is None:
            raise InvalidGrantError("Invalid username or password.")
        if result.mfa or self.request.client.row.require_mfa:
            raise InvalidGrantError(
                "This account requires multi-factor authentication; use the authorization code flow."
            )
        audit.record(db, "login_succeeded", user_id=result.user.id, client_id=self.request.client.client_id,
                     ip=self.request.ip, channel="password_grant")
        return Principal(result.user.id, int(ctx.clock()), ["pwd"], vocabulary.ACR_PWD, user=result.user)

    def validate_token_request(self) -> None:
        # the client must be known before the scope check that needs it
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client is not allowed the password grant.")
        self.request.client = client
        self.validate_requested_scope()
        params = self.request.form
        if not params.get("username") or "password" not in params:
            raise InvalidRequestError("Missing 'username' or 'password'.")
        self.request.user = self.authenticate_user(params["username"], params["password"])


class ClientCredentialsGrant(IssueMixin, grants.ClientCredentialsGrant):
    """RFC 6749 §4.4; the token's ``sub`` is the ``client_id`` (RFC 9068 §2.2)."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS


class DeviceCredential:
    """A claimed :class:`DeviceAuthorization` as Authlib's device credential."""

    def __init__(self, row: DeviceAuthorization) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_scope(self) -> str:
        return self.row.scope


class DeviceCodeGrant(ApplicationDeviceMixin, IssueMixin, AuthlibDeviceCodeGrant):
    """RFC 8628 §3.4-§3.5 over :mod:`authserver.device_flow.service`. Authlib's grant
    answers an unknown ``device_code`` with ``invalid_request`` and another client's with
    ``unauthorized_client``, checks the code before the client, and leaves slow_down and
    single use to us: here the client is authenticated first, an unknown, foreign or used
    code is ``invalid_grant`` (RFC 6749 §5.2), and the row's state decides the rest."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client is not allowed the device authorization grant.")
        self.request.client = client
        device_code = self.request.form.get("device_code")
        if not device_code:
            raise InvalidRequestError("Missing 'device_code'.")
        db = current_db.get()
        state, row = device_flow.poll(db, self.server.ctx.box, device_code, client.client_id)
        if state == "pending":
            raise AuthorizationPendingError()
        if state == "slow_down":
            raise SlowDownError()
        if state == "expired":
            raise ExpiredTokenError()
        if state == "denied":
            raise AccessDeniedError("The user denied the request.")
        if state != "approved" or row is None:
            raise InvalidGrantError("The device code is not valid.")
        user = accounts.get_user(db, row.user_id, with_roles=False)
        if user is None or user.disabled:
            raise InvalidGrantError("The device code is not valid.")
        self.request.user = Principal(user.id, row.auth_time, list(row.amr or []), row.acr, row.sid, user=user)
        self.request.credential = DeviceCredential(row)
        self.request.scope = row.scope

