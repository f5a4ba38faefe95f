"""Errors of the accounts domain."""

from authserver.errors import AppError


class AccountError(AppError):
    """Invalid account data or an unknown user; the message is safe to show."""

    status_code = 400
    error = "invalid_request"
