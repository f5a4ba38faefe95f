"""Errors of the clients domain."""

from authserver.errors import DomainError


class ClientError(DomainError):
    """Invalid client metadata or an unknown client; the message is safe to show."""


class UnknownClient(ClientError):
    """No client has this ``client_id`` (404 in the admin API)."""

    status_code = 404
    error = "not_found"


class UnknownRegistrationToken(ClientError):
    """No initial access token has this id."""

    status_code = 404
    error = "not_found"
