"""Client IP behind trusted proxies, and the IP/CIDR deny list."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from authserver.security.network import UNKNOWN, DenyList, client_ip, parse_cidr

PROXIES = ("10.0.0.0/8", "fd00::/8")


def xff(value: str) -> dict[str, str]:
    return {"x-forwarded-for": value}


def test_spoofed_header_is_ignored_without_trusted_proxies() -> None:
    assert client_ip("203.0.113.9", xff("1.2.3.4"), ()) == "203.0.113.9"
    assert client_ip("10.0.0.1", xff("1.2.3.4"), ()) == "10.0.0.1"


def test_header_is_ignored_when_the_peer_is_not_a_trusted_proxy() -> None:
    assert client_ip("203.0.113.9", xff("1.2.3.4"), PROXIES) == "203.0.113.9"


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("10.0.0.1", "198.51.100.7", "198.51.100.7"),
        ("10.0.0.1", "1.2.3.4, 198.51.100.7", "198.51.100.7"),  # the client wrote 1.2.3.4
        ("10.0.0.1", "198.51.100.7, 10.0.0.2", "198.51.100.7"),  # a chain of our proxies
        ("10.0.0.1", "198.51.100.7,10.0.0.2 ,  10.0.0.3", "198.51.100.7"),
        ("10.0.0.1", "198.51.100.7, garbage, 10.0.0.2", "10.0.0.2"),  # stop at an invalid entry
        ("10.0.0.1", "garbage", "10.0.0.1"),
        ("10.0.0.1", "", "10.0.0.1"),
        ("10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),  # only proxies: the last valid one
        ("fd00::1", "2001:db8::5", "2001:db8::5"),
        ("fd00::1", "198.51.100.7, fd00::2", "198.51.100.7"),
        ("::ffff:10.0.0.1", "198.51.100.7", "198.51.100.7"),  # IPv4-mapped peer
        ("10.0.0.1", "::ffff:198.51.100.7", "198.51.100.7"),
    ],
)
def test_header_is_walked_from_the_right_behind_trusted_proxies(
    peer: str, header: str, expected: str
) -> None:
    assert client_ip(peer, xff(header), PROXIES) == expected


def test_trusted_peer_without_header_is_the_client() -> None:
    assert client_ip("10.0.0.1", {}, PROXIES) == "10.0.0.1"


def test_header_lookup_is_case_insensitive_and_joins_repeated_fields() -> None:
    assert client_ip("10.0.0.1", {"X-Forwarded-For": "198.51.100.7"}, PROXIES) == "198.51.100.7"
    headers = Headers(raw=[(b"x-forwarded-for", b"198.51.100.7"), (b"x-forwarded-for", b"192.0.2.4")])
    assert client_ip("10.0.0.1", headers, PROXIES) == "192.0.2.4"


@pytest.mark.parametrize(
    ("peer", "expected"),
    [(None, UNKNOWN), ("", UNKNOWN), ("testclient", "testclient"), ("::ffff:192.0.2.1", "192.0.2.1"),
     ("2001:DB8::1", "2001:db8::1")],
)
@pytest.mark.parametrize("proxies", [PROXIES, ()])
def test_peer_normalisation(peer: str | None, expected: str, proxies: tuple[str, ...]) -> None:
    assert client_ip(peer, {}, proxies) == expected
    assert client_ip(peer, {}, proxies) == expected  # the second answer comes from the cache


@pytest.fixture
def deny() -> DenyList:
    return DenyList(["203.0.113.0/24", "2001:db8::/32", "198.51.100.7", "::ffff:192.0.2.0/120"])


@pytest.mark.parametrize(
    ("ip", "denied"),
    [
        ("203.0.113.55", True),
        ("203.0.114.1", False),
        ("198.51.100.7", True),
        ("198.51.100.8", False),
        ("2001:db8:1::1", True),
        ("2001:DB8::", True),
        ("2001:db9::1", False),
        ("::ffff:203.0.113.5", True),  # IPv4-mapped IPv6 matches the IPv4 entry
        ("192.0.2.200", True),  # an IPv4-mapped entry matches plain IPv4
        ("not-an-ip", False),
        ("", False),
        ("203.0.113.0/24", False),
    ],
)
def test_deny_list(deny: DenyList, ip: str, denied: bool) -> None:
    assert deny.contains(ip) is denied


def test_empty_deny_list() -> None:
    assert len(DenyList([])) == 0
    assert DenyList([]).contains("203.0.113.1") is False


@pytest.mark.parametrize(
    ("entry", "normalised"),
    [
        ("10.0.0.0/8", "10.0.0.0/8"),
        (" 192.0.2.1 ", "192.0.2.1/32"),
        ("2001:DB8::/32", "2001:db8::/32"),
        ("2001:db8::1", "2001:db8::1/128"),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("0.0.0.0/0", "0.0.0.0/0"),
    ],
)
def test_parse_cidr_normalises(entry: str, normalised: str) -> None:
    assert parse_cidr(entry) == normalised


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("10.0.0.5/24", "host bits set; did you mean 10.0.0.0/24"),
        ("10.0.0.0/33", "not an IP address or CIDR"),
        ("example.com", "not an IP address or CIDR"),
        ("", "not an IP address or CIDR"),
        ("2001:db8::1/129", "not an IP address or CIDR"),
    ],
)
def test_parse_cidr_rejects(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cidr(entry)


def test_deny_list_rejects_invalid_entries() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        DenyList(["10.0.0.0/8", "nope"])
