"""Adapters that give our rows the interfaces Authlib's grants expect."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.util import scope_to_list
from sqlalchemy import Row
from sqlalchemy.orm import Session

from authserver.accounts.models import User
from authserver.clients.models import Client
from authserver.roles.permissions import Access, client_access
from authserver.security.crypto import SecretBox


class OAuthClient(ClientMixin):
    """A registered client as Authlib sees it (RFC 6749 §2)."""

    def __init__(self, row: Client, box: SecretBox) -> None:
        self.row = row
        self._box = box
        self.client_id = row.client_id
        self._access: Access | None = None

    @property
    def is_public(self) -> bool:
        return self.row.is_public

    @property
    def audience(self) -> list[str]:
        return self.row.audience or [self.row.client_id]

    def access(self, db: Session) -> Access:
        """The client's own roles and permissions, read once per cached client
        (so a change reaches ``client_credentials`` tokens within ``CLIENT_CACHE_TTL``)."""
        if self._access is None:
            self._access = client_access(db, self.row.client_id, self.row.scope)
        return self._access

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        # RFC 6749 §3.1.2.3: only when exactly one is registered
        uris = self.row.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The requested scopes this client may have, in request order; all of its
        scopes when none were requested (RFC 6749 §3.3)."""
        allowed = self.row.scope.split()
        chosen = [s for s in dict.fromkeys(scope_to_list(scope) or []) if s in allowed]
        # nothing usable requested: the registered scopes, so consent is always asked
        # for something and an unknown-only scope cannot slip past it
        return " ".join(chosen or allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string comparison (RFC 9700 §4.1.3)."""
        return redirect_uri in self.row.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.row.client_secret_hash
        return stored is not None and self._box.verify_hash(client_secret, stored)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.row.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.row.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types


@dataclass
class Principal:
    """The end user behind a grant, with how and when they authenticated.

    ``auth_time``/``amr``/``acr``/``sid`` feed the ``auth_time``, ``amr``,
    ``acr`` and ``sid`` claims (OIDC Core §2, RFC 9068 §2.2.1).

    ``user`` is the user's row where the grant loaded it. The refresh grant does not:
    its claim already checked that the user exists and is not disabled, and what it
    issues needs only ``user_id`` (a refresh carries no ``claims`` request).
    """

    user_id: str
    auth_time: int | None = None
    amr: list[str] = field(default_factory=list)
    acr: str | None = None
    sid: str | None = None
    nonce: str | None = None
    claims: dict[str, Any] | None = None
    #: the device the grant is for (``sessions.devices``): refresh families are bound to it
    device_id: str | None = None
    user: User | None = None

    def get_user_id(self) -> str:
        return self.user_id


class AuthorizationCodeAdapter:
    """A claimed ``authorization_codes`` row (a Core row: its columns by name, see
    ``tokens.service.claim_code``) as Authlib's ``AuthorizationCodeMixin``."""

    def __init__(self, row: Row[Any]) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return str(self.row.redirect_uri)

    def get_scope(self) -> str:
        return str(self.row.scope)

    def get_nonce(self) -> str | None:
        nonce: str | None = self.row.nonce
        return nonce

    def get_auth_time(self) -> int:
        return int(self.row.auth_time)


class RefreshTokenAdapter:
    """A claimed ``refresh_tokens`` row (a Core row: its columns by name, see
    ``tokens.service.claim_live_refresh_token``) as Authlib's ``TokenMixin``."""

    def __init__(self, row: Row[Any]) -> None:
        self.row = row

    def check_client(self, client: OAuthClient) -> bool:
        return bool(self.row.client_id == client.client_id)

    def get_scope(self) -> str:
        return str(self.row.scope)
