"""Protocol errors Authlib does not define; each cites its specification."""

from __future__ import annotations

from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
    UnsupportedResponseTypeError,
)
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
)

__all__ = [  # Authlib's codes are re-exported, so the app names every protocol error from here
    "AccessDeniedError", "ConsentRequiredError", "InteractionRequiredError", "InvalidClientError",
    "InvalidDPoPProofError", "InvalidGrantError", "InvalidRequestError", "InvalidRequestUriError",
    "InvalidScopeError", "LoginRequiredError", "RegistrationNotSupportedError", "RequestNotSupportedError",
    "RequestUriNotSupportedError", "UnauthorizedClientError", "UnsupportedResponseTypeError",
    "UseDPoPNonceError",
]


class RequestNotSupportedError(OAuth2Error):
    """OIDC Core §6.1: the ``request`` parameter is not supported."""

    error = "request_not_supported"


class RequestUriNotSupportedError(OAuth2Error):
    """OIDC Core §6.2: the ``request_uri`` parameter is not supported."""

    error = "request_uri_not_supported"


class RegistrationNotSupportedError(OAuth2Error):
    """OIDC Core §3.1.2.6: the ``registration`` parameter is not supported."""

    error = "registration_not_supported"


class InvalidDPoPProofError(OAuth2Error):
    """RFC 9449 §5 (token endpoint): the DPoP proof is missing where required, or invalid."""

    error = "invalid_dpop_proof"


class UseDPoPNonceError(OAuth2Error):
    """RFC 9449 §8: the proof lacks the server's current nonce; the response carries one."""

    error = "use_dpop_nonce"

    def __init__(self, description: str, nonce: str) -> None:
        super().__init__(description)
        self.nonce = nonce

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("DPoP-Nonce", self.nonce)]
class InvalidRequestUriError(OAuth2Error):
    """OIDC Core §3.1.2.6, RFC 9126 §4: the ``request_uri`` is unknown, expired or used."""

    error = "invalid_request_uri"
