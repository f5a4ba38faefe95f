"""Errors of the accounts domain."""

from authserver.errors import DomainError


class AccountError(DomainError):
    """Invalid account data or an unknown user; the message is safe to show."""


class UnknownUser(AccountError):
    """No user has this id (404 in the admin API)."""

    status_code = 404
    error = "not_found"


class UnknownSession(AccountError):
    """The user has no browser session with this ``sid``."""

    status_code = 404
    error = "not_found"
