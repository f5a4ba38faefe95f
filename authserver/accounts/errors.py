"""Errors of the accounts domain."""

from authserver.errors import DomainError


class AccountError(DomainError):
    """Invalid account data or an unknown user; the message is safe to show."""
