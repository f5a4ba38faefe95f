"""Argon2id hashing and the NIST SP 800-63B password policy."""

from __future__ import annotations

import pytest

from authserver.errors import DomainError
from authserver.security.passwords import (
    PasswordHasher,
    WeakPasswordError,
    common_passwords,
    validate_password,
)
from authserver.settings import Settings

FAST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher(**FAST)


def test_hash_is_argon2id_and_verifies(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert hasher.verify(stored, "correct horse battery staple")
    assert not hasher.verify(stored, "correct horse battery stapler")


def test_same_password_gets_a_fresh_salt(hasher: PasswordHasher) -> None:
    assert hasher.hash("same password") != hasher.hash("same password")


@pytest.mark.parametrize("stored", ["", "not-a-hash", "$argon2id$v=19$m=8,t=1,p=1$bad", "$2b$12$" + "a" * 53])
def test_malformed_hash_is_a_mismatch_not_an_error(hasher: PasswordHasher, stored: str) -> None:
    assert hasher.verify(stored, "whatever password") is False
    assert hasher.needs_rehash(stored) is True


def test_needs_rehash_when_parameters_change(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery staple")
    assert hasher.needs_rehash(stored) is False
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    assert stronger.needs_rehash(stored) is True
    assert stronger.verify(stored, "correct horse battery staple")  # old hashes still verify
    assert stronger.needs_rehash(stronger.hash("correct horse battery staple")) is False


def test_from_settings_uses_argon2_settings(settings: Settings) -> None:
    stored = PasswordHasher.from_settings(settings).hash("correct horse battery staple")
    assert "$m=8,t=1,p=1$" in stored


def test_verify_dummy_runs_a_real_verification(hasher: PasswordHasher) -> None:
    hasher.verify_dummy("any password")
    assert hasher._dummy_hash.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert hasher.needs_rehash(hasher._dummy_hash) is False


def test_common_password_list_is_shipped_and_loaded_once() -> None:
    words = common_passwords()
    assert len(words) > 10_000
    assert {"password", "iloveyou", "12345678"} <= words
    assert not any(w.startswith("#") for w in words)
    assert common_passwords() is words


@pytest.mark.parametrize(
    ("password", "username", "email", "reason"),
    [
        ("short1!", None, None, "at least 8"),
        ("", None, None, "at least 8"),
        (("Tr0ub4dor&3 " * 11)[:129], None, None, "at most 128"),
        ("password", None, None, "too common"),
        ("PassWord", None, None, "too common"),
        ("\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44", None, None, "too common"),  # fullwidth
        ("iloveyou", None, None, "too common"),
        ("baseball", None, None, "too common"),
        ("12345678", None, None, "sequence"),
        ("abcdefgh", None, None, "sequence"),
        ("hgfedcba", None, None, "sequence"),
        ("qwertyuiop", None, None, "sequence"),
        ("zzzzzzzzzz", None, None, "repeated"),
        ("abcabcabc", None, None, "repeated"),
        ("abcabcab", None, None, "repeated"),  # a block of 3 repeated to 8 characters, not a whole 3 times
        ("alice_smith", "alice_smith", None, "username"),
        ("Alice_Smith", "alice_smith", None, "username"),
        ("alice_smith2024", "alice_smith", None, "username"),
        ("1999alice_smith", "alice_smith", None, "username"),
        ("my-alice_smith-pw", "alice_smith", None, "username"),
        ("bob.jones99", None, "Bob.Jones@example.com", "e-mail"),
        ("bob.jones@example.com", None, "bob.jones@example.com", "e-mail"),
        ("al123456789", "al", None, "username"),
    ],
)
def test_policy_rejects(password: str, username: str | None, email: str | None, reason: str) -> None:
    with pytest.raises(WeakPasswordError, match=reason):
        validate_password(password, username=username, email=email)


@pytest.mark.parametrize(
    ("password", "username", "email"),
    [
        ("correct horse battery staple", "alice", "alice@example.com"),
        ("8chars!x", None, None),
        ("always-blue-sky", "al", None),  # short identifiers are not matched inside words
        ("mot de passe très long", None, None),
        ("пароль-из-кириллицы", None, None),
        ("x" + "correct horse " * 9, None, None),  # 127 characters
        ("no-composition-rules-here", None, None),
    ],
)
def test_policy_accepts(password: str, username: str | None, email: str | None) -> None:
    assert validate_password(password, username=username, email=email) == password


def test_policy_returns_nfkc_normalised_password() -> None:
    assert validate_password("\ufb01nal answer \uff14\uff12")  # ligature, fullwidth == "final answer 42"


def test_length_counts_characters_after_normalisation() -> None:
    assert validate_password("é" * 4 + "ßxyz") == "é" * 4 + "ßxyz"
    with pytest.raises(WeakPasswordError, match="at least 8"):
        validate_password("e\u0301" * 3 + "xy")  # 8 code points, NFKC composes to 5 characters


def test_weak_password_error_is_a_domain_error_with_a_message() -> None:
    with pytest.raises(DomainError) as info:
        validate_password("password")
    assert str(info.value).endswith(".")


@pytest.mark.parametrize(("password", "message"), [
    ("short", "Password must be at least 8 characters long."),
    ("x" * 129, "Password must be at most 128 characters long."),
])
def test_length_refusals_state_the_limit(password: str, message: str) -> None:
    with pytest.raises(WeakPasswordError) as info:
        validate_password(password)
    assert str(info.value) == message
