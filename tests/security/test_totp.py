"""TOTP (RFC 6238) verification with replay protection, QR codes, backup codes."""

from __future__ import annotations

import base64
import re
import time

import pyotp
import pytest

from authserver.security import totp

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_700_000_015.0  # mid-step
NOW_STEP = int(NOW) // 30


def code_at(step: int) -> str:
    return pyotp.TOTP(SECRET).generate_otp(step)


def test_new_secret_is_160_bit_base32() -> None:
    secret = totp.new_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert len(base64.b32decode(secret)) == 20
    assert totp.new_secret() != secret


def test_a_code_works_once() -> None:
    step = totp.verify(SECRET, code_at(NOW_STEP), None, at=NOW)
    assert step == NOW_STEP
    assert totp.verify(SECRET, code_at(NOW_STEP), step, at=NOW) is None


def test_an_older_code_is_refused_after_a_newer_one_was_used() -> None:
    assert totp.verify(SECRET, code_at(NOW_STEP - 1), NOW_STEP, at=NOW) is None


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_one_step_of_drift_is_accepted(offset: int) -> None:
    assert totp.verify(SECRET, code_at(NOW_STEP + offset), NOW_STEP - 5, at=NOW) == NOW_STEP + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_codes_outside_the_window_are_refused(offset: int) -> None:
    assert totp.verify(SECRET, code_at(NOW_STEP + offset), None, at=NOW) is None


def test_code_from_three_steps_ago_fails_in_real_time() -> None:
    secret = totp.new_secret()
    now = time.time()
    old = pyotp.TOTP(secret).at(now - 90)
    current = pyotp.TOTP(secret).at(now)
    if old != current:  # a 1-in-a-million collision would make this meaningless
        assert totp.verify(secret, old, None) is None
    assert totp.verify(secret, current, None) is not None


@pytest.mark.parametrize(
    ("before", "middle", "after"), [("", "", ""), (" ", "", " "), ("", " ", ""), ("", "\t", "")]
)
def test_spaces_are_ignored(before: str, middle: str, after: str) -> None:
    code = code_at(NOW_STEP)
    assert totp.verify(SECRET, f"{before}{code[:3]}{middle}{code[3:]}{after}", None, at=NOW) == NOW_STEP


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "123-456", "-12345"])
def test_malformed_codes_are_refused(code: str) -> None:
    assert totp.verify(SECRET, code, None, at=NOW) is None


def test_provisioning_uri() -> None:
    uri = totp.provisioning_uri(SECRET, "alice@example.com", "Example Co")
    assert uri.startswith("otpauth://totp/Example%20Co:alice%40example.com?")
    assert f"secret={SECRET}" in uri
    assert "issuer=Example%20Co" in uri


def test_qr_svg_is_inline_and_offline() -> None:
    svg = totp.qr_svg(totp.provisioning_uri(SECRET, "alice", "Example"), title="Scan <me> & go")
    assert svg.startswith("<svg ")
    assert svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg
    assert "<script" not in svg.lower()
    assert "href" not in svg
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<title>Scan &lt;me&gt; &amp; go</title>" in svg
    # a standalone SVG document (the namespace), styled by the page through its class
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and 'class="qr-code"' in svg
    # readable by a phone camera: black on white, 4 px modules, the 4-module quiet zone of ISO/IEC 18004
    assert 'fill="#fff"' in svg and 'stroke="#000"' in svg and 'transform="scale(4)"' in svg
    assert 'd="M4 4.5h7' in svg  # the first finder pattern starts after the quiet zone


def test_backup_codes_are_unique_readable_and_40_bits() -> None:
    codes = totp.generate_backup_codes()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    alphabet = totp.BACKUP_CODE_ALPHABET
    assert len(set(alphabet)) == 32  # 8 symbols x 5 bits = 40 bits
    assert not set("ilou") & set(alphabet)
    for code in codes:
        assert re.fullmatch(rf"[{alphabet}]{{4}}-[{alphabet}]{{4}}", code)
    assert len(totp.generate_backup_codes(25)) == 25


def test_backup_code_normalisation_is_stable() -> None:
    for code in totp.generate_backup_codes():
        plain = code.replace("-", "")
        assert totp.normalize_backup_code(code) == plain
        assert totp.normalize_backup_code(code.upper()) == plain
        assert totp.normalize_backup_code(f" {plain[:4]} {plain[4:]} ") == plain
    assert totp.normalize_backup_code("AB0C-1DEF") == totp.normalize_backup_code("abOc-IdeF")
    assert totp.normalize_backup_code("ab0c-1def") == totp.normalize_backup_code("AB0C LDEF")
