"""Errors of the roles domain."""

from authserver.errors import DomainError


class RoleError(DomainError):
    """Invalid role data, an unknown role, or a refused change; the message is safe to show."""


class UnknownRole(RoleError):
    """The named role does not exist."""
