"""Errors of the roles domain."""


class RoleError(ValueError):
    """Invalid role data, an unknown role, or a refused change; the message is safe to show."""


class UnknownRole(RoleError):
    """The named role does not exist."""
