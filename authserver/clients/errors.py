"""Errors of the clients domain."""


class ClientError(ValueError):
    """Invalid client metadata or an unknown client; the message is safe to show."""
