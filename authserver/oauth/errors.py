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
    "InvalidGrantError", "InvalidRequestError", "InvalidRequestUriError", "InvalidScopeError",
    "LoginRequiredError", "RegistrationNotSupportedError", "RequestNotSupportedError",
    "RequestUriNotSupportedError", "UnauthorizedClientError", "UnsupportedResponseTypeError",
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


class InvalidRequestUriError(OAuth2Error):
    """OIDC Core §3.1.2.6, RFC 9126 §4: the ``request_uri`` is unknown, expired or used."""

    error = "invalid_request_uri"
