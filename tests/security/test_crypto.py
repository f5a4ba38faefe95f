"""``SecretBox``: keyed hashes and AES-256-GCM sealing under ``SECRET_KEY``, with
``PREVIOUS_SECRET_KEYS`` keeping old sealed values readable (README "Security
model", credentials at rest)."""

from __future__ import annotations

import pytest

from authserver.security.crypto import DecryptionError, SecretBox

KEY = "k" * 40
OLD = "o" * 40


def test_keyed_hash_is_an_hmac_under_the_secret_key() -> None:
    box = SecretBox(KEY)
    digest = box.keyed_hash("refresh-token")
    assert len(digest) == 64 and digest == SecretBox(KEY).keyed_hash("refresh-token")
    assert digest != SecretBox(OLD).keyed_hash("refresh-token")
    assert "refresh-token" not in digest
    assert box.verify_hash("refresh-token", digest) and not box.verify_hash("refresh-tokeN", digest)


def test_sealed_value_opens_only_with_the_same_associated_data() -> None:
    """TOTP seeds are bound to the user id: a row copied onto another user does not open."""
    box = SecretBox(KEY)
    sealed = box.encrypt(b"JBSWY3DPEHPK3PXP", b"user-1")
    assert b"JBSWY3DPEHPK3PXP".decode() not in sealed
    assert box.decrypt(sealed, b"user-1") == b"JBSWY3DPEHPK3PXP"
    with pytest.raises(DecryptionError):
        box.decrypt(sealed, b"user-2")


def test_each_seal_uses_a_fresh_nonce() -> None:
    box = SecretBox(KEY)
    assert box.encrypt(b"seed", b"u") != box.encrypt(b"seed", b"u")


def test_previous_secret_key_still_opens_and_new_values_use_the_current_key() -> None:
    sealed_before = SecretBox(OLD).encrypt(b"seed", b"u")
    rotated = SecretBox(KEY, (OLD,))
    assert rotated.decrypt(sealed_before, b"u") == b"seed"
    sealed_after = rotated.encrypt(b"seed", b"u")
    assert sealed_after.split(".")[1] != sealed_before.split(".")[1]  # the key id
    assert SecretBox(KEY).decrypt(sealed_after, b"u") == b"seed"
    # once the old key is dropped, what it sealed no longer opens
    with pytest.raises(DecryptionError):
        SecretBox(KEY).decrypt(sealed_before, b"u")


@pytest.mark.parametrize("tamper", [
    lambda s: s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1],  # a changed ciphertext byte
    lambda s: "v2" + s[2:],  # unknown version
    lambda s: s.split(".", 1)[0] + ".00000000." + s.split(".", 2)[2],  # unknown key id
    lambda s: s.rsplit(".", 1)[0] + ".AAAA",  # too short for nonce and tag
    lambda s: "garbage",
])
def test_tampered_or_malformed_values_are_one_error(tamper) -> None:
    box = SecretBox(KEY)
    with pytest.raises(DecryptionError):
        box.decrypt(tamper(box.encrypt(b"seed", b"u")), b"u")
