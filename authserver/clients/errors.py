"""Errors of the clients domain."""

from authserver.errors import DomainError


class ClientError(DomainError):
    """Invalid client metadata or an unknown client; the message is safe to show."""
