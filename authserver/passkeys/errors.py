"""Errors of the passkeys domain."""

from authserver.errors import DomainError
from authserver.i18n import N_


class PasskeyError(DomainError):
    """A registration or an assertion was refused; the message is safe to show. ``reason``
    (logged and audited, never shown) says which check refused it."""

    hint = N_("The passkey could not be verified. Try again.")

    def __init__(self, reason: str, hint: str | None = None) -> None:
        super().__init__(hint, detail=reason)
        self.reason = reason


class CloneSuspected(PasskeyError):
    """The authenticator's signature counter did not increase (WebAuthn Level 2 §6.1.1):
    the credential may have been copied."""
