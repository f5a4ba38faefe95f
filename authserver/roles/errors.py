"""Errors of the roles domain."""

from authserver.errors import DomainError


class RoleError(DomainError, ValueError):
    """Invalid role data, an unknown role, or a refused change; the message is safe to show
    (a 400 through the app's one error path; still a ``ValueError`` for older callers)."""


class UnknownRole(RoleError):
    """The named role does not exist."""
