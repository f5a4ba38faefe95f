"""Password hashing (Argon2id) and the password policy (NIST SP 800-63B §5.1.1.2).

Hashing follows RFC 9106 (Argon2id) with the cost parameters from settings.
:meth:`PasswordHasher.verify_dummy` lets callers spend the same time on an
unknown user as on a wrong password, so login timing does not reveal which
accounts exist.

The policy checks length (8..128 characters after NFKC normalisation), a
list of common passwords shipped with the package, passwords derived from the
user's own identifiers, and trivially repetitive or sequential strings. It
deliberately has no composition rules (SP 800-63B §5.1.1.2: "Verifiers SHOULD
NOT impose other composition rules").
"""

from __future__ import annotations

import functools
import os
import threading
import unicodedata
from importlib import resources
from typing import TYPE_CHECKING

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from authserver.errors import DomainError
from authserver.i18n import N_, Text

if TYPE_CHECKING:
    from authserver.settings import Settings

MIN_LENGTH = 8
MAX_LENGTH = 128
COMMON_PASSWORDS_FILE = "common-passwords.txt"

# A fixed, non-secret input: the dummy hash only has to cost the same to verify.
_DUMMY_PASSWORD = "authserver-dummy-password-for-timing"


# Argon2 is memory-hard: more concurrent hashes than cores only thrash the
# caches (measured: 8 threads on one core ran at ~70% of the serial rate).
_ARGON2_SLOTS = threading.BoundedSemaphore(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                           else (os.cpu_count() or 1))


class PasswordHasher:
    """Argon2id hashing with fixed cost parameters (RFC 9106).

    ``memory_cost`` is in KiB, as in argon2-cffi and ``AUTHSERVER_ARGON2_MEMORY_COST``.
    """

    def __init__(self, *, time_cost: int, memory_cost: int, parallelism: int) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._dummy_hash = self._hasher.hash(_DUMMY_PASSWORD)

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordHasher:
        return cls(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism,
        )

    def hash(self, password: str) -> str:
        """Return an encoded Argon2id hash (``$argon2id$v=19$m=...``) with a fresh salt."""
        with _ARGON2_SLOTS:
            return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        """True when ``password`` matches ``stored_hash``; False on mismatch or a malformed hash.

        Never raises for bad input: a corrupt row must look like a wrong password.
        """
        try:
            with _ARGON2_SLOTS:
                return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError, ValueError, TypeError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when ``stored_hash`` was made with other parameters (or is unreadable).

        Callers re-hash the password they just verified and store the new hash.
        """
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError, TypeError):
            return True

    def verify_dummy(self, password: str) -> None:
        """Spend one verification with the current parameters and discard the result.

        Call it when the user does not exist so that the response time matches a
        wrong password for an existing user.
        """
        self.verify(self._dummy_hash, password)


class WeakPasswordError(DomainError):
    """The password fails the policy; ``str(exc)`` is a message fit for a form or the CLI."""


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped common-password list, lowercased, loaded once (``#`` lines skipped)."""
    text = resources.files("authserver.security").joinpath("data", COMMON_PASSWORDS_FILE).read_text(
        encoding="utf-8"
    )
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


_SEQUENCES = (
    "0123456789012345678901234567890",
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
    "1234567890qwertyuiopasdfghjklzxcvbnm",
)


def _is_trivial(lowered: str) -> bool:
    if len(set(lowered)) == 1:
        return True
    for seq in _SEQUENCES:
        if lowered in seq or lowered in seq[::-1]:
            return True
    # A short block repeated to length ("abcabcabc", "12121212").
    for size in range(1, 4):
        block = lowered[:size]
        if len(lowered) >= 2 * size and (block * (len(lowered) // size + 1)).startswith(lowered):
            return True
    return False


def _derived_from(lowered: str, identifier: str) -> bool:
    """Equal to, containing (identifiers of 4+ characters), or the identifier plus digits."""
    ident = normalize(identifier).strip().lower()
    if not ident:
        return False
    # Containment only for identifiers long enough not to match by chance ("al" in "always").
    if len(ident) >= 4 and ident in lowered:
        return True
    return lowered.strip("0123456789") == ident


def validate_password(password: str, *, username: str | None = None, email: str | None = None) -> str:
    """Return the NFKC-normalised ``password`` or raise :class:`WeakPasswordError`.

    NIST SP 800-63B §5.1.1.2 (memorized secret verifiers): at least 8 and at
    most 128 characters, all printable Unicode and spaces allowed, compared
    against commonly-used and compromised values, context-specific words (the
    username, the e-mail local part) and repetitive or sequential characters.
    Callers hash the returned value, and must normalise the same way on login
    (this function does both normalisation and checks; :func:`normalize` only
    normalises).
    """
    normalised = normalize(password)
    if len(normalised) < MIN_LENGTH:
        raise WeakPasswordError(Text(N_("Password must be at least %(count)d characters long."), count=MIN_LENGTH))
    if len(normalised) > MAX_LENGTH:
        raise WeakPasswordError(Text(N_("Password must be at most %(count)d characters long."), count=MAX_LENGTH))
    lowered = normalised.lower()
    if _is_trivial(lowered):
        raise WeakPasswordError(N_("Password must not be a repeated character or a simple sequence."))
    if lowered in common_passwords():
        raise WeakPasswordError(N_("This password is too common; choose a less predictable one."))
    identifiers = [username or ""]
    if email:
        identifiers.append(email.rsplit("@", 1)[0])
    if any(_derived_from(lowered, ident) for ident in identifiers):
        raise WeakPasswordError(N_("Password must not be based on your username or e-mail address."))
    return normalised


def normalize(password: str) -> str:
    """NFKC normalisation (SP 800-63B §5.1.1.2), applied before hashing and before verifying."""
    return unicodedata.normalize("NFKC", password)
