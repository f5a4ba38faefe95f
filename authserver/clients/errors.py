"""Errors of the clients domain."""

from authserver.errors import AppError


class ClientError(AppError):
    """Invalid client metadata or an unknown client; the message is safe to show."""

    status_code = 400
    error = "invalid_request"
