"""Errors of the accounts domain."""


class AccountError(ValueError):
    """Invalid account data or an unknown user; the message is safe to show."""
